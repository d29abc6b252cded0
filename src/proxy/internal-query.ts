// One of pgrelay's own queries on a server (a ROLLBACK, server_reset_query, the check query and
// the replay of session settings): how it ends, and the deadline (server_cleanup_timeout) it runs
// under. ServerConn.runInternal() starts it; the server's ReadyForQuery or its loss ends it.

/**
 * One of pgrelay's own queries got an ErrorResponse and then ReadyForQuery: the server answered
 * and is in a known state. Any other rejection of runInternal() means the connection is gone.
 */
export class ServerQueryError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string,
  ) {
    super(message);
    this.name = 'ServerQueryError';
  }
}

export class InternalQuery {
  /** The first ErrorResponse the query got (the server is still in sync: ReadyForQuery follows). */
  error: ServerQueryError | null = null;

  constructor(
    private readonly resolve: () => void,
    private readonly reject: (err: Error) => void,
    /** Closes the server when it does not answer within server_cleanup_timeout; null = no limit. */
    private readonly timer: NodeJS.Timeout | null,
  ) {}

  /** ReadyForQuery: the server answered, with or without an error. */
  settle(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.error !== null) this.reject(this.error);
    else this.resolve();
  }

  /** The connection is gone: the query will never be answered. */
  abort(reason: string): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.reject(new Error(reason));
  }
}
