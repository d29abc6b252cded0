// The control contract: the verbs and read-only snapshots that every admin surface (HTTP API, SQL
// console, signals, metrics) uses. Observers only see these plain objects, never pool or socket
// internals. Implemented by proxy-control.ts.

/** The virtual database name of the admin console, as in PgBouncer. */
export const CONSOLE_DATABASE = 'pgbouncer';

/** Outcome of a PAUSE: drained, timed out (pool stays paused), or overtaken by a RESUME. */
export interface PauseResult {
  readonly result: 'drained' | 'timeout' | 'resumed' | 'ignored';
  /** null = every database. */
  readonly database: string | null;
  readonly drainMs: number;
  /** Server connections still open when the call returned (0 when drained). */
  readonly serversLeft: number;
  /** Clients still inside a transaction when the drain deadline passed. */
  readonly inTransaction: readonly InTransactionClient[];
  /** When the pause will be lifted automatically (pause_max_duration), ISO time; null = never. */
  readonly autoResumeAt: string | null;
  /** Why a pause was ignored (e.g. tied to a node that is not the current upstream). */
  readonly reason?: string;
}

export interface InTransactionClient {
  readonly client: number;
  readonly user: string;
  readonly database: string;
  readonly addr: string;
  readonly port: number;
  /** Milliseconds since the client's last activity. */
  readonly idleMs: number;
}

export interface ResumeResult {
  readonly database: string | null;
  /** False when nothing was paused (RESUME is idempotent). */
  readonly wasPaused: boolean;
  readonly pausedMs: number;
  readonly waitingClients: number;
}

export interface UpstreamSnapshot {
  readonly host: string;
  readonly port: number;
  /** Passed the write gate at its last login (null: no server connection made yet). */
  readonly writable: boolean | null;
  readonly checkedAt: string | null;
}

export interface DatabaseState {
  readonly name: string;
  readonly paused: boolean;
  readonly pausedSince: string | null;
  readonly autoResumeAt: string | null;
  readonly waitingClients: number;
  readonly upstream: UpstreamSnapshot | null;
  readonly targetSessionAttrs: string;
  /** The gate in force: target_session_attrs, or for `auto` what was learned (`learning` before the first login). */
  readonly gate: string;
}

export interface StateSnapshot {
  readonly paused: boolean;
  readonly pausedSince: string | null;
  readonly autoResumeAt: string | null;
  readonly waitingClients: number;
  readonly shuttingDown: boolean;
  readonly databases: readonly DatabaseState[];
}

export interface PoolSnapshot {
  readonly database: string;
  readonly user: string;
  readonly poolMode: string;
  /** Clients logged in to the pool that are not waiting (linked or idle; includes clIdle), as PgBouncer counts cl_active. */
  readonly clActive: number;
  readonly clWaiting: number;
  readonly clIdle: number;
  readonly svActive: number;
  readonly svIdle: number;
  readonly svLogin: number;
  readonly maxWaitMs: number;
  readonly paused: boolean;
}

export interface ClientSnapshot {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  /** active | idle | waiting | login (PgBouncer's names where they exist). */
  readonly state: string;
  readonly addr: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly connectTime: string;
  readonly requestTime: string;
  readonly waitMs: number;
  readonly server: number | null;
  readonly applicationName: string;
  /** Named prepared statements the client has (transaction pooling with tracking; absent or 0 otherwise). */
  readonly preparedStatements?: number;
}

export interface ServerSnapshot {
  readonly id: number;
  readonly user: string;
  readonly database: string;
  /** active | idle | login */
  readonly state: string;
  readonly addr: string;
  readonly port: number;
  readonly localPort: number;
  readonly connectTime: string;
  readonly requestTime: string;
  readonly closeNeeded: boolean;
  readonly client: number | null;
  readonly remotePid: number;
  readonly applicationName: string;
  readonly writable: boolean | null;
  /** Prepared statements pgrelay made on this server connection (absent or 0 when none). */
  readonly preparedStatements?: number;
}

export interface DatabaseSnapshot {
  readonly name: string;
  readonly hosts: string;
  readonly ports: string;
  readonly dbname: string;
  readonly forceUser: string;
  readonly poolSize: number;
  readonly minPoolSize: number;
  readonly reservePoolSize: number;
  readonly serverLifetimeS: number;
  readonly poolMode: string;
  readonly maxConnections: number;
  readonly currentConnections: number;
  readonly currentClientConnections: number;
  readonly paused: boolean;
  readonly targetSessionAttrs: string;
}

export interface StatsSnapshot {
  readonly database: string;
  readonly serverAssignments: number;
  readonly transactions: number;
  readonly queries: number;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** Microseconds, summed. */
  readonly transactionTimeUs: number;
  /** Microseconds from each Query or Sync to the ReadyForQuery that answered it, summed. */
  readonly queryTimeUs: number;
  readonly waitTimeUs: number;
  readonly waits: number;
  /** Over the last completed stats_period (absent or zero before the first one ends). */
  readonly averages?: StatsAverages;
}

/** PgBouncer's avg_ columns: rates per second, and times per item, over the last stats_period. */
export interface StatsAverages {
  readonly serverAssignmentsPerSec: number;
  readonly transactionsPerSec: number;
  readonly queriesPerSec: number;
  readonly bytesReceivedPerSec: number;
  readonly bytesSentPerSec: number;
  /** Microseconds per transaction, per query, and per server assignment (wait). */
  readonly transactionTimeUs: number;
  readonly queryTimeUs: number;
  readonly waitTimeUs: number;
}

export interface ConfigRow {
  readonly key: string;
  readonly value: string;
  readonly default: string;
  readonly changeable: boolean;
}

export interface PrimaryHintResult {
  readonly node: string;
  readonly databases: readonly string[];
  readonly paused: boolean;
  /** A verification (login, write gate, leader lock) is running; it resumes when the node passes. */
  readonly verifying: boolean;
}

/** Admin verbs. Unknown database names throw AdminError('PGRELAY_NO_SUCH_DATABASE'). */
export interface Control {
  /** `by` says who asked (console user, HTTP peer, signal, hook), for the log. */
  pause(opts?: { database?: string; timeoutMs?: number; node?: string; by?: string }): Promise<PauseResult>;
  resume(opts?: { database?: string; by?: string }): ResumeResult;
  /** "This node may be primary now" (a Patroni callback): verify it, then resume. Returns at once. */
  primaryHint(opts: { node: string; role?: string }): PrimaryHintResult;
  /** Close every server connection when next released (idle ones now). */
  reconnect(database?: string): number;
  /** Resolve once the servers RECONNECT marked are closed. */
  waitClose(database?: string): Promise<void>;
  /** Drop the clients and servers of a database (or all) now. */
  kill(database?: string): number;
  reload(): void;
  shutdown(): void;
  state(): StateSnapshot;
  pools(): PoolSnapshot[];
  clients(): ClientSnapshot[];
  servers(): ServerSnapshot[];
  databases(): DatabaseSnapshot[];
  stats(): StatsSnapshot[];
  config(): ConfigRow[];
  users(): { name: string; poolMode: string }[];
  version(): string;
  /** Liveness: the event loop runs. Readiness: listening, not shutting down. */
  ready(): boolean;
}

/** An admin error with a stable code and the HTTP status / SQLSTATE it maps to. */
export class AdminError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus = 400,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}
