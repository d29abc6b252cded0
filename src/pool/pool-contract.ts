// What a pool needs of the things around it: the server connections it hands out, the clients
// waiting for one, the factory that opens them, the shared connection budget and its observer.
// Kept apart so that the proxy layer depends on these small interfaces, not on the pool itself.

import type { PgRelayError } from '../errors.js';
import { SqlState } from '../protocol/sqlstate.js';
import type { Pool } from './pool.js';

/** What the pool needs of a server connection. */
export interface PoolServer {
  readonly id: number;
  readonly createdAt: number;
  idleSince: number;
  /** Set by RECONNECT or server_lifetime: close instead of reusing on the next release. */
  closeNeeded: boolean;
  /** The pool generation it was opened in; a pause starts a new one so older servers retire. */
  generation: number;
  /** Where the pool keeps it among the servers handed out (-1 or unset: not handed out); the pool's to write. */
  activeSlot?: number;
  /** `code`: a stable Disconnect code (the disconnect metric's label). */
  close(code: string): void;
}

/** What the pool needs of a client waiting for a server. */
export interface PoolWaiter {
  /** ms timestamp of when it joined the queue (0 when not waiting). */
  waitingSince: number;
  onServer(server: PoolServer): void;
  onWaitError(err: PgRelayError): void;
}

export interface PoolSettings {
  readonly poolSize: number;
  readonly minPoolSize: number;
  readonly reservePoolSize: number;
  readonly reservePoolTimeoutMs: number;
  readonly serverIdleTimeoutMs: number;
  readonly serverLifetimeMs: number;
  readonly queryWaitTimeoutMs: number;
  /** Delay before retrying after a failed connect when no client waits (grows to serverLoginRetryMs). */
  readonly serverLoginRetryMs: number;
  /** While clients wait: another login starts this often without waiting for earlier ones (0 = off). */
  readonly serverLoginHedgeMs: number;
  /** Most logins in flight while hedging. */
  readonly serverLoginParallel: number;
}

/** Opens server connections; the proxy layer provides it. */
export interface ServerFactory {
  connect(pool: Pool): Promise<PoolServer>;
}

/** Told whenever a pool's server count may have dropped (a pause waits for zero). */
export interface PoolObserver {
  onServersChanged(pool: Pool): void;
  onWaited(pool: Pool, waitedMs: number): void;
}

/** Shared limits across pools (max_db_connections / max_user_connections). */
export interface ConnectionBudget {
  tryTake(pool: Pool): boolean;
  give(pool: Pool): void;
}

/** Whether a connect failure will not heal by retrying (wrong password, missing database). */
export function isPermanentLoginError(err: unknown): boolean {
  const code = (err as { sqlstate?: string; code?: string }).sqlstate ?? (err as { code?: string }).code;
  return typeof code === 'string' && (code.startsWith('28') || code === SqlState.InvalidCatalogName || code === SqlState.InsufficientPrivilege);
}
