// The shape of a validated, frozen pgrelay configuration. Pure data: parsed once
// (config/load.ts), passed to constructors, replaced whole on reload.

export const PoolMode = { transaction: 'transaction', session: 'session' } as const;
export type PoolMode = (typeof PoolMode)[keyof typeof PoolMode];

export const AuthType = {
  trust: 'trust',
  plain: 'plain',
  md5: 'md5',
  scram: 'scram-sha-256',
  /** The method comes from the auth_hba_file rule the connection matches. */
  hba: 'hba',
  /** A client certificate verified against client_tls_ca_file whose CN is the user name. */
  cert: 'cert',
} as const;
export type AuthType = (typeof AuthType)[keyof typeof AuthType];

/** PgBouncer's (and libpq's) sslmode values, weakest first: TLS_MODE_ORDER compares them. */
export const TlsMode = {
  disable: 'disable',
  allow: 'allow',
  prefer: 'prefer',
  require: 'require',
  verifyCa: 'verify-ca',
  verifyFull: 'verify-full',
} as const;
export type TlsMode = (typeof TlsMode)[keyof typeof TlsMode];
export const TLS_MODE_ORDER: readonly TlsMode[] = Object.values(TlsMode);

/** One upstream address from a libpq-style `host=a,b port=1,2` list. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** A `[databases]` entry. Unset fields fall back to `[pgbouncer]` defaults at use. */
export interface DatabaseConfig {
  /** Name clients connect to (`*` for the fallback entry). */
  readonly name: string;
  /** Upstream hosts in the order given; never empty (defaults to 127.0.0.1:5432). */
  readonly hosts: readonly HostPort[];
  /** Upstream database name; null = same as the client's database name. */
  readonly dbname: string | null;
  /** Forced upstream user; null = the client's user. */
  readonly user: string | null;
  /** Upstream password for `user`; null = look it up in auth_file. */
  readonly password: string | null;
  readonly poolSize: number | null;
  readonly minPoolSize: number | null;
  readonly reservePoolSize: number | null;
  readonly poolMode: PoolMode | null;
  readonly maxDbConnections: number | null;
  readonly serverLifetimeMs: number | null;
  readonly connectQuery: string | null;
  readonly applicationName: string | null;
  readonly clientEncoding: string | null;
  readonly datestyle: string | null;
  readonly timezone: string | null;
  /**
   * pgrelay-only: the Patroni REST API of each host, in the same order as `hosts` (empty = none).
   * A host is only used while its `GET /primary` answers 200 (it holds the leader lock).
   */
  readonly patroniApi: readonly string[];
  /**
   * read-write | primary | any | read-only | standby | prefer-standby (libpq names), or `auto`
   * (the default: see resolveTargetSessionAttrs in databases.ts and src/upstream/roles.ts).
   */
  readonly targetSessionAttrs: string;
  /** Keys given on the line that pgrelay does not implement (reported as warnings). */
  readonly unsupportedKeys: readonly string[];
  /** Per-database auth_user / auth_query / auth_dbname; null = the [pgbouncer] value. */
  readonly authUser: string | null;
  readonly authQuery: string | null;
  readonly authDbname: string | null;
}

/** A `[users]` entry. */
export interface UserConfig {
  readonly name: string;
  readonly poolMode: PoolMode | null;
  readonly maxUserConnections: number | null;
}

/** The `[pgbouncer]` / `[pgrelay]` section. Durations are milliseconds, 0 = disabled. */
export interface Settings {
  readonly listenAddr: readonly string[];
  readonly listenPort: number;
  readonly unixSocketDir: string | null;
  readonly poolMode: PoolMode;
  readonly maxClientConn: number;
  readonly defaultPoolSize: number;
  readonly minPoolSize: number;
  readonly reservePoolSize: number;
  readonly reservePoolTimeoutMs: number;
  readonly maxDbConnections: number;
  readonly maxUserConnections: number;
  /** A pool empty and unused this long is dropped (0 = never). */
  readonly autodbIdleTimeoutMs: number;
  /** Prepared statements pgrelay keeps per server connection in transaction pooling; 0 = not tracked. */
  readonly maxPreparedStatements: number;
  readonly serverIdleTimeoutMs: number;
  readonly serverLifetimeMs: number;
  readonly serverConnectTimeoutMs: number;
  readonly serverLoginRetryMs: number;
  /** Deadline of one whole server login (connect, auth, write gate). */
  readonly serverLoginTimeoutMs: number;
  /** While clients wait, another login starts this often (0 = one at a time). */
  readonly serverLoginHedgeMs: number;
  /** Most logins in flight per pool or verification while hedging. */
  readonly serverLoginParallel: number;
  readonly queryWaitTimeoutMs: number;
  readonly clientLoginTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly idleTransactionTimeoutMs: number;
  readonly serverResetQuery: string;
  readonly serverResetQueryAlways: boolean;
  readonly serverCheckQuery: string;
  readonly serverCheckDelayMs: number;
  readonly serverCleanupTimeoutMs: number;
  readonly authType: AuthType;
  readonly authFile: string | null;
  readonly adminUsers: readonly string[];
  readonly statsUsers: readonly string[];
  readonly ignoreStartupParameters: readonly string[];
  readonly applicationNameAddHost: boolean;
  readonly maxPacketSize: number;
  readonly pktBuf: number;
  readonly logfile: string | null;
  readonly pidfile: string | null;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly logConnections: boolean;
  readonly logDisconnections: boolean;
  readonly logPoolerErrors: boolean;
  readonly tcpKeepalive: boolean;
  // pgrelay-only keys (used by the control plane; parsed now so configs can carry them)
  readonly adminListenAddr: string;
  /** 0 = HTTP admin port disabled. */
  readonly adminListenPort: number;
  readonly adminToken: string | null;
  readonly adminTokenFile: string | null;
  readonly pauseDrainTimeoutMs: number;
  readonly pauseMaxDurationMs: number;
  readonly shutdownTimeoutMs: number;
  /** SHOW STATS' avg_ columns are computed over this period (PgBouncer's stats_period). */
  readonly statsPeriodMs: number;
  readonly logFormat: 'json' | 'text';
  /** The `time` field of JSON log lines: epoch milliseconds or an ISO 8601 string. */
  readonly logTimeFormat: 'epoch' | 'iso';
  // TLS towards clients (PgBouncer's client_tls_*)
  readonly clientTlsSslmode: TlsMode;
  readonly clientTlsKeyFile: string | null;
  readonly clientTlsCertFile: string | null;
  readonly clientTlsCaFile: string | null;
  /** PgBouncer's protocol list (`secure`, `all`, `tlsv1.2,tlsv1.3` ...), normalised. */
  readonly clientTlsProtocols: string;
  readonly clientTlsCiphers: string;
  readonly clientTls13Ciphers: string;
  readonly clientTlsEcdhcurve: string;
  readonly clientTlsDheparams: string;
  // TLS towards PostgreSQL (PgBouncer's server_tls_*)
  readonly serverTlsSslmode: TlsMode;
  readonly serverTlsCaFile: string | null;
  readonly serverTlsKeyFile: string | null;
  readonly serverTlsCertFile: string | null;
  readonly serverTlsProtocols: string;
  readonly serverTlsCiphers: string;
  readonly serverTls13Ciphers: string;
  // auth_type = hba and auth_query
  readonly authHbaFile: string | null;
  /** The user auth_query runs as; null = no lookups (users must be in auth_file). */
  readonly authUser: string | null;
  readonly authQuery: string;
  /** The database auth_query runs in; null = the database the client asked for. */
  readonly authDbname: string | null;
  readonly authQueryTimeoutMs: number;
  /** How long a lookup's answer (a verifier, or "no such user") is reused; 0 = never. */
  readonly authQueryCacheTtlMs: number;
  /** Most lookup connections open at once per database. */
  readonly authQueryPoolSize: number;
  /** How often the TLS files are checked for new contents (0 = only on SIGHUP / RELOAD). */
  readonly tlsFileCheckPeriodMs: number;
}

/** A key the file set that pgrelay parsed but does not implement. */
export interface ConfigWarning {
  readonly file: string;
  readonly line: number;
  readonly section: string;
  readonly key: string;
  readonly message: string;
}

export interface Config {
  /** Absolute path of the file this came from (null when built in code). */
  readonly file: string | null;
  readonly settings: Settings;
  /** Keyed by client-facing database name; `*` is the fallback entry. */
  readonly databases: ReadonlyMap<string, DatabaseConfig>;
  readonly users: ReadonlyMap<string, UserConfig>;
  readonly warnings: readonly ConfigWarning[];
  /** Where each setting and database was written (absent for a Config built in code). */
  readonly sites?: ConfigSites;
}

/** A file and line, for errors found after parsing (--check's startup checks). */
export interface ConfigSite {
  readonly file: string;
  readonly line: number;
  /** The key as written (`verbose` for logLevel, say). */
  readonly key: string;
}

export interface ConfigSites {
  readonly settings: ReadonlyMap<keyof Settings, ConfigSite>;
  readonly databases: ReadonlyMap<string, ConfigSite>;
}

/** Thrown for an unreadable or malformed file: names the file, line and reason. */
export class ConfigError extends Error {
  readonly code = 'PGRELAY_CONFIG_INVALID';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = 'ConfigError';
  }
}
