// The states of a client session and the options of its close(): shared by the session, the
// timeouts sweep, the control verbs and the app's shutdown.

/** One state per lifecycle step; changed only by setState(). */
export const ClientState = {
  login: 'login',
  idle: 'idle',
  waiting: 'waiting',
  linking: 'linking',
  active: 'active',
  /** Logged in to the admin console (database "pgbouncer"): no server is ever linked. */
  console: 'console',
  closed: 'closed',
} as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

/**
 * Servers a client may try before its request has reached any of them: a server lost while being
 * prepared for it (check query, SET replay) is replaced, a few times, without the client knowing.
 */
export const MAX_LINK_ATTEMPTS = 4;

/** How close() ends the socket and what it records. */
export interface CloseOptions {
  /** Count and log the disconnect (false for a CancelRequest connection, which is not a session). */
  readonly counted?: boolean;
  /**
   * The client ended the session itself (Terminate, EOF, CancelRequest): once everything written
   * has reached the kernel the socket is destroyed at once, with no shutdown round trip.
   */
  readonly byClient?: boolean;
}
