// All pools, keyed by (database, user), created when an authenticated client first needs one and
// retired once empty and unused for autodb_idle_timeout, plus the shared per-database / per-user
// connection limits. Admin and metrics read it; they never reach inside.

import { Pool } from './pool.js';
import type { ConnectionBudget, PoolObserver, PoolServer, PoolSettings } from './pool-contract.js';
import type { Config, DatabaseConfig, PoolMode } from '../config/types.js';
import { Disconnect } from '../errors.js';
import { wallClock } from '../proxy/read-clock.js';

export interface PoolEntry {
  readonly pool: Pool;
  readonly db: DatabaseConfig;
  readonly mode: PoolMode;
  /** ParameterStatus values a server reported at login, replayed to clients logging in. */
  loginParams: ReadonlyMap<string, string> | null;
  /** Client sessions logged in through this pool (attach/detach): a pool with any is never retired. */
  readonly clients: number;
}

export type PoolStats = Pool['stats'];

/** Opens server connections for a pool's (database, user) entry (the upstream connector). */
export interface UpstreamFactory {
  connect(entry: PoolEntry): Promise<PoolServer>;
}

/** Told about every pool: its server-count changes and waits (pause drains, metrics), and its creation. */
export interface RegistryObserver extends PoolObserver {
  /** A new pool (one created during a pause must start paused). */
  onPoolCreated(pool: Pool): void;
}

/** Where the counters of retired pools of databases that are gone entirely are summed (see retire()). */
export const RETIRED_AUTO_DATABASES = '*';

/**
 * Login parameters are the cluster's, not the pool's: a new pool borrows the last ones learned for
 * its database (or, failing that, for any database), so a client can log in without a server even
 * during a pause. One map per database, found in O(1), with the user-specific values removed.
 */
class LoginParamsCache {
  private readonly byDatabase = new Map<string, ReadonlyMap<string, string>>();
  private latest: { database: string; params: ReadonlyMap<string, string> } | null = null;

  learn(database: string, params: ReadonlyMap<string, string>): void {
    const shared = withoutUserParams(params);
    this.byDatabase.set(database, shared);
    this.latest = { database, params: shared };
  }

  borrow(database: string): ReadonlyMap<string, string> | null {
    return this.byDatabase.get(database) ?? this.latest?.params ?? null;
  }

  /** The database's last pool retired: its entry goes (keeping memory bounded), the fallback stays. */
  drop(database: string): void {
    this.byDatabase.delete(database);
  }

  /** The database's definition changed: what its old servers reported no longer holds. */
  invalidate(database: string): void {
    this.byDatabase.delete(database);
    if (this.latest?.database === database) this.latest = null;
  }
}

class Entry implements PoolEntry {
  clients = 0;
  /** The sweep time at which the pool was first seen empty (no client, server or waiter); null while used. */
  emptySince: number | null = null;
  #loginParams: ReadonlyMap<string, string> | null;

  constructor(
    readonly pool: Pool,
    public db: DatabaseConfig,
    readonly mode: PoolMode,
    borrowed: ReadonlyMap<string, string> | null,
    private readonly cache: LoginParamsCache,
  ) {
    this.#loginParams = borrowed;
  }

  get loginParams(): ReadonlyMap<string, string> | null {
    return this.#loginParams;
  }

  /** Set by whoever first sees a server's login (connector, login probe); siblings borrow them. */
  set loginParams(params: ReadonlyMap<string, string> | null) {
    this.#loginParams = params;
    if (params !== null) this.cache.learn(this.pool.database, params);
  }

  get empty(): boolean {
    return this.clients === 0 && this.pool.serverCount === 0 && this.pool.waitingCount === 0;
  }
}

export class PoolRegistry implements ConnectionBudget, PoolObserver {
  private readonly entries = new Map<string, Entry>();
  private readonly byPool = new Map<Pool, Entry>();
  private readonly poolsPerDb = new Map<string, number>();
  private readonly dbCount = new Map<string, number>();
  private readonly userCount = new Map<string, number>();
  private readonly loginParams = new LoginParamsCache();
  /** Counters of retired pools per database, so that totals never go back (see poolStats()). */
  private readonly retired = new Map<string, PoolStats>();
  private readonly observers: RegistryObserver[] = [];

  constructor(
    private config: Config,
    private readonly upstream: UpstreamFactory,
  ) {}

  /** Adds an observer of every pool, present and future (the pause controller, metrics). */
  observe(observer: RegistryObserver): void {
    this.observers.push(observer);
  }

  onServersChanged(pool: Pool): void {
    for (const o of this.observers) o.onServersChanged(pool);
  }

  onWaited(pool: Pool, waitedMs: number): void {
    for (const o of this.observers) o.onWaited(pool, waitedMs);
  }

  /** The `[databases]` entry for a client-facing name, falling back to `*`. */
  findDatabase(name: string): DatabaseConfig | undefined {
    return this.config.databases.get(name) ?? this.config.databases.get('*');
  }

  /**
   * The pool for an authenticated client, which holds it until detach(): pools exist only for
   * clients that proved who they are, so failed logins cannot fill the registry.
   */
  attach(database: string, user: string): PoolEntry | undefined {
    const entry = this.lookup(database, user);
    if (entry === undefined) return undefined;
    entry.clients++;
    entry.emptySince = null;
    return entry;
  }

  /** The client that attached `entry` is gone. */
  detach(entry: PoolEntry): void {
    const e = entry as Entry;
    if (e.clients > 0) e.clients--;
  }

  /** The pool for (database, user), created on first use; undefined for an unknown database. */
  private lookup(database: string, user: string): Entry | undefined {
    const key = `${database}\u0000${user}`;
    const found = this.entries.get(key);
    if (found !== undefined) return found;
    const db = this.findDatabase(database);
    if (db === undefined) return undefined;
    const mode = this.config.users.get(user)?.poolMode ?? db.poolMode ?? this.config.settings.poolMode;
    // The pool asks for servers for this entry (its database's current definition, its login
    // parameters); the factory is called only once the entry exists.
    const factory = { connect: (): Promise<PoolServer> => this.upstream.connect(entry) };
    // The pools' clock is the read clock: a transaction's hand-out and release share its reads' one reading.
    const pool = new Pool(database, user, this.poolSettings(db), factory, this, wallClock);
    const entry = new Entry(pool, db, mode, this.loginParams.borrow(database), this.loginParams);
    this.entries.set(key, entry);
    this.byPool.set(pool, entry);
    this.poolsPerDb.set(database, (this.poolsPerDb.get(database) ?? 0) + 1);
    pool.observer = this;
    for (const o of this.observers) o.onPoolCreated(pool);
    return entry;
  }

  entryOf(pool: Pool): PoolEntry | undefined {
    return this.byPool.get(pool);
  }

  all(): IterableIterator<PoolEntry> {
    return this.entries.values();
  }

  *pools(): IterableIterator<Pool> {
    for (const e of this.entries.values()) yield e.pool;
  }

  /**
   * Every pool's counters plus those of retired pools, labelled by database: cumulative sums over
   * this (metrics, SHOW STATS) never go back when a pool retires.
   */
  /** Live pools' counters with their user; retired pools' summed per database (no user). */
  *poolStats(): IterableIterator<{ readonly database: string; readonly user?: string; readonly stats: PoolStats }> {
    for (const e of this.entries.values()) yield { database: e.pool.database, user: e.pool.user, stats: e.pool.stats };
    for (const [database, stats] of this.retired) yield { database, stats };
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** Applies a reloaded config: pool settings change in place; servers of changed databases reconnect. */
  reload(next: Config): void {
    this.config = next;
    for (const [key, entry] of this.entries) {
      const db = this.findDatabase(entry.pool.database);
      if (db === undefined) {
        entry.pool.close(Disconnect.DatabaseRemoved);
        this.retire(key, entry);
        continue;
      }
      entry.pool.settings = this.poolSettings(db);
      if (JSON.stringify(db) !== JSON.stringify(entry.db)) {
        entry.db = db;
        entry.loginParams = null;
        this.loginParams.invalidate(entry.pool.database);
        entry.pool.reconnect(Disconnect.DatabaseChanged);
      }
    }
  }

  /**
   * Janitor: each pool's own sweep, then retirement. A pool with no attached client, no server
   * (idle, linked or connecting) and no waiter for autodb_idle_timeout is dropped, as PgBouncer
   * drops auto-created databases; unlike PgBouncer this applies to every pool, since a pool is
   * created per (database, user) on first use whatever the `[databases]` entry. 0 = never.
   */
  sweep(now: number): void {
    const idleLimit = this.config.settings.autodbIdleTimeoutMs;
    for (const [key, e] of this.entries) {
      e.pool.sweep(now);
      if (idleLimit <= 0) continue;
      if (!e.empty) {
        e.emptySince = null;
        continue;
      }
      e.emptySince ??= now;
      if (now - e.emptySince >= idleLimit) {
        e.pool.close(Disconnect.PoolRetired);
        this.retire(key, e);
      }
    }
  }

  closeAll(code: string): void {
    for (const e of this.entries.values()) e.pool.close(code);
  }

  /**
   * Forgets a pool, folding its counters into the per-database totals. A database whose last pool
   * goes and that has no `[databases]` entry of its own (it came through `*`) keeps no row: its
   * totals join RETIRED_AUTO_DATABASES, so names clients made up cannot grow memory for good.
   */
  private retire(key: string, entry: Entry): void {
    const database = entry.pool.database;
    this.entries.delete(key);
    this.byPool.delete(entry.pool);
    addStats(this.retiredRow(database), entry.pool.stats);
    const left = (this.poolsPerDb.get(database) ?? 1) - 1;
    if (left > 0) {
      this.poolsPerDb.set(database, left);
      return;
    }
    this.poolsPerDb.delete(database);
    if (this.config.databases.has(database)) return;
    this.loginParams.drop(database);
    const row = this.retired.get(database);
    if (row !== undefined && database !== RETIRED_AUTO_DATABASES) {
      this.retired.delete(database);
      addStats(this.retiredRow(RETIRED_AUTO_DATABASES), row);
    }
  }

  private retiredRow(database: string): PoolStats {
    let row = this.retired.get(database);
    if (row === undefined) {
      row = zeroStats();
      this.retired.set(database, row);
    }
    return row;
  }

  tryTake(pool: Pool): boolean {
    const s = this.config.settings;
    const entry = this.byPool.get(pool);
    const dbMax = entry?.db.maxDbConnections ?? s.maxDbConnections;
    const userMax = this.config.users.get(pool.user)?.maxUserConnections ?? s.maxUserConnections;
    const dbNow = this.dbCount.get(pool.database) ?? 0;
    const userNow = this.userCount.get(pool.user) ?? 0;
    if (dbMax > 0 && dbNow >= dbMax) return false;
    if (userMax > 0 && userNow >= userMax) return false;
    this.dbCount.set(pool.database, dbNow + 1);
    this.userCount.set(pool.user, userNow + 1);
    return true;
  }

  give(pool: Pool): void {
    // Counts that reach zero are removed, so user and database names come and go without a trace.
    const db = (this.dbCount.get(pool.database) ?? 0) - 1;
    if (db > 0) this.dbCount.set(pool.database, db);
    else this.dbCount.delete(pool.database);
    const user = (this.userCount.get(pool.user) ?? 0) - 1;
    if (user > 0) this.userCount.set(pool.user, user);
    else this.userCount.delete(pool.user);
  }

  private poolSettings(db: DatabaseConfig): PoolSettings {
    const s = this.config.settings;
    return {
      poolSize: db.poolSize ?? s.defaultPoolSize,
      minPoolSize: db.minPoolSize ?? s.minPoolSize,
      reservePoolSize: db.reservePoolSize ?? s.reservePoolSize,
      reservePoolTimeoutMs: s.reservePoolTimeoutMs,
      serverIdleTimeoutMs: s.serverIdleTimeoutMs,
      serverLifetimeMs: db.serverLifetimeMs ?? s.serverLifetimeMs,
      queryWaitTimeoutMs: s.queryWaitTimeoutMs,
      serverLoginRetryMs: s.serverLoginRetryMs,
      serverLoginHedgeMs: s.serverLoginHedgeMs,
      serverLoginParallel: s.serverLoginParallel,
    };
  }
}

/** Login parameters minus the ones that describe a particular user. */
function withoutUserParams(params: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  const out = new Map(params);
  out.delete('session_authorization');
  out.delete('is_superuser');
  return out;
}

function zeroStats(): PoolStats {
  return { serverConnects: 0, serverConnectFailures: 0, assignments: 0, waits: 0, waitTimeUs: 0, maxWaitMs: 0, transactions: 0, queries: 0, bytesReceived: 0, bytesSent: 0, transactionTimeUs: 0, queryTimeUs: 0 };
}

/** Folds `from` into `into`: sums, except maxWaitMs, which is a maximum. */
function addStats(into: PoolStats, from: PoolStats): void {
  for (const k of Object.keys(into) as Array<keyof PoolStats>) {
    into[k] = k === 'maxWaitMs' ? Math.max(into[k], from[k]) : into[k] + from[k];
  }
}
