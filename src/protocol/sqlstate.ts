// SQLSTATE codes pgrelay itself reports to clients (PostgreSQL Appendix A), and the few classes
// it reads in a server's errors. Errors reach clients through src/errors.ts, which maps each of
// pgrelay's error codes to one of these.

export const SqlState = {
  ConnectionFailure: '08006',
  ProtocolViolation: '08P01',
  CannotConnectNow: '57P03',
  AdminShutdown: '57P01',
  QueryCanceled: '57014',
  TooManyConnections: '53300',
  InvalidAuthorization: '28000',
  InvalidPassword: '28P01',
  InvalidCatalogName: '3D000',
  FeatureNotSupported: '0A000',
  IdleInTransactionTimeout: '25P03',
  ProgramLimitExceeded: '54000',
  InternalError: 'XX000',
  InvalidParameterValue: '22023',
  InsufficientPrivilege: '42501',
  // PostgreSQL's own answers about prepared statements, which pgrelay gives in its place when it
  // tracks a client's statement names (and reads back in the server's replies).
  DuplicatePreparedStatement: '42P05',
  InvalidSqlStatementName: '26000',
  InvalidTextRepresentation: '22P02',
  SuccessfulCompletion: '00000',
  Warning: '01000',
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];
