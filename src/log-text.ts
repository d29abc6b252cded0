// log_format = text: one JSON log line as `TIME LEVEL message key=value ...`, for a terminal. The
// fields are the JSON line's own, so nothing is lost; values with spaces are quoted.

const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
// Shown in the line's head, or always the same for this process.
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'app', 'pid', 'hostname']);

export function formatTextLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json; // not a pino line: pass it on as it is
  }
  const time = typeof o['time'] === 'number' ? new Date(o['time']).toISOString() : String(o['time'] ?? '');
  const level = LEVELS[o['level'] as number] ?? String(o['level']);
  const parts = [time, level.padEnd(5), String(o['msg'] ?? '')];
  for (const [key, value] of Object.entries(o)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return `${parts.join(' ')}\n`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}
