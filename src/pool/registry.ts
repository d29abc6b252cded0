// All pools, keyed by (database, user), created on first use from the config, plus the shared
// per-database / per-user connection limits. Admin and metrics read it; they never reach inside.

import { Pool, type ConnectionBudget, type PoolObserver, type PoolSettings, type ServerFactory } from './pool.js';
import type { Config, DatabaseConfig, PoolMode } from '../config/types.js';

export interface PoolEntry {
  readonly pool: Pool;
  readonly db: DatabaseConfig;
  readonly mode: PoolMode;
  /** ParameterStatus values a server reported at login, replayed to clients logging in. */
  loginParams: ReadonlyMap<string, string> | null;
}

export class PoolRegistry implements ConnectionBudget {
  private readonly entries = new Map<string, PoolEntry>();
  private readonly byPool = new Map<Pool, PoolEntry>();
  private readonly dbCount = new Map<string, number>();
  private readonly userCount = new Map<string, number>();
  /** Told about every pool's server-count changes and waits (pause drains, metrics). */
  observer: PoolObserver | null = null;
  /** Called for each new pool (a pool created during a pause starts paused). */
  onPoolCreated: ((pool: Pool) => void) | null = null;

  constructor(
    private config: Config,
    private readonly factory: ServerFactory,
  ) {}

  /** The `[databases]` entry for a client-facing name, falling back to `*`. */
  findDatabase(name: string): DatabaseConfig | undefined {
    return this.config.databases.get(name) ?? this.config.databases.get('*');
  }

  /** The pool for (database, user), created on first use. */
  get(database: string, user: string): PoolEntry | undefined {
    const key = `${database}\u0000${user}`;
    const found = this.entries.get(key);
    if (found !== undefined) return found;
    const db = this.findDatabase(database);
    if (db === undefined) return undefined;
    const mode = this.config.users.get(user)?.poolMode ?? db.poolMode ?? this.config.settings.poolMode;
    const pool = new Pool(database, user, this.poolSettings(db), this.factory, this);
    // Login parameters are the cluster's, not the pool's: borrow them from a sibling pool so a
    // client can log in without a server even during a pause.
    let loginParams: ReadonlyMap<string, string> | null = null;
    for (const e of this.entries.values()) {
      if (e.loginParams !== null && (loginParams === null || e.pool.database === database)) loginParams = withoutUserParams(e.loginParams);
    }
    const entry: PoolEntry = { pool, db, mode, loginParams };
    this.entries.set(key, entry);
    this.byPool.set(pool, entry);
    pool.observer = this.observer;
    this.onPoolCreated?.(pool);
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

  get currentConfig(): Config {
    return this.config;
  }

  /** Applies a reloaded config: pool settings change in place; servers of changed databases reconnect. */
  reload(next: Config): void {
    this.config = next;
    for (const [key, entry] of this.entries) {
      const db = this.findDatabase(entry.pool.database);
      if (db === undefined) {
        entry.pool.close('database removed from config');
        this.entries.delete(key);
        this.byPool.delete(entry.pool);
        continue;
      }
      entry.pool.settings = this.poolSettings(db);
      if (JSON.stringify(db) !== JSON.stringify(entry.db)) {
        (entry as { db: DatabaseConfig }).db = db;
        entry.loginParams = null;
        entry.pool.reconnect('database definition changed');
      }
    }
  }

  sweep(now: number): void {
    for (const e of this.entries.values()) e.pool.sweep(now);
  }

  closeAll(reason: string): void {
    for (const e of this.entries.values()) e.pool.close(reason);
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
    this.dbCount.set(pool.database, Math.max(0, (this.dbCount.get(pool.database) ?? 0) - 1));
    this.userCount.set(pool.user, Math.max(0, (this.userCount.get(pool.user) ?? 0) - 1));
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
