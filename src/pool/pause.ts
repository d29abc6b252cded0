// PAUSE / RESUME as pool behaviour: a global pause and per-database pauses that compose, a PAUSE
// call that completes when the paused pools hold no server connection (or at its drain deadline),
// RESUME that completes any PAUSE still draining, and an auto-resume for forgotten pauses. A
// global pause may be scoped (a hook's PAUSE for one node holds only the databases that node
// serves); its scope can release databases one by one as their new primary is confirmed.

import type { Pool } from './pool.js';
import type { RegistryObserver } from './registry.js';
import type { PauseResult, ResumeResult, InTransactionClient } from '../control/contract.js';
import { wallClock } from '../proxy/read-clock.js';

/** The pools a pause applies to, and what the controller needs from the rest of the app. */
export interface PauseHost {
  pools(): Iterable<Pool>;
  /** Clients inside a transaction on `database` (null = any), for the drain-timeout report. */
  inTransaction(database: string | null): InTransactionClient[];
}

export type PauseEvent =
  | { kind: 'pause'; database: string | null; drainTimeoutMs: number; autoResumeAt: number | null }
  | { kind: 'drain'; database: string | null; result: PauseResult['result']; drainMs: number; serversLeft: number; inTransaction: number }
  | { kind: 'resume'; database: string | null; pausedMs: number; waitingClients: number; auto: boolean };

/** Which databases a global pause holds when it is tied to a node (see control/proxy-control.ts). */
export interface PauseScope {
  /** The node the PAUSE was for, as the hook named it. */
  readonly node: string;
  /** Whether the pause holds `database` now (evaluated whenever a pool's state is applied). */
  includes(database: string): boolean;
}

interface Pending {
  readonly database: string | null;
  readonly startedAt: number;
  readonly timer: NodeJS.Timeout;
  resolve(result: PauseResult): void;
}

interface PauseState {
  readonly since: number;
  readonly autoResumeAt: number | null;
  /** null: every database (PAUSE without a node). */
  readonly scope: PauseScope | null;
}

export class PauseController implements RegistryObserver {
  private global: PauseState | null = null;
  private readonly perDatabase = new Map<string, PauseState>();
  private pending: Pending[] = [];
  private readonly listeners: ((event: PauseEvent) => void)[] = [];
  autoResumes = 0;

  constructor(
    private readonly host: PauseHost,
    private readonly limits: () => { pauseDrainTimeoutMs: number; pauseMaxDurationMs: number },
    private readonly now: () => number = wallClock,
  ) {}

  /** Adds a listener for every pause, drain result and resume (the log, metrics). */
  observe(listener: (event: PauseEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(event: PauseEvent): void {
    for (const l of this.listeners) l(event);
  }

  /** Whether `database` is paused, by its own pause or the global one (within its scope). */
  isPaused(database: string): boolean {
    return this.perDatabase.has(database) || this.globalHolds(database);
  }

  private globalHolds(database: string): boolean {
    const g = this.global;
    return g !== null && (g.scope === null || g.scope.includes(database));
  }

  /** The pause state that applies to `database` (its own, else the global one). */
  stateOf(database: string | null): PauseState | null {
    if (database === null) return this.global;
    return this.perDatabase.get(database) ?? (this.globalHolds(database) ? this.global : null);
  }

  /** Databases with a pause of their own. */
  pausedDatabases(): string[] {
    return [...this.perDatabase.keys()];
  }

  get globalState(): PauseState | null {
    return this.global;
  }

  /** Applies the current pause state to a pool (also used for pools created during a pause). */
  applyTo(pool: Pool): void {
    if (this.isPaused(pool.database)) pool.pause();
    else pool.resume();
  }

  /** `scope` (global pauses only): hold only the databases it includes; none = every database. */
  pause(database: string | null, drainTimeoutMs?: number, scope?: PauseScope): Promise<PauseResult> {
    const now = this.now();
    const limits = this.limits();
    const timeout = drainTimeoutMs ?? limits.pauseDrainTimeoutMs;
    const existing = database === null ? this.global : this.perDatabase.get(database);
    // PAUSE is idempotent: a second PAUSE keeps the first one's start and auto-resume time. Its
    // scope only grows: a PAUSE without a node holds everything, two nodes' pauses hold both sets.
    const wanted = database === null ? scope ?? null : null;
    const state: PauseState =
      existing === null || existing === undefined
        ? { since: now, autoResumeAt: limits.pauseMaxDurationMs > 0 ? now + limits.pauseMaxDurationMs : null, scope: wanted }
        : { ...existing, scope: existing.scope === null || wanted === null ? null : existing.scope === wanted ? wanted : unionScope(existing.scope, wanted) };
    if (database === null) this.global = state;
    else this.perDatabase.set(database, state);
    for (const pool of this.host.pools()) this.applyTo(pool);
    if (existing === null || existing === undefined) {
      this.emit({ kind: 'pause', database, drainTimeoutMs: timeout, autoResumeAt: state.autoResumeAt });
    }
    return new Promise<PauseResult>((resolve) => {
      const timer = setTimeout(() => this.finish(entry, 'timeout'), timeout);
      timer.unref();
      const entry: Pending = { database, startedAt: now, timer, resolve };
      this.pending.push(entry);
      this.check();
    });
  }

  resume(database: string | null, auto = false): ResumeResult {
    const now = this.now();
    let state: PauseState | null | undefined;
    if (database === null) {
      // A global RESUME lifts every pause, per-database ones included: nothing stays stuck.
      state = this.global ?? [...this.perDatabase.values()].sort((a, b) => a.since - b.since)[0] ?? null;
      this.global = null;
      this.perDatabase.clear();
    } else {
      state = this.perDatabase.get(database);
      this.perDatabase.delete(database);
    }
    for (const pool of this.host.pools()) this.applyTo(pool);
    // Any PAUSE call still draining for a scope that is no longer paused completes now.
    for (const p of [...this.pending]) {
      if (p.database === null ? this.global === null : !this.isPaused(p.database)) this.finish(p, 'resumed');
    }
    let waiting = 0;
    for (const pool of this.host.pools()) if (database === null || pool.database === database) waiting += pool.waitingCount;
    const pausedMs = state !== null && state !== undefined ? now - state.since : 0;
    if (state !== null && state !== undefined) {
      if (auto) this.autoResumes++;
      this.emit({ kind: 'resume', database, pausedMs, waitingClients: waiting, auto });
    }
    return { database, wasPaused: state !== null && state !== undefined, pausedMs, waitingClients: waiting };
  }

  /** A scope changed (it released databases): apply the pause state to every pool again. */
  reapply(): void {
    for (const pool of this.host.pools()) this.applyTo(pool);
    for (const p of [...this.pending]) {
      if (p.database === null ? this.global === null : !this.isPaused(p.database)) this.finish(p, 'resumed');
    }
    this.check();
  }

  /** Janitor: lift pauses past pause_max_duration. */
  sweep(now: number): void {
    if (this.global?.autoResumeAt != null && now >= this.global.autoResumeAt) this.resume(null, true);
    for (const [db, st] of [...this.perDatabase]) {
      if (st.autoResumeAt !== null && now >= st.autoResumeAt) this.resume(db, true);
    }
    this.check();
  }

  onServersChanged(): void {
    if (this.pending.length > 0) this.check();
  }

  onWaited(): void {}

  /** A pool created while a pause is in force starts paused. */
  onPoolCreated(pool: Pool): void {
    this.applyTo(pool);
  }

  /** Server connections in the pools a pause holds (null: the global pause, within its scope). */
  private serversIn(database: string | null): number {
    let n = 0;
    for (const pool of this.host.pools()) if (database === null ? this.globalHolds(pool.database) : pool.database === database) n += pool.serverCount;
    return n;
  }

  /** Completes every PAUSE whose pools now hold zero server connections. */
  private check(): void {
    for (const p of [...this.pending]) if (this.serversIn(p.database) === 0) this.finish(p, 'drained');
  }

  private finish(p: Pending, result: 'drained' | 'timeout' | 'resumed'): void {
    const i = this.pending.indexOf(p);
    if (i < 0) return;
    this.pending.splice(i, 1);
    clearTimeout(p.timer);
    const drainMs = this.now() - p.startedAt;
    const serversLeft = result === 'drained' ? 0 : this.serversIn(p.database);
    const inTransaction = result === 'timeout' ? this.host.inTransaction(p.database) : [];
    const st = this.stateOf(p.database);
    const autoResumeAt = st?.autoResumeAt != null ? new Date(st.autoResumeAt).toISOString() : null;
    this.emit({ kind: 'drain', database: p.database, result, drainMs, serversLeft, inTransaction: inTransaction.length });
    p.resolve({ result, database: p.database, drainMs, serversLeft, inTransaction, autoResumeAt });
  }

  /** Resolves outstanding PAUSE calls at shutdown. */
  close(): void {
    for (const p of [...this.pending]) this.finish(p, 'resumed');
  }
}

function unionScope(a: PauseScope, b: PauseScope): PauseScope {
  return { node: `${a.node},${b.node}`, includes: (database) => a.includes(database) || b.includes(database) };
}
