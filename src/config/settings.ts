// The [pgbouncer]/[pgrelay] key table: INI name, default, meaning, origin and reload
// behaviour of every Settings field (rows built by setting-spec.ts, values parsed by
// setting-values.ts). Exported as data: the README's config reference and SHOW CONFIG come from it.

import type { Settings } from './types.js';
import { parseDheParams, parseEcdhCurve, parseTlsProtocols } from './tls-values.js';
import { parseAuthType, parseChoice, parseList, parseLogLevel, parsePoolMode, parseVerbose, type ParseContext } from './setting-values.js';
import { bool, duration, int, list, MAX_INT32, NO_RESTART, optStr, ours, path, pg, spec, str, tlsMode, tlsValue, type SettingSpec } from './setting-spec.js';

// ---- the table --------------------------------------------------------------------

export const SETTINGS_TABLE: readonly SettingSpec[] = Object.freeze([
  // listening
  spec(
    'listen_addr',
    'listenAddr',
    'list',
    '127.0.0.1',
    pg('Comma-separated addresses to accept client TCP connections on; * means all IPv4 addresses (0.0.0.0); empty disables TCP.', {
      ...NO_RESTART,
      pgbouncerDefault: '',
    }),
    (raw) => parseList(raw).map((a) => (a === '*' ? '0.0.0.0' : a)),
    (v) => v.join(','),
  ),
  int('listen_port', 'listenPort', '6432', 1, 65535, pg('TCP port clients connect to.', NO_RESTART)),
  path('unix_socket_dir', 'unixSocketDir', pg('Directory for the .s.PGSQL.<listen_port> Unix socket; empty disables it.', {
    ...NO_RESTART,
    pgbouncerDefault: '/tmp',
  })),

  // pooling
  spec(
    'pool_mode',
    'poolMode',
    'enum',
    'transaction',
    // Restart-only: a pool keeps the mode it was created with, and a client the mode it logged in
    // with (a session-mode client holds its server; switching it mid-session is not safe).
    pg('When a server connection returns to the pool: transaction (after each transaction) or session (when the client disconnects).', {
      ...NO_RESTART,
      pgbouncerDefault: 'session',
    }),
    (raw) => parsePoolMode(raw),
    (v) => v,
  ),
  int('max_client_conn', 'maxClientConn', '100', 1, MAX_INT32, pg('Most client connections accepted at once.')),
  int('default_pool_size', 'defaultPoolSize', '20', 1, MAX_INT32, pg('Server connections per user/database pair unless the database sets pool_size.')),
  int('min_pool_size', 'minPoolSize', '0', 0, MAX_INT32, pg('Server connections kept open per pool even when idle; 0 = none.')),
  int('reserve_pool_size', 'reservePoolSize', '0', 0, MAX_INT32, pg('Extra server connections a pool may open when clients have waited reserve_pool_timeout; 0 = none.')),
  duration('reserve_pool_timeout', 'reservePoolTimeoutMs', '5', pg('How long a client waits before the reserve pool is used.')),
  int('max_db_connections', 'maxDbConnections', '0', 0, MAX_INT32, pg('Most server connections per database across all users; 0 = unlimited.')),
  int('max_user_connections', 'maxUserConnections', '0', 0, MAX_INT32, pg('Most server connections per user across all databases; 0 = unlimited.')),
  duration('autodb_idle_timeout', 'autodbIdleTimeoutMs', '3600', pg('Drop a pool that has had no client, server connection or waiting client for this long (every pool, not only auto-created databases); 0 = never.')),
  int(
    'max_prepared_statements',
    'maxPreparedStatements',
    '200',
    0,
    MAX_INT32,
    pg('In transaction pooling, named prepared statements follow each client from server to server: each client keeps its own names, and each server connection keeps up to this many statements prepared (least recently used closed first); 0 = not tracked (named statements then only work inside one transaction).'),
  ),

  // server connection lifecycle
  duration('server_idle_timeout', 'serverIdleTimeoutMs', '600', pg('Close a server connection idle longer than this; 0 = never.')),
  duration('server_lifetime', 'serverLifetimeMs', '3600', pg('Close a server connection older than this once it is released; 0 = never.')),
  duration(
    'server_connect_timeout',
    'serverConnectTimeoutMs',
    '0.5',
    // PgBouncer's covers the whole login; a short "has it answered" deadline is what failover
    // needs (a stopped node behind a router, a pod address that no longer answers SYNs), and
    // server_login_timeout bounds the rest.
    pg('Give up on a server that has not answered within this long: the TCP connect plus its first reply to the startup packet. The rest of the login has server_login_timeout.', { pgbouncerDefault: '15' }),
  ),
  duration('server_login_retry', 'serverLoginRetryMs', '15', pg('Wait this long before retrying a server after a failed connect or login.')),
  duration('server_login_timeout', 'serverLoginTimeoutMs', '5', ours('Deadline of one server login as a whole: connect, startup, authentication and the write gate (its probe query, the Patroni check). Every attempt (pool growth, a probe, a verification) has its own.')),
  duration(
    'server_login_hedge_interval',
    'serverLoginHedgeMs',
    '0.1',
    ours('While clients wait for a server or a resume, start another server login this often without waiting for the earlier ones; the first that passes the write gate is used, later ones are closed. After a failed login the next also starts within this interval. 0 = one attempt at a time.'),
  ),
  int('server_login_parallel', 'serverLoginParallel', '8', 1, 1000, ours('Most server logins in flight at once for one pool (or one verification) while hedging, so that a dead upstream never gets a flood.')),
  str('server_reset_query', 'serverResetQuery', 'DISCARD ALL', pg('Query run on a server connection before another client gets it (session pooling, or always with server_reset_query_always); empty = none.')),
  bool('server_reset_query_always', 'serverResetQueryAlways', '0', pg('Run server_reset_query in transaction pooling mode too.')),
  str('server_check_query', 'serverCheckQuery', 'select 1', pg('Query that checks a server connection idle longer than server_check_delay before reuse; empty = no check.')),
  duration('server_check_delay', 'serverCheckDelayMs', '30', pg('Idle time after which a server connection is checked before reuse; 0 = check every time.')),
  duration(
    'server_cleanup_timeout',
    'serverCleanupTimeoutMs',
    '5',
    ours('Longest wait for one of pgrelay\'s own queries on a server: the ROLLBACK or server_reset_query after a client leaves, server_check_query, the replay of session parameters, the write-gate probe. Past it the server connection is closed, never reused; 0 = no limit.'),
  ),

  // client timeouts
  duration('query_wait_timeout', 'queryWaitTimeoutMs', '120', pg('Disconnect a client that waited this long for a server connection; 0 = wait forever.')),
  duration('client_login_timeout', 'clientLoginTimeoutMs', '60', pg('Disconnect a client that has not finished logging in after this long; 0 = never.')),
  duration('client_idle_timeout', 'clientIdleTimeoutMs', '0', pg('Disconnect a client idle longer than this; 0 = never.')),
  duration('idle_transaction_timeout', 'idleTransactionTimeoutMs', '0', pg('Disconnect a client idle inside a transaction longer than this; 0 = never.')),

  // authentication and access
  spec(
    'auth_type',
    'authType',
    'enum',
    'md5',
    pg('How clients authenticate: trust, plain, md5, scram-sha-256, cert (a client certificate whose CN is the user name) or hba (the method of the matching auth_hba_file line); pam, ldap and any are refused.'),
    (raw) => parseAuthType(raw),
    (v) => v,
  ),
  path('auth_file', 'authFile', pg('userlist.txt-format file of "user" "password" lines; relative to the config file\'s directory.')),
  list('admin_users', 'adminUsers', '', pg('Comma-separated users allowed to run any admin console command.')),
  list('stats_users', 'statsUsers', '', pg('Comma-separated users allowed read-only admin console commands (SHOW ...).')),
  list('ignore_startup_parameters', 'ignoreStartupParameters', '', pg('Comma-separated startup parameters accepted from clients but not passed to servers.')),
  bool('application_name_add_host', 'applicationNameAddHost', '0', pg('Append the client\'s address and port to application_name.')),

  // protocol limits
  int('max_packet_size', 'maxPacketSize', '2147483647', 1, MAX_INT32, pg('Largest protocol message accepted, in bytes.')),
  int('pkt_buf', 'pktBuf', '4096', 1, MAX_INT32, pg('Internal buffer size for packets, in bytes.', NO_RESTART)),

  // logging and process
  // Restart-only: the log destination is opened once, and every component holds that logger.
  path('logfile', 'logfile', pg('Log to this file instead of stdout; relative to the config file\'s directory; empty = stdout.', NO_RESTART)),
  path('pidfile', 'pidfile', pg('Write the process id here; relative to the config file\'s directory; empty = none.', NO_RESTART)),
  spec(
    'log_level',
    'logLevel',
    'enum',
    'info',
    ours('Log verbosity: fatal, error, warn, info, debug or trace. PgBouncer\'s verbose (0/1/2) is accepted too.'),
    (raw) => parseLogLevel(raw),
    (v) => v,
  ),
  {
    ...spec(
      'verbose',
      'logLevel',
      'integer',
      '0',
      pg('PgBouncer\'s verbosity count, mapped to log_level: 0 = info, 1 = debug, 2 or more = trace.'),
      (raw) => parseVerbose(raw),
      (v) => (v === 'trace' ? '2' : v === 'debug' ? '1' : '0'),
    ),
    aliasOf: 'log_level',
  },
  bool('log_connections', 'logConnections', '1', pg('Log each client connection.')),
  bool('log_disconnections', 'logDisconnections', '1', pg('Log each client disconnection with its reason.')),
  bool('log_pooler_errors', 'logPoolerErrors', '1', pg('Log error messages pgrelay sends to clients.')),
  bool('tcp_keepalive', 'tcpKeepalive', '1', pg('Enable TCP keepalive on client and server sockets.')),

  // pgrelay control plane
  str('admin_listen_addr', 'adminListenAddr', '127.0.0.1', ours('Address of the HTTP admin API (health, metrics, pause/resume).', NO_RESTART)),
  int('admin_listen_port', 'adminListenPort', '0', 0, 65535, ours('Port of the HTTP admin API; 0 = disabled.', NO_RESTART)),
  optStr('admin_token', 'adminToken', ours('Bearer token required by the HTTP admin API. Prefer admin_token_file.', { secret: true })),
  path('admin_token_file', 'adminTokenFile', ours('File holding the admin API token; relative to the config file\'s directory.')),
  duration('pause_drain_timeout', 'pauseDrainTimeoutMs', '30', ours('How long PAUSE waits for in-flight transactions to finish.')),
  duration('pause_max_duration', 'pauseMaxDurationMs', '60', ours('A pause lasting longer than this is lifted automatically; 0 = no limit.')),
  duration('shutdown_timeout', 'shutdownTimeoutMs', '30', ours('On shutdown, how long to wait for clients to finish before closing them.')),
  duration('stats_period', 'statsPeriodMs', '60', pg('Period over which SHOW STATS computes its avg_ columns (rates per second, times per transaction and query).')),
  spec(
    'log_format',
    'logFormat',
    'enum',
    'json',
    ours('Log line format: json (one JSON object per line, for log shippers) or text (time, level, message, then key=value, for a terminal).', NO_RESTART),
    (raw) => parseChoice(raw, 'log_format', ['json', 'text'] as const),
    (v) => v,
  ),
  spec(
    'log_time_format',
    'logTimeFormat',
    'enum',
    'epoch',
    ours('The time field of JSON log lines: epoch (milliseconds, pino\'s default) or iso (ISO 8601 UTC, e.g. 2026-01-31T12:00:00.000Z). Text lines always use ISO 8601.', NO_RESTART),
    (raw) => parseChoice(raw, 'log_time_format', ['epoch', 'iso'] as const),
    (v) => v,
  ),

  // TLS towards clients: PgBouncer's keys and meanings
  tlsMode('client_tls_sslmode', 'clientTlsSslmode', 'disable', pg('TLS for client connections: disable (SSLRequest answered N), allow/prefer (TLS when the client asks), require (plaintext TCP clients are refused), verify-ca/verify-full (TLS with a client certificate signed by client_tls_ca_file).')),
  path('client_tls_key_file', 'clientTlsKeyFile', pg('Private key pgrelay presents to clients (PEM); reread on reload.')),
  path('client_tls_cert_file', 'clientTlsCertFile', pg('Certificate (chain) pgrelay presents to clients (PEM); reread on reload.')),
  path('client_tls_ca_file', 'clientTlsCaFile', pg('CA certificates client certificates are verified against (PEM); needed for verify-ca, verify-full and cert auth.')),
  tlsValue('client_tls_protocols', 'clientTlsProtocols', 'secure', pg('TLS versions offered to clients: tlsv1.0..tlsv1.3, all, secure (tlsv1.2,tlsv1.3) or legacy; one contiguous range.'), parseTlsProtocols),
  str('client_tls_ciphers', 'clientTlsCiphers', 'default', pg('OpenSSL cipher list for TLS 1.2 and older towards clients; default/secure/fast/normal = OpenSSL\'s defaults, all = every cipher.')),
  str('client_tls13_ciphers', 'clientTls13Ciphers', '', pg('TLS 1.3 cipher suites towards clients (TLS_AES_256_GCM_SHA384:...); empty = the defaults.')),
  tlsValue('client_tls_ecdhcurve', 'clientTlsEcdhcurve', 'auto', pg('Elliptic curve(s) for ECDH key exchange with clients: auto or OpenSSL curve names.'), parseEcdhCurve),
  tlsValue('client_tls_dheparams', 'clientTlsDheparams', 'auto', pg('DHE key exchange with clients: auto (2048-bit) or none; legacy (1024-bit) is refused.'), parseDheParams),

  // TLS towards PostgreSQL: PgBouncer's keys and meanings
  tlsMode('server_tls_sslmode', 'serverTlsSslmode', 'prefer', pg('TLS for server connections (pgrelay\'s own probes and lookups too): disable, allow (TLS only if the server refuses plaintext), prefer (TLS when the server offers it, unverified), require (TLS or no connection, unverified), verify-ca (certificate signed by server_tls_ca_file), verify-full (verify-ca plus the host name).')),
  path('server_tls_ca_file', 'serverTlsCaFile', pg('CA certificates server certificates are verified against (PEM); needed for verify-ca and verify-full.')),
  path('server_tls_key_file', 'serverTlsKeyFile', pg('Private key of the client certificate pgrelay presents to PostgreSQL (PEM).')),
  path('server_tls_cert_file', 'serverTlsCertFile', pg('Client certificate pgrelay presents to PostgreSQL (PEM).')),
  tlsValue('server_tls_protocols', 'serverTlsProtocols', 'secure', pg('TLS versions used towards PostgreSQL: tlsv1.0..tlsv1.3, all, secure (tlsv1.2,tlsv1.3) or legacy; one contiguous range.'), parseTlsProtocols),
  str('server_tls_ciphers', 'serverTlsCiphers', 'default', pg('OpenSSL cipher list for TLS 1.2 and older towards PostgreSQL; default/secure/fast/normal = OpenSSL\'s defaults, all = every cipher.')),
  str('server_tls13_ciphers', 'serverTls13Ciphers', '', pg('TLS 1.3 cipher suites towards PostgreSQL; empty = the defaults.')),

  // auth_type = hba and auth_query
  path('auth_hba_file', 'authHbaFile', pg('pg_hba.conf-format rules for auth_type = hba (local, host, hostssl, hostnossl; trust, reject, md5, scram-sha-256, password, cert); reread on reload.')),
  optStr('auth_user', 'authUser', pg('User that runs auth_query for users not in auth_file; its secret comes from auth_file. Empty = no lookups.')),
  str('auth_query', 'authQuery', 'SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin', pg('Query returning (user name, md5 or SCRAM verifier) for $1, run as auth_user.')),
  optStr('auth_dbname', 'authDbname', pg('Database auth_query runs in; empty = the database the client asked for.')),
  duration('auth_query_timeout', 'authQueryTimeoutMs', '5', ours('Longest wait for one auth_query lookup (connecting included); past it the login fails with 08006.')),
  duration('auth_query_cache_ttl', 'authQueryCacheTtlMs', '10', ours('How long an auth_query answer (a verifier, or no such user) is reused: a changed or dropped password takes effect on the first login after this; 0 = look up every login.')),
  int('auth_query_pool_size', 'authQueryPoolSize', '2', 1, 100, ours('Most auth_query connections open at once per database (a pool of their own, not held by PAUSE).')),
  duration('tls_file_check_period', 'tlsFileCheckPeriodMs', '0', ours('How often pgrelay checks the client_tls_* and server_tls_* files for new contents and loads them (as RELOAD does for them alone), for certificates rotated in place (cert-manager, a Kubernetes Secret volume); 0 = only on SIGHUP and RELOAD.')),
] as SettingSpec[]);

const BY_KEY: ReadonlyMap<string, SettingSpec> = new Map(SETTINGS_TABLE.map((s) => [s.key, s]));

export function findSetting(key: string): SettingSpec | undefined {
  return BY_KEY.get(key.toLowerCase());
}

/** Parses `raw` for `spec` into `target[spec.field]` (the union type needs one cast). */
export function applySetting(target: Partial<Record<keyof Settings, unknown>>, s: SettingSpec, raw: string, ctx: ParseContext): void {
  target[s.field] = (s.parse as (raw: string, ctx: ParseContext) => unknown)(raw, ctx);
}

/** The value of `s` in `settings` as INI text; secrets print as `****` when set. */
export function formatSetting(s: SettingSpec, settings: Settings): string {
  const value = settings[s.field];
  if (s.secret) return value === null || value === '' ? '' : '****';
  return (s.format as (v: unknown) => string)(value);
}

function buildDefaults(): Settings {
  const out: Partial<Record<keyof Settings, unknown>> = {};
  for (const s of SETTINGS_TABLE) {
    if (s.aliasOf === undefined) applySetting(out, s, s.default, { baseDir: null });
  }
  for (const v of Object.values(out)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(out) as Settings;
}

/** Every setting at its default, derived from the table so the two cannot disagree. */
export const DEFAULT_SETTINGS: Settings = buildDefaults();

/**
 * [pgbouncer] keys PgBouncer understands that pgrelay does not implement. They load with
 * a warning instead of failing, so an existing pgbouncer.ini works unchanged, but the
 * operator is told the setting has no effect. The note says what that means in practice.
 */
export const UNIMPLEMENTED_PGBOUNCER_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['auth_ident_file', ''],
  ['auth_ldap_options', ''],
  ['cancel_wait_timeout', ''],
  ['conffile', ''],
  ['disable_pqexec', ''],
  ['dns_max_ttl', ''],
  ['dns_nxdomain_ttl', ''],
  ['dns_zone_check_period', ''],
  ['resolv_conf', ''],
  ['job_name', ''],
  ['service_name', ''],
  ['listen_backlog', ''],
  ['log_stats', ''],
  ['max_db_client_connections', ''],
  ['max_user_client_connections', ''],
  ['peer_id', ''],
  ['query_timeout', ''],
  ['query_wait_notify', ''],
  ['transaction_timeout', ''],
  ['sbuf_loopcnt', ''],
  ['scram_iterations', ''],
  ['server_fast_close', ''],
  ['server_round_robin', ''],
  ['so_reuseport', ''],
  ['suspend_timeout', ''],
  ['syslog', ''],
  ['syslog_facility', ''],
  ['syslog_ident', ''],
  ['tcp_defer_accept', ''],
  ['tcp_keepcnt', ''],
  ['tcp_keepidle', ''],
  ['tcp_keepintvl', ''],
  ['tcp_socket_buffer', ''],
  ['tcp_user_timeout', ''],
  ['track_extra_parameters', ''],
  ['unix_socket_group', ''],
  ['unix_socket_mode', ''],
  ['user', 'pgrelay does not switch user; run it as the intended user'],
]);
