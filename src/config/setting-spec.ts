// The shape of one row of the settings table (SettingSpec) and the builders the table is
// written with: one per value type, each pairing a parser from setting-values.ts with its formatter.

import type { Settings } from './types.js';
import { parseTlsMode, TlsValueError } from './tls-values.js';
import { formatDuration, parseBoolean, parseDuration, parseInteger, parseList, parsePath, SettingValueError, type ParseContext } from './setting-values.js';

export type SettingType =
  | 'integer'
  | 'duration'
  | 'boolean'
  | 'string'
  | 'path'
  | 'list'
  | 'enum';

export interface SettingSpecFor<K extends keyof Settings> {
  /** INI key (PgBouncer's name where one exists). */
  readonly key: string;
  readonly field: K;
  readonly type: SettingType;
  /** Default as INI text; parsing it yields DEFAULT_SETTINGS[field]. */
  readonly default: string;
  /** PgBouncer's default where ours differs (for the README's migration notes). */
  readonly pgbouncerDefault?: string;
  readonly description: string;
  /** 'pgbouncer': same key and meaning as PgBouncer; 'pgrelay': ours only. */
  readonly origin: 'pgbouncer' | 'pgrelay';
  /** false: a reload keeps the old value and reports that a restart is needed. */
  readonly reload: boolean;
  /** Never printed: formatters show `****` when set. */
  readonly secret: boolean;
  /** Set on a second key for the same field (e.g. `verbose` for `log_level`); listings skip it. */
  readonly aliasOf?: string;
  readonly parse: (raw: string, ctx: ParseContext) => Settings[K];
  /** Back to INI text, as SHOW CONFIG prints it (durations in seconds). */
  readonly format: (value: Settings[K]) => string;
}

export type SettingSpec = { [K in keyof Settings]: SettingSpecFor<K> }[keyof Settings];

export interface Meta {
  readonly description: string;
  readonly origin: 'pgbouncer' | 'pgrelay';
  readonly reload?: boolean;
  readonly secret?: boolean;
  readonly pgbouncerDefault?: string;
}

export function spec<K extends keyof Settings>(
  key: string,
  field: K,
  type: SettingType,
  def: string,
  meta: Meta,
  parse: (raw: string, ctx: ParseContext) => Settings[K],
  format: (value: Settings[K]) => string,
): SettingSpecFor<K> {
  const out: SettingSpecFor<K> = {
    key,
    field,
    type,
    default: def,
    description: meta.description,
    origin: meta.origin,
    reload: meta.reload ?? true,
    secret: meta.secret ?? false,
    parse,
    format,
  };
  return meta.pgbouncerDefault === undefined ? out : { ...out, pgbouncerDefault: meta.pgbouncerDefault };
}

export type KeysOf<T> = { [K in keyof Settings]: Settings[K] extends T ? (T extends Settings[K] ? K : never) : never }[keyof Settings];

export const int = <K extends KeysOf<number>>(key: string, field: K, def: string, min: number, max: number, meta: Meta) =>
  spec(key, field, 'integer', def, meta, (raw) => parseInteger(raw, min, max) as Settings[K], String);

export const duration = <K extends KeysOf<number>>(key: string, field: K, def: string, meta: Meta) =>
  spec(key, field, 'duration', def, meta, (raw) => parseDuration(raw) as Settings[K], (v) => formatDuration(v as number));

export const bool = <K extends KeysOf<boolean>>(key: string, field: K, def: string, meta: Meta) =>
  spec(key, field, 'boolean', def, meta, (raw) => parseBoolean(raw) as Settings[K], (v) => (v ? '1' : '0'));

export const str = <K extends KeysOf<string>>(key: string, field: K, def: string, meta: Meta) =>
  spec(key, field, 'string', def, meta, (raw) => raw as Settings[K], (v) => v as string);

/** Empty means unset (null). */
export const optStr = <K extends KeysOf<string | null>>(key: string, field: K, meta: Meta) =>
  spec(key, field, 'string', '', meta, (raw) => (raw.trim() === '' ? null : raw) as Settings[K], (v) => (v as string | null) ?? '');

export const path = <K extends KeysOf<string | null>>(key: string, field: K, meta: Meta) =>
  spec(key, field, 'path', '', meta, (raw, ctx) => parsePath(raw, ctx) as Settings[K], (v) => (v as string | null) ?? '');

export const list = <K extends KeysOf<readonly string[]>>(key: string, field: K, def: string, meta: Meta) =>
  spec(key, field, 'list', def, meta, (raw) => parseList(raw) as Settings[K], (v) => (v as readonly string[]).join(','));

/** A TLS value parsed by tls-values.ts; its refusal becomes a SettingValueError (file, line, key). */
export const tlsValue = <K extends KeysOf<string>>(key: string, field: K, def: string, meta: Meta, parse: (raw: string) => string) =>
  spec(key, field, 'string', def, meta, (raw) => {
    try {
      return parse(raw) as Settings[K];
    } catch (err) {
      if (err instanceof TlsValueError) throw new SettingValueError(err.reason);
      throw err;
    }
  }, (v) => v as string);

export const tlsMode = <K extends 'clientTlsSslmode' | 'serverTlsSslmode'>(key: string, field: K, def: string, meta: Meta) =>
  spec(key, field, 'enum', def, meta, (raw) => {
    try {
      return parseTlsMode(raw) as Settings[K];
    } catch (err) {
      if (err instanceof TlsValueError) throw new SettingValueError(err.reason);
      throw err;
    }
  }, (v) => v);

export const pg = (description: string, extra: Omit<Meta, 'description' | 'origin'> = {}): Meta => ({
  description,
  origin: 'pgbouncer',
  ...extra,
});
export const ours = (description: string, extra: Omit<Meta, 'description' | 'origin'> = {}): Meta => ({
  description,
  origin: 'pgrelay',
  ...extra,
});

export const MAX_INT32 = 2_147_483_647;
export const NO_RESTART = { reload: false } as const;
