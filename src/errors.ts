// The catalogue of pgrelay's own errors: a stable code for logs and the admin API, and the
// SQLSTATE a client sees when the error reaches it.

import { SqlState } from './protocol/sqlstate.js';

export const ErrorCode = {
  QueryWaitTimeout: 'PGRELAY_QUERY_WAIT_TIMEOUT',
  ServerConnectFailed: 'PGRELAY_SERVER_CONNECT_FAILED',
  ServerLoginFailed: 'PGRELAY_SERVER_LOGIN_FAILED',
  ServerLost: 'PGRELAY_SERVER_LOST',
  PoolClosed: 'PGRELAY_POOL_CLOSED',
  TooManyClients: 'PGRELAY_TOO_MANY_CLIENTS',
  NoSuchDatabase: 'PGRELAY_NO_SUCH_DATABASE',
  AuthFailed: 'PGRELAY_AUTH_FAILED',
  NoSuchUser: 'PGRELAY_NO_SUCH_USER',
  ProtocolViolation: 'PGRELAY_PROTOCOL_VIOLATION',
  PacketTooLarge: 'PGRELAY_PACKET_TOO_LARGE',
  UnsupportedStartupParameter: 'PGRELAY_UNSUPPORTED_STARTUP_PARAMETER',
  LoginTimeout: 'PGRELAY_CLIENT_LOGIN_TIMEOUT',
  IdleTransactionTimeout: 'PGRELAY_IDLE_TRANSACTION_TIMEOUT',
  ClientIdleTimeout: 'PGRELAY_CLIENT_IDLE_TIMEOUT',
  QueryCanceled: 'PGRELAY_QUERY_CANCELED',
  ShuttingDown: 'PGRELAY_SHUTTING_DOWN',
  Killed: 'PGRELAY_KILLED',
  UnsupportedProtocol: 'PGRELAY_UNSUPPORTED_PROTOCOL',
  NoUserName: 'PGRELAY_NO_USER_NAME',
  ReplicationRefused: 'PGRELAY_REPLICATION_REFUSED',
  /** server_check_query or the SET replay could not run (the connection failed): retried elsewhere first. */
  ServerPrepareFailed: 'PGRELAY_SERVER_PREPARE_FAILED',
  /** A server refused the client's own session settings; the client sees the server's SQLSTATE. */
  SessionSettingRefused: 'PGRELAY_SESSION_SETTING_REFUSED',
  /** An admin console command failed (bad syntax, unknown database, refused for stats_users). */
  AdminCommandFailed: 'PGRELAY_ADMIN_COMMAND_FAILED',
  Internal: 'PGRELAY_INTERNAL',
  /** The server's login exchange was one pgrelay cannot follow (no SCRAM-SHA-256, a bad signature). */
  ServerProtocolViolation: 'PGRELAY_SERVER_PROTOCOL_VIOLATION',
  /** The server asked for a password pgrelay does not have for that user. */
  ServerCredentialMissing: 'PGRELAY_SERVER_CREDENTIAL_MISSING',
  /** client_tls_sslmode requires TLS and the client did not ask for it. */
  TlsRequired: 'PGRELAY_TLS_REQUIRED',
  /** The TLS handshake with a client failed (the connection is dropped: no FATAL can reach it). */
  TlsHandshakeFailed: 'PGRELAY_TLS_HANDSHAKE_FAILED',
  /** TLS towards the server was required and refused, or its certificate did not verify. */
  ServerTlsRefused: 'PGRELAY_SERVER_TLS_REFUSED',
  /** No auth_hba_file line allows the connection, or the line that matches says reject. */
  HbaRejected: 'PGRELAY_HBA_REJECTED',
  /** The cert method: no verified client certificate, or its CN is not the user name. */
  CertAuthFailed: 'PGRELAY_CERT_AUTH_FAILED',
  /** auth_query could not be run (no connection, an error, a timeout): the login cannot be checked. */
  AuthQueryFailed: 'PGRELAY_AUTH_QUERY_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const SQLSTATE_OF: Record<ErrorCode, string> = {
  PGRELAY_QUERY_WAIT_TIMEOUT: SqlState.ProtocolViolation, // PgBouncer's choice for query_wait_timeout
  PGRELAY_SERVER_CONNECT_FAILED: SqlState.ConnectionFailure,
  PGRELAY_SERVER_LOGIN_FAILED: SqlState.ConnectionFailure,
  PGRELAY_SERVER_LOST: SqlState.ConnectionFailure,
  PGRELAY_POOL_CLOSED: SqlState.CannotConnectNow,
  PGRELAY_TOO_MANY_CLIENTS: SqlState.TooManyConnections,
  PGRELAY_NO_SUCH_DATABASE: SqlState.InvalidCatalogName,
  PGRELAY_AUTH_FAILED: SqlState.InvalidPassword,
  PGRELAY_NO_SUCH_USER: SqlState.InvalidAuthorization,
  PGRELAY_PROTOCOL_VIOLATION: SqlState.ProtocolViolation,
  PGRELAY_PACKET_TOO_LARGE: SqlState.ProgramLimitExceeded,
  PGRELAY_UNSUPPORTED_STARTUP_PARAMETER: SqlState.ProtocolViolation,
  PGRELAY_CLIENT_LOGIN_TIMEOUT: SqlState.ProtocolViolation,
  PGRELAY_IDLE_TRANSACTION_TIMEOUT: SqlState.IdleInTransactionTimeout,
  PGRELAY_CLIENT_IDLE_TIMEOUT: SqlState.ProtocolViolation,
  PGRELAY_QUERY_CANCELED: SqlState.QueryCanceled,
  PGRELAY_SHUTTING_DOWN: SqlState.AdminShutdown,
  PGRELAY_KILLED: SqlState.AdminShutdown,
  PGRELAY_UNSUPPORTED_PROTOCOL: SqlState.FeatureNotSupported,
  PGRELAY_NO_USER_NAME: SqlState.InvalidAuthorization,
  PGRELAY_REPLICATION_REFUSED: SqlState.FeatureNotSupported,
  PGRELAY_SERVER_PREPARE_FAILED: SqlState.ConnectionFailure,
  PGRELAY_SESSION_SETTING_REFUSED: SqlState.InvalidParameterValue,
  PGRELAY_ADMIN_COMMAND_FAILED: SqlState.ProtocolViolation,
  PGRELAY_INTERNAL: SqlState.InternalError,
  PGRELAY_SERVER_PROTOCOL_VIOLATION: SqlState.ProtocolViolation,
  PGRELAY_SERVER_CREDENTIAL_MISSING: SqlState.InvalidPassword,
  PGRELAY_TLS_REQUIRED: SqlState.InvalidAuthorization,
  PGRELAY_TLS_HANDSHAKE_FAILED: SqlState.ProtocolViolation,
  // A configuration problem, not a passing one: waiting clients are told at once (pool.ts).
  PGRELAY_SERVER_TLS_REFUSED: SqlState.InvalidAuthorization,
  PGRELAY_HBA_REJECTED: SqlState.InvalidAuthorization,
  PGRELAY_CERT_AUTH_FAILED: SqlState.InvalidAuthorization,
  PGRELAY_AUTH_QUERY_FAILED: SqlState.ConnectionFailure,
};

export class PgRelayError extends Error {
  readonly sqlstate: string;
  constructor(
    readonly code: ErrorCode,
    message: string,
    sqlstate?: string,
  ) {
    super(message);
    this.name = 'PgRelayError';
    this.sqlstate = sqlstate ?? SQLSTATE_OF[code];
  }
}

/**
 * Why a connection ended, as a stable code: the key of the disconnect counters (never free text,
 * so the metric's series stay a bounded set). Details go to the log line only.
 */
export const Disconnect = {
  // clients
  ClientTerminated: 'client_terminated',
  ClientClosed: 'client_closed',
  ClientSocketError: 'client_socket_error',
  CancelRequest: 'cancel_request',
  ServerEndedSession: 'server_ended_session',
  ConsoleClosed: 'console_closed',
  // servers
  ServerClosed: 'server_closed',
  ServerFatal: 'server_fatal',
  ServerSocketError: 'server_socket_error',
  InvalidServerMessage: 'invalid_server_message',
  ClientLeftMidRequest: 'client_left_mid_request',
  ClientLeftUnsynced: 'client_left_unsynced',
  ClientLeftBusy: 'client_left_during_copy_or_internal_query',
  ResetFailed: 'reset_failed',
  CleanupTimeout: 'server_cleanup_timeout',
  PrepareFailed: 'prepare_failed',
  IdleTimeout: 'server_idle_timeout',
  Lifetime: 'server_lifetime',
  CloseNeeded: 'close_needed',
  Paused: 'paused',
  OpenedBeforePause: 'opened_before_pause',
  PoolClosed: 'pool_closed',
  WriteGate: 'write_gate',
  Verification: 'verification',
  BetterUpstream: 'better_upstream',
  ConnectQueryFailed: 'connect_query_failed',
  LeaderLost: 'leader_lost',
  Reconnect: 'reconnect',
  /** server_tls_* or its files changed on reload: servers reconnect with the new settings. */
  ServerTlsChanged: 'server_tls_changed',
  Kill: 'kill',
  DatabaseChanged: 'database_changed',
  DatabaseRemoved: 'database_removed',
  PoolRetired: 'autodb_idle_timeout',
  Shutdown: 'shutdown',
  /** A login that passed its deadline (server_login_timeout) arrived anyway. */
  LoginTimeout: 'server_login_timeout',
  /** A hedged login finished after another had served the waiters, and the pool was full. */
  PoolFull: 'pool_full',
} as const;
export type Disconnect = (typeof Disconnect)[keyof typeof Disconnect];

/** The disconnect code of a client closed by one of pgrelay's errors ("PGRELAY_QUERY_WAIT_TIMEOUT" → "query_wait_timeout"). */
export function errorDisconnect(code: ErrorCode): string {
  return code.slice('PGRELAY_'.length).toLowerCase();
}
