// SQLSTATE codes pgrelay itself reports to clients (PostgreSQL Appendix A).

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
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];
