// Value parsers of the settings table: INI text to a typed value, or a SettingValueError with
// the reason (the loader adds file, line and key). Also used by the [databases] parser.

import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { AuthType, PoolMode } from './types.js';
import type { Settings } from './types.js';

/** A bad value; the loader adds file, line and key. */
export class SettingValueError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SettingValueError';
  }
}

export interface ParseContext {
  /** Directory relative paths resolve against; null = keep them as written. */
  readonly baseDir: string | null;
}

/** setTimeout() fires at once for delays above 2^31-1 ms, so larger durations are refused. */
export const MAX_DURATION_MS = 2_147_483_647;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

/** PgBouncer durations are (fractional) seconds; `ms`, `s`, `min`, `h` suffixes also work. Returns ms. */
export function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|h)?$/i.exec(raw.trim());
  if (m === null) {
    throw new SettingValueError(`invalid duration "${raw}" (seconds, e.g. "15" or "0.5", or with a unit: 500ms, 30s, 5min, 1h)`);
  }
  const exact = Number(m[1]) * DURATION_UNITS[(m[2] ?? 's').toLowerCase()]!;
  // Round to whole ms, but never turn a tiny non-zero value into 0, which means "disabled".
  const ms = exact > 0 ? Math.max(1, Math.round(exact)) : 0;
  if (ms > MAX_DURATION_MS) throw new SettingValueError(`duration "${raw}" is too long (max ${MAX_DURATION_MS / 1000} s, about 24 days)`);
  return ms;
}

/** Milliseconds back to PgBouncer's seconds notation ("15", "0.5"). */
export function formatDuration(ms: number): string {
  return String(ms / 1000);
}

const TRUE_WORDS = new Set(['1', 'yes', 'on', 'true']);
const FALSE_WORDS = new Set(['0', 'no', 'off', 'false']);

export function parseBoolean(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(v)) return true;
  if (FALSE_WORDS.has(v)) return false;
  throw new SettingValueError(`invalid boolean "${raw}" (use 0/1, yes/no, on/off or true/false)`);
}

export function parseInteger(raw: string, min: number, max: number): number {
  const v = raw.trim();
  if (!/^\d+$/.test(v)) {
    throw new SettingValueError(`invalid integer "${raw}" (expected a whole number ${min}..${max})`);
  }
  const n = Number(v);
  if (n < min || n > max) throw new SettingValueError(`${v} is out of range ${min}..${max}`);
  return n;
}

/** Comma-separated list; blanks around items and empty items are dropped. */
export function parseList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parsePoolMode(raw: string): PoolMode {
  const v = raw.trim().toLowerCase();
  if (v === PoolMode.transaction || v === PoolMode.session) return v;
  if (v === 'statement') {
    throw new SettingValueError('pool_mode "statement" is not supported by pgrelay (use transaction or session)');
  }
  throw new SettingValueError(`invalid pool_mode "${raw}" (use transaction or session)`);
}

const AUTH_TYPES: readonly AuthType[] = Object.values(AuthType);
/** PgBouncer's auth types that pgrelay refuses rather than silently weakening auth. */
const UNSUPPORTED_AUTH_TYPES = new Set(['any', 'ldap', 'pam']);

export function parseAuthType(raw: string): AuthType {
  const v = raw.trim().toLowerCase();
  const found = AUTH_TYPES.find((a) => a === v);
  if (found !== undefined) return found;
  const supported = AUTH_TYPES.join(', ');
  if (UNSUPPORTED_AUTH_TYPES.has(v)) {
    throw new SettingValueError(`auth_type "${v}" is not supported by pgrelay (supported: ${supported})`);
  }
  throw new SettingValueError(`invalid auth_type "${raw}" (supported: ${supported})`);
}

/** One of a fixed set of lower-case words. */
export function parseChoice<T extends string>(raw: string, key: string, choices: readonly T[]): T {
  const v = raw.trim().toLowerCase();
  const found = choices.find((c) => c === v);
  if (found === undefined) throw new SettingValueError(`invalid ${key} "${raw}" (use ${choices.join(' or ')})`);
  return found;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type LogLevel = Settings['logLevel'];

export function parseLogLevel(raw: string): LogLevel {
  const v = raw.trim().toLowerCase();
  const found = LOG_LEVELS.find((l) => l === v);
  if (found === undefined) throw new SettingValueError(`invalid log_level "${raw}" (use ${LOG_LEVELS.join(', ')})`);
  return found;
}

/** PgBouncer's `verbose` count: 0 = info, 1 = debug, 2 or more = trace. */
export function parseVerbose(raw: string): LogLevel {
  const n = parseInteger(raw, 0, 1000);
  return n === 0 ? 'info' : n === 1 ? 'debug' : 'trace';
}

/**
 * Relative paths resolve against the config file's directory (ctx.baseDir). PgBouncer
 * uses its working directory, which changes meaning with how the daemon is started;
 * absolute paths, the common case, behave the same in both. `~/` expands like PgBouncer.
 */
export function parsePath(raw: string, ctx: ParseContext): string | null {
  let v = raw.trim();
  if (v === '') return null;
  if (v === '~' || v.startsWith('~/')) v = homedir() + v.slice(1);
  if (ctx.baseDir === null || isAbsolute(v)) return v;
  return resolve(ctx.baseDir, v);
}
