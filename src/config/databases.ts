// [databases] entries → DatabaseConfig and [users] entries → UserConfig, from their
// libpq-style connection strings; also prints an entry back with secrets masked.

import { ConnStringError, parseConnString, parseHostList, quoteConnValue } from './connstring.js';
import type { ConnParam } from './connstring.js';
import { parseDuration, parseInteger, parsePoolMode, SettingValueError } from './setting-values.js';
import { ConfigError } from './types.js';
import { DATABASE_KEYS, refusesToIgnore, USER_KEYS } from './pgbouncer-keys.js';
import { didYouMean } from './suggest.js';
import type { ConfigWarning, DatabaseConfig, HostPort, UserConfig } from './types.js';

/** Where an entry was written, for errors and warnings. */
export interface EntrySite {
  readonly file: string;
  readonly line: number;
}

/** libpq's target_session_attrs values, plus pgrelay's `auto` (the rule used when none is given). */
export const TARGET_SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby', 'auto'] as const;
/**
 * `auto`, not libpq's `any` nor a blanket read-write: a database that names several hosts or
 * patroni_api is read-write (pgrelay picks the primary among the nodes, and after a switchover
 * lands on the new one); a database behind one host (a Service, a VIP, one server) takes the role
 * its first server login shows: writable = read-write from then on, read-only (a replica Service,
 * default_transaction_read_only=on) = any. See src/upstream/roles.ts.
 */
export const DEFAULT_TARGET_SESSION_ATTRS = 'auto';

/** `auto` with several hosts or patroni_api is read-write; otherwise the value as given. */
export function resolveTargetSessionAttrs(db: Pick<DatabaseConfig, 'targetSessionAttrs' | 'hosts' | 'patroniApi'>): string {
  if (db.targetSessionAttrs !== 'auto') return db.targetSessionAttrs;
  return db.hosts.length > 1 || db.patroniApi.length > 0 ? 'read-write' : 'auto';
}

/** PgBouncer names the admin console's database `pgbouncer`; a [databases] entry may not shadow it. */
export const RESERVED_DATABASE_NAMES: ReadonlySet<string> = new Set(['pgbouncer']);

const MAX_INT32 = 2_147_483_647;

/** The [databases] keys the entry parser implements (for "did you mean"). */
export const DATABASE_ENTRY_KEYS = [
  'host',
  'port',
  'dbname',
  'user',
  'password',
  'pool_size',
  'min_pool_size',
  'reserve_pool',
  'reserve_pool_size',
  'pool_mode',
  'max_db_connections',
  'server_lifetime',
  'connect_query',
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'patroni_api',
  'target_session_attrs',
  'auth_user',
  'auth_query',
  'auth_dbname',
] as const;

/** Keys PgBouncer or libpq accept on a [databases] line that pgrelay does not implement. */
export const UNIMPLEMENTED_DATABASE_KEYS: ReadonlyMap<string, string> = new Map([
  ['auth_user', 'PgBouncer'],
  ['auth_query', 'PgBouncer'],
  ['auth_dbname', 'PgBouncer'],
  ['load_balance_hosts', 'PgBouncer'],
  ['max_db_client_connections', 'PgBouncer'],
  ['hostaddr', 'libpq'],
  ['connect_timeout', 'libpq'],
  ['options', 'libpq'],
  ['passfile', 'libpq'],
  ['service', 'libpq'],
  ['sslmode', 'libpq'],
  ['sslrootcert', 'libpq'],
  ['sslcert', 'libpq'],
  ['sslkey', 'libpq'],
  ['sslpassword', 'libpq'],
  ['channel_binding', 'libpq'],
  ['gssencmode', 'libpq'],
  ['require_auth', 'libpq'],
  ['keepalives', 'libpq'],
  ['keepalives_idle', 'libpq'],
  ['keepalives_interval', 'libpq'],
  ['keepalives_count', 'libpq'],
  ['tcp_user_timeout', 'libpq'],
  ['fallback_application_name', 'libpq'],
]);

export const UNIMPLEMENTED_USER_KEYS: ReadonlySet<string> = new Set(['max_user_client_connections']);

/** A [databases] entry with nothing set: defaults filled in at use from [pgbouncer]. */
export function emptyDatabase(name: string): DatabaseConfig {
  return {
    name,
    hosts: parseHostList(undefined, undefined),
    dbname: null,
    user: null,
    password: null,
    poolSize: null,
    minPoolSize: null,
    reservePoolSize: null,
    poolMode: null,
    maxDbConnections: null,
    serverLifetimeMs: null,
    connectQuery: null,
    applicationName: null,
    clientEncoding: null,
    datestyle: null,
    timezone: null,
    targetSessionAttrs: DEFAULT_TARGET_SESSION_ATTRS,
    patroniApi: [],
    unsupportedKeys: [],
    authUser: null,
    authQuery: null,
    authDbname: null,
  };
}

export function emptyUser(name: string): UserConfig {
  return { name, poolMode: null, maxUserConnections: null };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Parses one `[databases]` line. Malformed values throw ConfigError; unimplemented keys warn. */
export function parseDatabaseEntry(
  name: string,
  connstr: string,
  site: EntrySite,
): { database: DatabaseConfig; warnings: ConfigWarning[] } {
  if (RESERVED_DATABASE_NAMES.has(name)) {
    throw new ConfigError(site.file, site.line, `database name "${name}" is reserved for the admin console`);
  }
  const params = parseParams(connstr, site, `database "${name}"`);
  const db: Mutable<DatabaseConfig> = emptyDatabase(name);
  const warnings: ConfigWarning[] = [];
  const unsupported: string[] = [];
  let host: string | undefined;
  let port: string | undefined;

  for (const { key, value } of params) {
    const fail = (reason: string): never => {
      throw new ConfigError(site.file, site.line, `database "${name}": ${key}: ${reason}`);
    };
    const num = (): number => guard(fail, () => parseInteger(value, 0, MAX_INT32));
    switch (key) {
      case 'host':
        host = value;
        break;
      case 'port':
        port = value;
        break;
      case 'dbname':
        db.dbname = value;
        break;
      case 'user':
        db.user = value;
        break;
      case 'password':
        db.password = value;
        break;
      case 'pool_size':
        db.poolSize = num();
        break;
      case 'min_pool_size':
        db.minPoolSize = num();
        break;
      // PgBouncer's key is reserve_pool; reserve_pool_size matches the [pgbouncer] name.
      case 'reserve_pool':
      case 'reserve_pool_size':
        db.reservePoolSize = num();
        break;
      case 'pool_mode':
        db.poolMode = guard(fail, () => parsePoolMode(value));
        break;
      case 'max_db_connections':
        db.maxDbConnections = num();
        break;
      case 'server_lifetime':
        db.serverLifetimeMs = guard(fail, () => parseDuration(value));
        break;
      case 'connect_query':
        db.connectQuery = value;
        break;
      case 'application_name':
        db.applicationName = value;
        break;
      case 'client_encoding':
        db.clientEncoding = value;
        break;
      case 'datestyle':
        db.datestyle = value;
        break;
      case 'timezone':
        db.timezone = value;
        break;
      case 'patroni_api': {
        // One REST base URL per host (http://host:8008), comma-separated like host=.
        const urls = value.split(',').map((u) => u.trim()).filter((u) => u !== '');
        for (const u of urls) {
          let parsed: URL | null = null;
          try {
            parsed = new URL(u);
          } catch {
            parsed = null;
          }
          if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) fail(`"${u}" is not an http(s) URL`);
        }
        db.patroniApi = urls;
        break;
      }
      // PgBouncer's per-database overrides of auth_user, auth_query and auth_dbname.
      case 'auth_user':
        db.authUser = value;
        break;
      case 'auth_query':
        db.authQuery = value;
        break;
      case 'auth_dbname':
        db.authDbname = value;
        break;
      case 'target_session_attrs': {
        const v = value.toLowerCase();
        if (!(TARGET_SESSION_ATTRS as readonly string[]).includes(v)) {
          fail(`invalid value "${value}" (use ${TARGET_SESSION_ATTRS.join(', ')})`);
        }
        db.targetSessionAttrs = v;
        break;
      }
      default: {
        // As PgBouncer ("unrecognized connection parameter"), an unknown key fails the load; a
        // known one pgrelay lacks fails when ignoring it would change security or meaning.
        const known = DATABASE_KEYS.get(key);
        if (known === undefined) {
          fail(`unknown connection parameter${didYouMean(key, [...DATABASE_ENTRY_KEYS, ...DATABASE_KEYS.keys()])} (not a pgrelay, PgBouncer or libpq key)`);
        } else if (refusesToIgnore(known, value)) {
          fail(`${known.origin} connection parameter that pgrelay does not implement, and ignoring it would change ${known.impact === 'security' ? 'security' : 'behaviour'}: ${known.note}`);
        }
        if (!unsupported.includes(key)) unsupported.push(key);
        const message = `database "${name}": ${known!.origin} connection parameter "${key}" is parsed but not implemented by pgrelay yet; ignored (${known!.note})`;
        warnings.push({ file: site.file, line: site.line, section: 'databases', key, message });
      }
    }
  }

  db.hosts = guardConn(site, `database "${name}"`, () => parseHostList(host, port));
  if (db.patroniApi.length > 0 && db.patroniApi.length !== db.hosts.length) {
    throw new ConfigError(site.file, site.line, `database "${name}": patroni_api lists ${db.patroniApi.length} URLs for ${db.hosts.length} hosts; give one per host, in the same order`);
  }
  db.targetSessionAttrs = resolveTargetSessionAttrs(db);
  db.unsupportedKeys = unsupported;
  return { database: db, warnings };
}

/** Parses one `[users]` line (`pool_mode`, `max_user_connections`). */
export function parseUserEntry(name: string, value: string, site: EntrySite): { user: UserConfig; warnings: ConfigWarning[] } {
  const params = parseParams(value, site, `user "${name}"`);
  const user: Mutable<UserConfig> = emptyUser(name);
  const warnings: ConfigWarning[] = [];
  for (const { key, value: v } of params) {
    const fail = (reason: string): never => {
      throw new ConfigError(site.file, site.line, `user "${name}": ${key}: ${reason}`);
    };
    if (key === 'pool_mode') {
      user.poolMode = guard(fail, () => parsePoolMode(v));
    } else if (key === 'max_user_connections') {
      user.maxUserConnections = guard(fail, () => parseInteger(v, 0, MAX_INT32));
    } else {
      const known = USER_KEYS.get(key);
      if (known === undefined) fail(`unknown user parameter${didYouMean(key, ['pool_mode', 'max_user_connections', ...USER_KEYS.keys()])} (only pool_mode and max_user_connections)`);
      if (refusesToIgnore(known!, v)) fail(`PgBouncer parameter that pgrelay does not implement, and ignoring it would change behaviour: ${known!.note}`);
      const message = `user "${name}": PgBouncer parameter "${key}" is parsed but not implemented by pgrelay yet; ignored`;
      warnings.push({ file: site.file, line: site.line, section: 'users', key, message });
    }
  }
  return { user, warnings };
}

/** Prints a database back as a [databases] line value; the password shows as `****`. */
export function formatDatabaseEntry(db: DatabaseConfig): string {
  const parts: string[] = [];
  const add = (key: string, value: string | number | null): void => {
    if (value !== null) parts.push(`${key}=${quoteConnValue(String(value))}`);
  };
  add('host', db.hosts.map((h) => h.host).join(','));
  add('port', formatPorts(db.hosts));
  add('dbname', db.dbname);
  add('user', db.user);
  if (db.password !== null) parts.push('password=****');
  add('pool_size', db.poolSize);
  add('min_pool_size', db.minPoolSize);
  add('reserve_pool', db.reservePoolSize);
  add('pool_mode', db.poolMode);
  add('max_db_connections', db.maxDbConnections);
  add('server_lifetime', db.serverLifetimeMs === null ? null : String(db.serverLifetimeMs / 1000));
  add('connect_query', db.connectQuery);
  add('application_name', db.applicationName);
  add('client_encoding', db.clientEncoding);
  add('datestyle', db.datestyle);
  add('timezone', db.timezone);
  add('target_session_attrs', db.targetSessionAttrs);
  if (db.patroniApi.length > 0) add('patroni_api', db.patroniApi.join(','));
  add('auth_user', db.authUser);
  add('auth_query', db.authQuery);
  add('auth_dbname', db.authDbname);
  return parts.join(' ');
}

export function formatUserEntry(user: UserConfig): string {
  const parts: string[] = [];
  if (user.poolMode !== null) parts.push(`pool_mode=${user.poolMode}`);
  if (user.maxUserConnections !== null) parts.push(`max_user_connections=${user.maxUserConnections}`);
  return parts.join(' ');
}

/** Quotes a [databases]/[users] key when the INI reader would not read it back bare. */
export function formatEntryName(name: string): string {
  return /^[A-Za-z0-9_.*-]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function formatPorts(hosts: readonly HostPort[]): string {
  const ports = hosts.map((h) => h.port);
  return ports.every((p) => p === ports[0]) ? String(ports[0]) : ports.join(',');
}

function parseParams(text: string, site: EntrySite, what: string): ConnParam[] {
  return guardConn(site, what, () => parseConnString(text));
}

function guardConn<T>(site: EntrySite, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ConnStringError) throw new ConfigError(site.file, site.line, `${what}: ${err.reason}`);
    throw err;
  }
}

function guard<T>(fail: (reason: string) => never, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SettingValueError) return fail(err.reason);
    throw err;
  }
}
