// The pino logger: JSON lines to stdout or to `logfile`, with secrets redacted by path.

import { pino, type Logger } from 'pino';
import type { Settings } from './config/types.js';

export function createLogger(settings: Pick<Settings, 'logLevel' | 'logfile'>, levelOverride?: string): Logger {
  const level = levelOverride ?? settings.logLevel;
  const opts = {
    level,
    base: { app: 'pgrelay' },
    redact: { paths: ['password', '*.password', 'secret', '*.secret', 'token', '*.token', 'adminToken'], censor: '****' },
  };
  if (settings.logfile !== null) return pino(opts, pino.destination({ dest: settings.logfile, sync: false, mkdir: true }));
  return pino(opts, pino.destination({ dest: 1, sync: false }));
}
