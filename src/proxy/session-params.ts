// Session parameters pgrelay carries for a client across server connections: the ones a client
// may set at startup and that PostgreSQL reports with ParameterStatus. When a client is linked to
// a server whose values differ, the difference is replayed as SET.
//
// Other settings a client gives at startup (in `options`, or as startup parameters: search_path,
// statement_timeout...) are not reported, so a server's values cannot be read: each server records
// what pgrelay itself set on it (ServerSettings), and a link replays the difference, RESETting what
// another client's settings left there. A client's own SET, RESET or DISCARD ALL marks that record
// dirty, and the next link sets everything again.

/** Startup parameters pgrelay tracks and replays (PgBouncer's list plus IntervalStyle). */
export const TRACKED_PARAMS = ['client_encoding', 'DateStyle', 'TimeZone', 'IntervalStyle', 'standard_conforming_strings', 'application_name'] as const;

const CANONICAL = new Map<string, string>(TRACKED_PARAMS.map((p) => [p.toLowerCase(), p]));

/** The tracked parameter's canonical (ParameterStatus) spelling, or undefined if not tracked. */
export function trackedName(name: string): string | undefined {
  return CANONICAL.get(name.toLowerCase());
}

/** Startup parameters that are not session settings and are always accepted. */
export const STARTUP_KEYS = new Set(['user', 'database', 'replication']);

let lastSignature = '';

/**
 * The tracked values of a session as one string, so the per-transaction check "does this server
 * need a replay" is one string comparison instead of a walk over two maps. Equal signatures mean
 * replaySql() would return ''. Identical signatures are interned so most clients share one string.
 */
export function paramsSignature(params: ReadonlyMap<string, string>): string {
  let sig = '';
  // Values never contain NUL (protocol strings are NUL-terminated), so the encoding is unambiguous.
  for (const name of TRACKED_PARAMS) {
    const v = params.get(name);
    sig += v === undefined ? '-\u0000' : `=${v}\u0000`;
  }
  if (sig === lastSignature) return lastSignature;
  lastSignature = sig;
  return sig;
}

/** Distinct value sets kept for sharing; past this the table starts afresh (sharing is only a saving). */
const MAX_SHARED = 64;
const shared = new Map<string, Map<string, string>>();

/**
 * A map with these values that other sessions may share: most clients of a pool log in with the
 * same values, and ten thousand copies of one small Map add up. Callers treat the result as
 * read-only and copy it before changing a value.
 */
export function sharedParams(signature: string, params: Map<string, string>): Map<string, string> {
  const found = shared.get(signature);
  if (found !== undefined) return found;
  if (shared.size >= MAX_SHARED) shared.clear();
  shared.set(signature, params);
  return params;
}

/** The SET statements that bring a server's tracked values to the client's (empty when equal). */
export function replaySql(client: ReadonlyMap<string, string>, server: ReadonlyMap<string, string>): string {
  let sql = '';
  for (const name of TRACKED_PARAMS) {
    const want = client.get(name);
    if (want === undefined || server.get(name) === want) continue;
    sql += `SET ${name} TO ${quoteLiteral(want)};`;
  }
  return sql;
}

/** The settings as one comparable string ('' for none): equal strings mean equal settings. */
export function settingsSignature(settings: ReadonlyMap<string, string>): string {
  if (settings.size === 0) return '';
  let sig = '';
  for (const name of [...settings.keys()].sort()) sig += `${name}=${settings.get(name)!}\u0000`;
  return sig;
}

/** What a server connection records of the settings pgrelay made on it. */
export interface ServerSettings {
  /** Name → value pgrelay set (names lower case, as in ClientParams.settings). */
  readonly setByUs: ReadonlyMap<string, string>;
  readonly setByUsSig: string;
  /** A client's SET/RESET/DISCARD ALL may have changed them: replay everything. */
  readonly setByUsDirty: boolean;
}

/**
 * The SQL that gives a server exactly the client's settings, or '' when it has them: RESET for
 * what pgrelay set for someone else, set_config() for what differs (set_config takes the value as
 * the startup packet does: `search_path=a,b` is two schemas, where SET '...' would make it one).
 */
export function settingsSql(client: ReadonlyMap<string, string>, clientSig: string, server: ServerSettings): string {
  const had = server.setByUs ?? new Map<string, string>();
  const dirty = server.setByUsDirty === true;
  if (!dirty && clientSig === (server.setByUsSig ?? '')) return '';
  let sql = '';
  for (const name of had.keys()) if (!client.has(name)) sql += `RESET ${name};`;
  const sets: string[] = [];
  for (const [name, value] of client) {
    if (dirty || had.get(name) !== value) sets.push(`pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`);
  }
  if (sets.length > 0) sql += `SELECT ${sets.join(', ')};`;
  return sql;
}

/** A SQL string literal: doubles single quotes (standard_conforming_strings is on by default; backslashes get E''). */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

const NO_SETTINGS: ReadonlyMap<string, string> = new Map();
const NO_SETTINGS_REF = { values: NO_SETTINGS, signature: '' };

/**
 * A client's tracked values. After login the map is usually shared with other sessions that
 * logged in with the same values (sharedParams); the first SET of the client's own copies it.
 */
export class ClientParams {
  private map: Map<string, string> = new Map();
  private shared = false;
  /** paramsSignature() of the values, computed when first needed after a change. */
  private sig: string | null = null;
  /** Settings PostgreSQL does not report, from `options` or the startup packet (see ServerSettings). */
  settings: ReadonlyMap<string, string> = NO_SETTINGS;
  /** settingsSignature() of them. */
  settingsSig = '';
  /** Both, as linkQuery() takes them (one object per session, not per transaction). */
  settingsRef: { readonly values: ReadonlyMap<string, string>; readonly signature: string } = NO_SETTINGS_REF;

  /** The login's values (possibly shared) and their signature; `settings` when it gave any. */
  adopt(values: Map<string, string>, signature: string, settings: ReadonlyMap<string, string> = NO_SETTINGS): void {
    this.map = values;
    this.sig = signature;
    this.shared = true;
    this.settings = settings.size === 0 ? NO_SETTINGS : settings;
    this.settingsSig = settingsSignature(settings);
    this.settingsRef = settings.size === 0 ? NO_SETTINGS_REF : { values: this.settings, signature: this.settingsSig };
  }

  get values(): ReadonlyMap<string, string> {
    return this.map;
  }

  get signature(): string {
    return (this.sig ??= paramsSignature(this.map));
  }

  get(name: string): string | undefined {
    return this.map.get(name);
  }

  /** A value the client changed with its own SET (copy on write: others may hold the same map). */
  set(name: string, value: string): void {
    if (this.shared) {
      this.map = new Map(this.map);
      this.shared = false;
    }
    this.map.set(name, value);
    this.sig = null;
  }
}
