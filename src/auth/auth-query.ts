// auth_user / auth_query / auth_dbname: the stored secret of a user who is not in auth_file,
// looked up in PostgreSQL as PgBouncer does (the query runs as auth_user, whose secret comes from
// auth_file, with the user name as $1), then checked by the same exchange as an auth_file secret.
//
// Answers are cached for auth_query_cache_ttl, and "no such user" is cached exactly like a
// verifier, so an unknown user and a known one cost the same: one lookup, then none until the
// entry expires. A changed or dropped password takes effect on the first login after that.
// Concurrent logins of one user share one lookup. A lookup that cannot run fails the login
// (AuthQueryFailed, 08006): never a login without a check.

import type { Logger } from 'pino';
import type { Config, DatabaseConfig } from '../config/types.js';
import { CONSOLE_DATABASE } from '../control/contract.js';
import type { TlsContexts } from '../tls/tls-contexts.js';
import type { ServerCredential } from '../proxy/server-login.js';
import { parseSecret } from './secret.js';
import { LookupPool } from './auth-query-pool.js';
import { wallClock } from '../proxy/read-clock.js';

/** Most cached answers; past it the oldest go (random user names must not grow memory for good). */
export const MAX_CACHED_ANSWERS = 10_000;

export interface SecretLookup {
  /** Whether a user missing from auth_file who connects to `database` is looked up. */
  applies(database: string): boolean;
  /**
   * The user's stored secret per auth_query, for a client connecting to `database`; undefined
   * when there is no such user (no row) or no usable password (NULL, expired). Rejects with
   * AuthQueryFailed when the lookup cannot be run.
   */
  lookup(database: string, user: string): Promise<string | undefined>;
}

/** What the lookups read of the shared context (replaced on reload, so read at each use). */
export interface AuthQueryContext {
  readonly config: Config;
  readonly authSecrets: ReadonlyMap<string, string>;
  readonly scramKeys: ReadonlyMap<string, { readonly clientKey: Buffer; readonly serverKey: Buffer }>;
  readonly tls: TlsContexts;
  readonly logger: Logger;
}

interface Target {
  /** The cache and pool key: where the query runs, as whom, and what it is. */
  readonly key: string;
  readonly db: DatabaseConfig;
  readonly database: string;
  readonly authUser: string;
  readonly sql: string;
}

export class AuthQuery implements SecretLookup {
  private readonly cache = new Map<string, { readonly secret: string | undefined; readonly expires: number }>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly pools = new Map<string, LookupPool>();

  constructor(private readonly ctx: AuthQueryContext) {}

  applies(database: string): boolean {
    return this.target(database) !== null;
  }

  async lookup(database: string, user: string): Promise<string | undefined> {
    const target = this.target(database);
    if (target === null) return undefined;
    const key = `${target.key}\u0000${user}`;
    const now = wallClock();
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.expires > now) return hit.secret;
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const p = this.run(target, user).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    const secret = await p;
    const ttl = this.ctx.config.settings.authQueryCacheTtlMs;
    if (ttl > 0) {
      this.cache.delete(key);
      this.cache.set(key, { secret, expires: wallClock() + ttl });
      if (this.cache.size > MAX_CACHED_ANSWERS) this.cache.delete(this.cache.keys().next().value!);
    }
    return secret;
  }

  /** Janitor: drops expired answers and closes idle lookup connections. */
  sweep(now: number): void {
    for (const [k, v] of this.cache) if (v.expires <= now) this.cache.delete(k);
    for (const [k, pool] of this.pools) {
      pool.sweep(now);
      if (pool.size === 0) this.pools.delete(k);
    }
  }

  /** A reload may change auth_user, auth_query, databases or TLS: forget every answer and connection. */
  reset(): void {
    this.cache.clear();
    for (const pool of this.pools.values()) pool.sweep(0, true);
    this.pools.clear();
  }

  private async run(target: Target, user: string): Promise<string | undefined> {
    const settings = this.ctx.config.settings;
    let pool = this.pools.get(target.key);
    if (pool === undefined) {
      pool = new LookupPool(
        {
          hosts: target.db.hosts,
          login: {
            database: target.database,
            user: target.authUser,
            credential: this.credentialFor(target),
            connectTimeoutMs: settings.authQueryTimeoutMs,
            keepAlive: settings.tcpKeepalive,
            tls: this.ctx.tls.server,
            params: { application_name: 'pgrelay auth_query' },
          },
        },
        () => this.ctx.config.settings.authQueryPoolSize,
      );
      this.pools.set(target.key, pool);
    }
    try {
      const row = await pool.query(target.sql, user, Date.now() + settings.authQueryTimeoutMs);
      return row === null || row.secret === null ? undefined : row.secret;
    } catch (err) {
      this.ctx.logger.warn({ user, database: target.database, authUser: target.authUser, err: (err as Error).message }, 'auth_query lookup failed');
      throw err;
    }
  }

  /**
   * Where a client of `database` is looked up: its [databases] entry (or `*`), auth_user and
   * auth_query from the entry or [pgbouncer], and auth_dbname's entry when set. null = no lookup.
   */
  private target(database: string): Target | null {
    const config = this.ctx.config;
    const s = config.settings;
    const find = (name: string): DatabaseConfig | undefined => config.databases.get(name) ?? config.databases.get('*');
    // The admin console has no database to look users up in unless auth_dbname names one.
    const entry = database === CONSOLE_DATABASE ? undefined : find(database);
    const authUser = entry?.authUser ?? s.authUser;
    if (authUser === null) return null;
    const authDbname = entry?.authDbname ?? s.authDbname;
    let db: DatabaseConfig | undefined;
    let upstreamDb: string;
    if (authDbname !== null) {
      db = find(authDbname);
      upstreamDb = db?.dbname ?? authDbname;
    } else {
      db = entry;
      upstreamDb = db?.dbname ?? database;
    }
    if (db === undefined) return null;
    const sql = entry?.authQuery ?? s.authQuery;
    const key = JSON.stringify([db.hosts, upstreamDb, authUser, sql]);
    return { key, db, database: upstreamDb, authUser, sql };
  }

  /** auth_user's credential: the entry's password when it forces that user, else its auth_file secret. */
  private credentialFor(t: Target): ServerCredential {
    if (t.db.user === t.authUser && t.db.password !== null) return { kind: 'password', password: t.db.password };
    const stored = this.ctx.authSecrets.get(t.authUser);
    if (stored === undefined || stored === '') return { kind: 'none' };
    const secret = parseSecret(stored);
    switch (secret.kind) {
      case 'plain':
        return { kind: 'password', password: secret.password };
      case 'md5':
        return { kind: 'md5', hash: secret.hash };
      case 'scram': {
        // A verifier cannot answer SCRAM by itself: only keys from auth_user's own client login can.
        const keys = this.ctx.scramKeys.get(t.authUser);
        return keys !== undefined ? { kind: 'scram-keys', clientKey: keys.clientKey, serverKey: keys.serverKey } : { kind: 'none' };
      }
    }
  }
}
