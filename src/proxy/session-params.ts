// Session parameters pgrelay carries for a client across server connections: the ones a client
// may set at startup and that PostgreSQL reports with ParameterStatus. When a client is linked to
// a server whose values differ, the difference is replayed as SET.

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

/** A SQL string literal: doubles single quotes (standard_conforming_strings is on by default; backslashes get E''). */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/**
 * A client's tracked values. After login the map is usually shared with other sessions that
 * logged in with the same values (sharedParams); the first SET of the client's own copies it.
 */
export class ClientParams {
  private map: Map<string, string> = new Map();
  private shared = false;
  /** paramsSignature() of the values, computed when first needed after a change. */
  private sig: string | null = null;

  /** The login's values (possibly shared) and their signature. */
  adopt(values: Map<string, string>, signature: string): void {
    this.map = values;
    this.sig = signature;
    this.shared = true;
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
