// Rate limit for log lines that can repeat without bound (a client retrying a wrong password,
// a flood of refused logins): per key, the first few lines of each window are written; the rest
// are counted, and one line with the count is written when the window ends (janitor sweep) or
// when the key is next logged, so nothing is silently dropped.

import { wallClock } from './proxy/read-clock.js';

export interface LimitedLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
}

type Level = 'info' | 'warn';

interface KeyState {
  windowStart: number;
  written: number;
  suppressed: number;
  level: Level;
  fields: object;
  msg: string;
}

export class RepeatLog {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly logger: () => LimitedLogger,
    /** Lines per key written in full in one window. */
    private readonly burst = 5,
    private readonly windowMs = 10_000,
  ) {}

  warn(key: string, fields: object, msg: string, now = wallClock()): void {
    this.write('warn', key, fields, msg, now);
  }

  info(key: string, fields: object, msg: string, now = wallClock()): void {
    this.write('info', key, fields, msg, now);
  }

  /** Writes the count of each key whose window ended with lines held back, and forgets idle keys. */
  sweep(now = wallClock()): void {
    for (const [key, st] of this.keys) {
      if (now - st.windowStart < this.windowMs) continue;
      this.flush(st);
      this.keys.delete(key);
    }
  }

  private write(level: Level, key: string, fields: object, msg: string, now: number): void {
    let st = this.keys.get(key);
    if (st !== undefined && now - st.windowStart >= this.windowMs) {
      this.flush(st);
      st = undefined;
    }
    if (st === undefined) {
      st = { windowStart: now, written: 0, suppressed: 0, level, fields, msg };
      this.keys.set(key, st);
    }
    if (st.written < this.burst) {
      st.written++;
      this.logger()[level](st.written === this.burst ? { ...fields, rateLimited: true } : fields, st.written === this.burst ? `${msg} (further lines like this are counted for ${this.windowMs / 1000} s)` : msg);
      return;
    }
    st.suppressed++;
    st.level = level;
    st.fields = fields;
    st.msg = msg;
  }

  private flush(st: KeyState): void {
    if (st.suppressed === 0) return;
    this.logger()[st.level]({ ...st.fields, repeated: st.suppressed, windowMs: this.windowMs }, `${st.msg} (repeated ${st.suppressed} more times in ${this.windowMs / 1000} s; the last one's fields shown)`);
    st.suppressed = 0;
  }
}
