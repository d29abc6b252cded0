// The pino logger: JSON lines (or text lines for a terminal, log_format = text) to stdout or to
// `logfile`, with secrets redacted by path, and the time as epoch ms or ISO 8601 (log_time_format).

import { pino, type DestinationStream, type Logger } from 'pino';
import type { Settings } from './config/types.js';
import { formatTextLine } from './log-text.js';

type LogSettings = Pick<Settings, 'logLevel' | 'logfile'> & Partial<Pick<Settings, 'logFormat' | 'logTimeFormat'>>;

export function createLogger(settings: LogSettings, levelOverride?: string): Logger {
  const level = levelOverride ?? settings.logLevel;
  const text = settings.logFormat === 'text';
  const opts = {
    level,
    base: { app: 'pgrelay' },
    redact: { paths: ['password', '*.password', 'secret', '*.secret', 'token', '*.token', 'adminToken'], censor: '****' },
    // Text lines print the time as ISO 8601 whatever log_time_format says, so they need it in that form.
    ...(text || settings.logTimeFormat === 'iso' ? { timestamp: pino.stdTimeFunctions.isoTime } : {}),
  };
  const out = settings.logfile !== null ? pino.destination({ dest: settings.logfile, sync: false, mkdir: true }) : pino.destination({ dest: 1, sync: false });
  return pino(opts, text ? textStream(out) : out);
}

/** Rewrites each JSON line pino produces as a text line; flushing reaches the real destination. */
function textStream(out: ReturnType<typeof pino.destination>): DestinationStream {
  return Object.assign(Object.create(null) as object, {
    write: (line: string) => out.write(formatTextLine(line)),
    flush: (cb?: (err?: Error) => void) => out.flush(cb),
    flushSync: () => out.flushSync(),
    end: () => out.end(),
  }) as DestinationStream;
}
