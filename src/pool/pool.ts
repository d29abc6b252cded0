// A pool of server connections for one (database, user): hands idle servers to clients, queues
// the rest FIFO, opens connections up to the pool size and closes the ones past their time.
// It never sees a socket or a Buffer: servers and waiters are reached through small interfaces
// (pool-contract.ts).

import { WaitQueue } from './wait-queue.js';
import { LoginPacer } from './login-pacer.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import { SqlState } from '../protocol/sqlstate.js';
import { isPermanentLoginError, type ConnectionBudget, type PoolObserver, type PoolServer, type PoolSettings, type PoolWaiter, type ServerFactory } from './pool-contract.js';

export class Pool {
  private idle: PoolServer[] = []; // a stack: the most recently used server is reused first
  /**
   * Servers handed out, in no order; each knows its place (activeSlot), so that taking one out
   * is a swap with the last: no hashing on every assignment and release, as a Set did.
   */
  private readonly active: PoolServer[] = [];
  private readonly waiters = new WaitQueue<PoolWaiter>();
  private connecting = 0;
  private lastConnectError: Error | null = null;
  /** When logins start: one per waiter, or hedged while the upstream is in doubt (login-pacer.ts). */
  private readonly pacer = new LoginPacer();
  /** The one timer of the pool: the next hedged login or retry while clients wait. */
  private wakeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private paused = false;
  private generation = 1;
  observer: PoolObserver | null = null;

  // Counters read at scrape time (hot path does plain increments).
  stats = {
    serverConnects: 0,
    serverConnectFailures: 0,
    assignments: 0,
    waits: 0,
    waitTimeUs: 0,
    maxWaitMs: 0,
    transactions: 0,
    queries: 0,
    bytesReceived: 0,
    bytesSent: 0,
    transactionTimeUs: 0,
    queryTimeUs: 0,
  };

  constructor(
    readonly database: string,
    readonly user: string,
    public settings: PoolSettings,
    private readonly factory: ServerFactory,
    private readonly budget: ConnectionBudget,
    private readonly now: () => number = Date.now,
  ) {}

  get key(): string {
    return `${this.database}/${this.user}`;
  }
  get idleCount(): number {
    return this.idle.length;
  }
  get activeCount(): number {
    return this.active.length;
  }
  get connectingCount(): number {
    return this.connecting;
  }
  get waitingCount(): number {
    return this.waiters.length;
  }
  get serverCount(): number {
    return this.idle.length + this.active.length + this.connecting;
  }
  get isPaused(): boolean {
    return this.paused;
  }
  /** Age in ms of the oldest waiter (0 when none). */
  oldestWaitMs(now = this.now()): number {
    const head = this.waiters.peek();
    return head === undefined ? 0 : now - head.waitingSince;
  }
  waitingClients(): Iterable<PoolWaiter> {
    return this.waiters;
  }
  servers(): { idle: readonly PoolServer[]; active: readonly PoolServer[] } {
    return { idle: this.idle, active: this.active };
  }

  /** Gives `waiter` a server now (synchronously) or queues it FIFO. */
  acquire(waiter: PoolWaiter): void {
    if (this.closed) {
      waiter.onWaitError(new PgRelayError(ErrorCode.PoolClosed, 'pool is closed'));
      return;
    }
    const server = this.paused ? undefined : this.idle.pop();
    if (server !== undefined) {
      this.assign(server, waiter, 0);
      return;
    }
    waiter.waitingSince = this.now();
    this.waiters.push(waiter);
    this.grow();
  }

  /** Takes a waiter out of the queue (it disconnected or was canceled). */
  cancelWait(waiter: PoolWaiter): boolean {
    const removed = this.waiters.remove(waiter);
    if (removed) waiter.waitingSince = 0;
    return removed;
  }

  /**
   * Takes back a reusable server after its client's transaction (or session) ended: the next
   * waiter gets it, or it goes idle, unless a pause, RECONNECT or server_lifetime retires it.
   */
  release(server: PoolServer): void {
    this.removeActive(server);
    const now = this.now();
    if (this.closed || this.paused || server.closeNeeded || server.generation !== this.generation || this.expired(server, now)) {
      const reason = this.closed ? Disconnect.PoolClosed : this.paused ? Disconnect.Paused : server.closeNeeded ? Disconnect.CloseNeeded : server.generation !== this.generation ? Disconnect.OpenedBeforePause : Disconnect.Lifetime;
      this.retire(server, reason);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.assign(server, waiter, now);
      return;
    }
    server.idleSince = now;
    this.idle.push(server);
  }

  /** Takes back a server that must not be reused (its state is unknown): it is closed. */
  discard(server: PoolServer, reason: string): void {
    this.removeActive(server);
    this.retire(server, reason);
  }

  /** A server closed by itself (died, or was killed): forget it and refill for waiters. */
  forget(server: PoolServer): void {
    if (this.removeActive(server) || this.removeIdle(server)) {
      this.budget.give(this);
      // Its node may be gone: probe with one login before opening one per waiter.
      this.pacer.doubt();
      this.changed();
      this.grow();
    }
  }

  /** Servers `unfit` picks: idle ones close now, linked ones when released (a gate that got stricter). */
  retireWhere(unfit: (server: PoolServer) => boolean, code: string): void {
    for (const s of this.active) if (unfit(s)) s.closeNeeded = true;
    const keep = this.idle.filter((s) => !unfit(s));
    if (keep.length === this.idle.length) return;
    const gone = this.idle.filter((s) => unfit(s));
    this.idle = keep;
    for (const s of gone) this.closeServer(s, code);
    this.changed();
  }

  /** Marks every server to be closed when next released; idle ones close now. */
  reconnect(code: string): number {
    for (const s of this.active) s.closeNeeded = true;
    const idle = this.idle;
    this.idle = [];
    for (const s of idle) this.closeServer(s, code);
    this.generation++; // connections logging in now are retired on arrival too
    if (idle.length > 0) this.changed();
    return idle.length + this.active.length;
  }

  /**
   * Stops handing out servers: idle ones close now, linked ones close when their transaction
   * ends, connections still logging in close when they arrive. Waiters queue until resume().
   */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.generation++;
    const idle = this.idle;
    this.idle = [];
    for (const s of idle) this.closeServer(s, Disconnect.Paused);
    for (const s of this.active) s.closeNeeded = true;
    this.changed();
  }

  /**
   * Serves the queue again: a pause usually means the upstream changes, so one login probes it
   * first (hedged), and once one has passed the waiters get theirs in parallel.
   */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.pacer.restart();
    this.grow();
  }

  /**
   * Takes a server that logged in for this pool elsewhere (a verification's login through the
   * pool's own address): it serves the head waiter, or idles. False when the pool cannot take it
   * (closed, paused, full, over budget): the caller closes it.
   */
  adopt(server: PoolServer): boolean {
    if (this.closed || this.paused || this.idle.length + this.active.length >= this.settings.poolSize || !this.budget.tryTake(this)) return false;
    this.connecting++; // onConnected() does the bookkeeping of an arrival
    this.onConnected(server, this.generation);
    return true;
  }

  /** Janitor sweep: wait timeouts, idle and lifetime limits, min_pool_size, connect retries. */
  sweep(now: number): void {
    const s = this.settings;
    if (s.queryWaitTimeoutMs > 0) {
      for (let w = this.waiters.peek(); w !== undefined && now - w.waitingSince >= s.queryWaitTimeoutMs; w = this.waiters.peek()) {
        this.waiters.shift();
        w.waitingSince = 0;
        const last = this.lastConnectError;
        const detail = last !== null ? ` (last server error: ${last.message})` : '';
        w.onWaitError(
          new PgRelayError(
            ErrorCode.QueryWaitTimeout,
            `query_wait_timeout: no server connection for ${this.key} within ${s.queryWaitTimeoutMs} ms${detail}`,
            last !== null ? (last as PgRelayError).sqlstate ?? SqlState.ConnectionFailure : undefined,
          ),
        );
      }
    }
    // Idle servers: the stack's bottom holds the longest idle ones.
    let keep = this.idle.length;
    const survivors: PoolServer[] = [];
    for (const srv of this.idle) {
      const tooIdle = s.serverIdleTimeoutMs > 0 && now - srv.idleSince >= s.serverIdleTimeoutMs && keep > s.minPoolSize;
      if (tooIdle || srv.closeNeeded || this.expired(srv, now)) {
        keep--;
        this.closeServer(srv, tooIdle ? Disconnect.IdleTimeout : srv.closeNeeded ? Disconnect.CloseNeeded : Disconnect.Lifetime);
      } else {
        survivors.push(srv);
      }
    }
    const closedSome = survivors.length !== this.idle.length;
    if (closedSome) this.idle = survivors;
    for (const srv of this.active) if (this.expired(srv, now)) srv.closeNeeded = true;
    if (closedSome) this.changed();
    this.grow(now);
  }

  /** Closes everything and fails the waiters; the pool cannot be used again. `code`: a Disconnect code. */
  close(code: string): void {
    this.closed = true;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) {
      w.waitingSince = 0;
      w.onWaitError(new PgRelayError(ErrorCode.PoolClosed, `pool ${this.key} closed: ${code}`));
    }
    const idle = this.idle;
    this.idle = [];
    for (const s of idle) this.closeServer(s, code);
    for (const s of this.active) s.closeNeeded = true;
    this.changed();
  }

  private assign(server: PoolServer, waiter: PoolWaiter, now: number): void {
    server.activeSlot = this.active.push(server) - 1;
    this.stats.assignments++;
    if (waiter.waitingSince > 0) {
      const waited = (now || this.now()) - waiter.waitingSince;
      this.stats.waits++;
      this.stats.waitTimeUs += waited * 1000;
      if (waited > this.stats.maxWaitMs) this.stats.maxWaitMs = waited;
      waiter.waitingSince = 0;
      this.observer?.onWaited(this, waited);
    }
    waiter.onServer(server);
  }

  private expired(server: PoolServer, now: number): boolean {
    return this.settings.serverLifetimeMs > 0 && now - server.createdAt >= this.settings.serverLifetimeMs;
  }

  /** Opens connections as the pacer allows: one per waiter not yet covered, or one hedged login; min_pool_size refills when no client waits. */
  private grow(now = this.now()): void {
    if (this.closed || this.paused) return;
    const s = this.settings;
    const head = this.waiters.peek();
    if (head === undefined) {
      if (!this.pacer.mayRefill(now)) return;
      for (let i = s.minPoolSize - this.serverCount; i > 0 && this.serverCount < s.poolSize; i--) {
        if (!this.budget.tryTake(this)) break;
        this.launch(now);
      }
      return;
    }
    switch (this.pacer.whileWaiting(now, this.connecting, s.serverLoginHedgeMs, s.serverLoginParallel)) {
      case 'fan-out': {
        const useReserve = s.reservePoolSize > 0 && now - head.waitingSince >= s.reservePoolTimeoutMs;
        const limit = s.poolSize + (useReserve ? s.reservePoolSize : 0);
        const wanted = Math.max(this.waiters.length - this.connecting, s.minPoolSize - this.serverCount);
        for (let i = 0; i < wanted && this.serverCount < limit; i++) {
          if (!this.budget.tryTake(this)) break;
          this.launch(now);
        }
        break;
      }
      case 'one':
        // Not bounded by the pool size: a login that hangs must not block the next one. A late
        // winner beyond the pool size is closed when it arrives.
        if (this.budget.tryTake(this)) this.launch(now);
        break;
      case 'none':
        break;
    }
    this.armWake(now);
  }

  /** While clients wait on logins in flight or an upstream in doubt: wake up for the next hedge or retry. */
  private armWake(now: number): void {
    if (this.wakeTimer !== null || this.waiters.length === 0) return;
    const at = this.pacer.wakeAt(this.connecting, this.settings.serverLoginHedgeMs);
    if (at === null) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.grow();
    }, Math.max(1, at - now));
    this.wakeTimer.unref();
  }

  private launch(now: number): void {
    this.connecting++;
    this.pacer.launched(now);
    const generation = this.generation;
    this.factory.connect(this).then(
      (server) => this.onConnected(server, generation),
      (err: Error) => this.onConnectFailed(err),
    );
  }

  private onConnected(server: PoolServer, generation: number): void {
    this.connecting--;
    this.stats.serverConnects++;
    this.lastConnectError = null;
    this.pacer.succeeded(this.now());
    server.generation = generation;
    if (this.closed || this.paused || generation !== this.generation) {
      // Opened for a world that a pause has since ended: never hand it out.
      this.budget.give(this);
      server.close(this.closed ? Disconnect.PoolClosed : Disconnect.OpenedBeforePause);
      this.changed();
      this.grow();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.assign(server, waiter, this.now());
      // The upstream answers: the other waiters get their logins now, in parallel.
      this.grow();
      return;
    }
    if (this.idle.length + this.active.length >= this.settings.poolSize + this.settings.reservePoolSize) {
      // A hedged login that lost the race, with the pool already full.
      this.budget.give(this);
      server.close(Disconnect.PoolFull);
      this.changed();
      return;
    }
    server.idleSince = this.now();
    this.idle.push(server);
  }

  private onConnectFailed(err: Error): void {
    this.connecting--;
    this.stats.serverConnectFailures++;
    this.budget.give(this);
    this.lastConnectError = err;
    this.changed();
    if (isPermanentLoginError(err)) {
      // Retrying will not fix a wrong password or a missing database: tell the waiters now.
      const failure = err instanceof PgRelayError ? err : new PgRelayError(ErrorCode.ServerLoginFailed, err.message);
      for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) {
        w.waitingSince = 0;
        w.onWaitError(failure);
      }
    }
    // Transient failure (refused, reset, starting up, a deadline): waiters keep waiting until
    // query_wait_timeout while logins go on at the hedge interval; with nobody waiting, back off.
    this.pacer.failed(this.now(), this.settings.serverLoginRetryMs);
    this.grow();
  }

  private removeActive(server: PoolServer): boolean {
    const i = server.activeSlot ?? -1;
    if (i < 0 || this.active[i] !== server) return false;
    const last = this.active.pop()!;
    if (last !== server) {
      this.active[i] = last;
      last.activeSlot = i;
    }
    server.activeSlot = -1;
    return true;
  }

  private removeIdle(server: PoolServer): boolean {
    const i = this.idle.indexOf(server);
    if (i < 0) return false;
    this.idle.splice(i, 1);
    return true;
  }

  private retire(server: PoolServer, reason: string): void {
    this.dropServer(server, reason);
    this.changed();
    this.grow();
  }

  private dropServer(server: PoolServer, reason: string): void {
    this.budget.give(this);
    server.close(reason);
  }

  private closeServer(server: PoolServer, reason: string): void {
    this.dropServer(server, reason);
  }

  private changed(): void {
    this.observer?.onServersChanged(this);
  }
}
