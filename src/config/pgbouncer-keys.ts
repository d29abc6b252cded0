// PgBouncer's keys that pgrelay does not implement, each classed by what ignoring it would do. A
// key that changes security or meaning (TLS, auth, limits a client relies on) fails the load: an
// operator who asked for it must not silently get something else. A pure tuning knob only warns.
// A key in SETTINGS_TABLE (or a [databases] key the parser knows) is implemented and never looked
// up here, so implementing a key is only a matter of adding it to its table.

/** What ignoring a key would do. */
export const KeyImpact = {
  /** Weaker security than asked for (no TLS, no auth rule, no privilege drop). */
  security: 'security',
  /** Different behaviour than asked for (a limit not enforced, a statement not tracked). */
  meaning: 'meaning',
  /** Only performance, resource or log tuning: the service does what it should without it. */
  tuning: 'tuning',
} as const;
export type KeyImpact = (typeof KeyImpact)[keyof typeof KeyImpact];

export interface UnimplementedKey {
  readonly impact: KeyImpact;
  /** What the key does in PgBouncer, or what its absence means here. */
  readonly note: string;
  /**
   * Values, besides the words for "off" (OFF_VALUES), that ask for nothing pgrelay lacks: a file
   * that spells out PgBouncer's default (`client_tls_sslmode = disable`) must still load.
   */
  readonly alsoInert?: readonly string[];
}

/** Values that turn a feature off: setting a key to one of them asks for nothing. */
export const OFF_VALUES: ReadonlySet<string> = new Set(['', '0', 'no', 'off', 'false', 'disable']);

const sec = (note: string, alsoInert?: readonly string[]): UnimplementedKey => ({ impact: KeyImpact.security, note, ...(alsoInert && { alsoInert }) });
const mean = (note: string, alsoInert?: readonly string[]): UnimplementedKey => ({ impact: KeyImpact.meaning, note, ...(alsoInert && { alsoInert }) });
const tune = (note: string): UnimplementedKey => ({ impact: KeyImpact.tuning, note });

const SERVER_TLS = 'TLS towards this database alone; pgrelay takes server_tls_sslmode (and its files) from [pgbouncer] for every database';
// sslmode values under which a plaintext connection is what was asked for.
const PLAINTEXT_OK = ['allow', 'prefer'];

/** [pgbouncer] keys of PgBouncer 1.25 that pgrelay has no row for in SETTINGS_TABLE. */
export const PGBOUNCER_SETTINGS: ReadonlyMap<string, UnimplementedKey> = new Map([
  ['auth_ident_file', tune('ident maps for HBA peer rules, which pgrelay\'s HBA does not have')],
  ['auth_ldap_options', tune('used only with auth_type = ldap, which pgrelay refuses')],
  ['disable_pqexec', sec('refuses the simple query protocol (multi-statement SQL injection guard)')],
  ['unix_socket_mode', sec('permissions of the Unix socket', ['0777', '777'])],
  ['unix_socket_group', sec('group of the Unix socket')],
  ['user', sec('the user PgBouncer switches to; pgrelay does not switch user, run it as that user')],
  ['max_db_client_connections', mean('a limit on client connections per database')],
  ['max_user_client_connections', mean('a limit on client connections per user')],
  ['query_timeout', mean('cancels queries running longer than this')],
  ['transaction_timeout', mean('closes transactions open longer than this')],
  ['track_extra_parameters', mean('session parameters kept per client and replayed on each server (IntervalStyle is tracked)', ['intervalstyle'])],
  ['peer_id', mean('PgBouncer peering (cancel requests across processes)')],
  ['so_reuseport', mean('several processes sharing one port')],
  ['conffile', tune('the config path SHOW CONFIG reports')],
  ['cancel_wait_timeout', tune('how long a cancel request may wait for a server')],
  ['dns_max_ttl', tune('DNS cache lifetime')],
  ['dns_nxdomain_ttl', tune('DNS negative cache lifetime')],
  ['dns_zone_check_period', tune('DNS zone serial polling')],
  ['resolv_conf', tune('resolver configuration file')],
  ['job_name', tune('Windows service name')],
  ['service_name', tune('Windows service name')],
  ['listen_backlog', tune('listen(2) backlog; pgrelay uses 1024')],
  ['log_stats', tune('periodic stats log line; pgrelay exports /metrics instead')],
  ['query_wait_notify', tune('a NOTICE to clients that wait for a server')],
  ['sbuf_loopcnt', tune('fairness of PgBouncer\'s event loop')],
  ['scram_iterations', tune('iterations of SCRAM verifiers PgBouncer computes from plain passwords')],
  ['server_fast_close', tune('closes servers at once during a PAUSE or RECONNECT')],
  ['server_round_robin', tune('server reuse order')],
  ['suspend_timeout', tune('SUSPEND (online restart) timeout; pgrelay has no SUSPEND')],
  ['syslog', tune('logging to syslog; pgrelay logs to stdout or logfile')],
  ['syslog_facility', tune('syslog facility')],
  ['syslog_ident', tune('syslog ident')],
  ['tcp_defer_accept', tune('TCP_DEFER_ACCEPT')],
  ['tcp_keepcnt', tune('TCP keepalive probe count (the kernel default applies)')],
  ['tcp_keepidle', tune('TCP keepalive idle time (the kernel default applies)')],
  ['tcp_keepintvl', tune('TCP keepalive interval (the kernel default applies)')],
  ['tcp_socket_buffer', tune('socket buffer size (the kernel default applies)')],
  ['tcp_user_timeout', tune('TCP_USER_TIMEOUT (the kernel default applies)')],
]);

/** [databases] connection parameters of PgBouncer and libpq that the entry parser does not implement. */
export const DATABASE_KEYS: ReadonlyMap<string, UnimplementedKey & { readonly origin: 'PgBouncer' | 'libpq' }> = new Map([
  ['max_db_client_connections', { origin: 'PgBouncer', ...mean('a limit on client connections to this database') }],
  ['load_balance_hosts', { origin: 'PgBouncer', ...tune('host order; pgrelay tries the last good host first') }],
  ['hostaddr', { origin: 'libpq', ...mean('the address to connect to instead of host') }],
  ['options', { origin: 'libpq', ...mean('server options (-c name=value) for every server connection') }],
  ['service', { origin: 'libpq', ...mean('connection settings from pg_service.conf') }],
  ['passfile', { origin: 'libpq', ...sec('where the upstream password comes from') }],
  ['sslmode', { origin: 'libpq', ...sec(SERVER_TLS, PLAINTEXT_OK) }],
  ['sslrootcert', { origin: 'libpq', ...tune('used only with sslmode, which fails the load when it asks for TLS') }],
  ['sslcert', { origin: 'libpq', ...tune('used only with sslmode, which fails the load when it asks for TLS') }],
  ['sslkey', { origin: 'libpq', ...tune('used only with sslmode, which fails the load when it asks for TLS') }],
  ['sslpassword', { origin: 'libpq', ...tune('used only with sslmode, which fails the load when it asks for TLS') }],
  ['channel_binding', { origin: 'libpq', ...sec('SCRAM channel binding', ['prefer']) }],
  ['gssencmode', { origin: 'libpq', ...sec('GSSAPI encryption', ['prefer']) }],
  ['require_auth', { origin: 'libpq', ...sec('which upstream authentication methods are accepted') }],
  ['connect_timeout', { origin: 'libpq', ...tune('connect timeout; server_connect_timeout applies') }],
  ['keepalives', { origin: 'libpq', ...tune('TCP keepalive; tcp_keepalive applies') }],
  ['keepalives_idle', { origin: 'libpq', ...tune('TCP keepalive idle time') }],
  ['keepalives_interval', { origin: 'libpq', ...tune('TCP keepalive interval') }],
  ['keepalives_count', { origin: 'libpq', ...tune('TCP keepalive probe count') }],
  ['tcp_user_timeout', { origin: 'libpq', ...tune('TCP_USER_TIMEOUT') }],
  ['fallback_application_name', { origin: 'libpq', ...tune('application_name when none is given') }],
]);

/** [users] parameters of PgBouncer that the entry parser does not implement. */
export const USER_KEYS: ReadonlyMap<string, UnimplementedKey> = new Map([
  ['max_user_client_connections', mean('a limit on client connections of this user')],
]);

/** The sections PgBouncer reads; anything else is a typo (PgBouncer ignores it, leaving e.g. no databases). */
export const KNOWN_SECTIONS = ['pgbouncer', 'pgrelay', 'databases', 'users', 'peers'] as const;

/**
 * Whether ignoring `key = value` must fail the load: it changes security or meaning and its value
 * asks for the feature (not "off", not PgBouncer's default). Otherwise it is only warned about.
 */
export function refusesToIgnore(key: UnimplementedKey, value: string): boolean {
  if (key.impact === KeyImpact.tuning) return false;
  const v = value.trim().replace(/^'(.*)'$/, '$1').toLowerCase();
  return !OFF_VALUES.has(v) && !(key.alsoInert ?? []).includes(v);
}
