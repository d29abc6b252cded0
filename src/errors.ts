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
