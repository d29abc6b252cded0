// Opens server connections for pools: picks the upstream credential (the [databases] password,
// the auth_file secret, or SCRAM keys learned from the client's own login) and tries the
// database's hosts in order. Choosing the writable primary among them is the write gate's job.

import { login, type ServerCredential } from '../proxy/server-login.js';
import { ServerConn } from '../proxy/server-conn.js';
import { isPermanentLoginError, type Pool, type PoolServer, type ServerFactory } from '../pool/pool.js';
import { parseSecret } from '../auth/secret.js';
import type { ProxyContext } from '../proxy/context.js';
import type { DatabaseConfig } from '../config/types.js';

export class UpstreamConnector implements ServerFactory {
  private ctx: ProxyContext | null = null;

  /** The context is built after the registry that needs this factory, so it arrives late. */
  bind(ctx: ProxyContext): void {
    this.ctx = ctx;
  }

  async connect(pool: Pool): Promise<PoolServer> {
    const ctx = this.ctx!;
    const entry = ctx.registry.entryOf(pool);
    if (entry === undefined) throw new Error(`pool ${pool.key} is not registered`);
    const db = entry.db;
    const settings = ctx.config.settings;
    const user = db.user ?? pool.user;
    const database = db.dbname ?? pool.database;
    const credential = this.credentialFor(db, user);
    let lastError: Error = new Error(`no hosts configured for database ${pool.database}`);
    for (const address of db.hosts) {
      try {
        const result = await login({
          address,
          database,
          user,
          credential,
          connectTimeoutMs: settings.serverConnectTimeoutMs,
          keepAlive: settings.tcpKeepalive,
        });
        if (entry.loginParams === null) entry.loginParams = new Map(result.params);
        const server = new ServerConn(
          address,
          result.socket,
          result,
          settings.maxPacketSize,
          (s, clean) => pool.release(s, clean),
          (s, reason, byUs) => {
            ctx.stats.countDisconnect(`server: ${reason}`);
            if (!byUs) pool.forget(s);
            ctx.logger.debug({ server: s.id, pool: pool.key, reason, byUs }, 'server connection closed');
          },
        );
        if (settings.serverResetQueryAlways) server.resetOnRelease = settings.serverResetQuery;
        ctx.logger.debug({ server: server.id, pool: pool.key, host: address.host, port: address.port, pid: result.processId }, 'server connection opened');
        return server;
      } catch (err) {
        lastError = err as Error;
        ctx.logger.warn({ pool: pool.key, host: address.host, port: address.port, err: (err as Error).message }, 'server login failed');
        if (isPermanentLoginError(err)) break;
      }
    }
    throw lastError;
  }

  private credentialFor(db: DatabaseConfig, user: string): ServerCredential {
    const ctx = this.ctx!;
    if (db.password !== null) return { kind: 'password', password: db.password };
    const stored = ctx.authSecrets.get(user);
    if (stored === undefined) return { kind: 'none' };
    const secret = parseSecret(stored);
    switch (secret.kind) {
      case 'plain':
        return { kind: 'password', password: secret.password };
      case 'md5':
        return { kind: 'md5', hash: secret.hash };
      case 'scram': {
        const keys = ctx.scramKeys.get(user);
        return keys !== undefined ? { kind: 'scram-keys', clientKey: keys.clientKey, serverKey: keys.serverKey } : { kind: 'none' };
      }
    }
  }
}
