// Opens server connections for pools: picks the upstream credential (the [databases] password,
// the auth_file secret, or SCRAM keys learned from the client's own login) and tries the
// database's hosts in order. Choosing the writable primary among them is the write gate's job.

import { login, type ServerCredential } from '../proxy/server-login.js';
import { ServerConn, type ServerOwner } from '../proxy/server-conn.js';
import { isPermanentLoginError } from '../pool/pool.js';
import type { PoolEntry, UpstreamFactory } from '../pool/registry.js';
import { parseSecret } from '../auth/secret.js';
import type { ProxyContext } from '../proxy/context.js';
import type { DatabaseConfig, HostPort } from '../config/types.js';
import { gateApplies, satisfies, writableFromParams, WRITABLE_PROBE_SQL } from './write-gate.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import { SqlState } from '../protocol/sqlstate.js';
import { PatroniLeaderCheck } from './patroni.js';

/**
 * What the connector reads of the shared context. The app passes the context object itself,
 * before its registry exists (the registry needs this connector), so the connector sees config
 * and secrets as reloads change them.
 */
export type ConnectorContext = Pick<ProxyContext, 'config' | 'authSecrets' | 'scramKeys' | 'logger' | 'stats'>;

function isSame(a: HostPort, b: { host: string; port: number } | undefined): boolean {
  return b !== undefined && a.host === b.host && a.port === b.port;
}

export class UpstreamConnector implements UpstreamFactory {
  constructor(private readonly ctx: ConnectorContext) {}

  /** The last upstream each database's connections went to, and whether it passed the gate. */
  readonly upstreams = new Map<string, { host: string; port: number; writable: boolean | null; checkedAt: number }>();
  writeGateRejections = new Map<string, number>();

  readonly leaderCheck = new PatroniLeaderCheck();

  async connect(entry: PoolEntry): Promise<ServerConn> {
    const pool = entry.pool;
    const db = entry.db;
    const last = this.upstreams.get(pool.database);
    // The host that worked last time first, then the rest in the configured order.
    const hosts = [...db.hosts].sort((a, b) => Number(isSame(b, last)) - Number(isSame(a, last)));
    let lastError: Error = new Error(`no hosts configured for database ${pool.database}`);
    let fallback: ServerConn | null = null;
    for (const address of hosts) {
      const outcome = await this.tryHost(entry, address);
      if (outcome instanceof Error) {
        lastError = outcome;
        if (isPermanentLoginError(outcome)) break;
        continue;
      }
      const { server, verdict } = outcome;
      if (verdict === 'use') {
        fallback?.close(Disconnect.BetterUpstream);
        return this.adopt(entry, server);
      }
      if (verdict === 'fallback' && fallback === null) {
        fallback = server; // prefer-standby: a primary will do if no standby answers
        continue;
      }
      lastError = new PgRelayError(ErrorCode.ServerConnectFailed, `no upstream for ${pool.database} passes the write gate (target_session_attrs=${db.targetSessionAttrs}; last tried ${address.host}:${address.port}: ${verdict})`, SqlState.CannotConnectNow);
      server.close(Disconnect.WriteGate);
    }
    if (fallback !== null) return this.adopt(entry, fallback);
    throw lastError;
  }

  /**
   * Whether `address` would be accepted for the pool's database right now (login, write gate,
   * Patroni leader lock). Used to confirm a new primary before resuming; the connection is closed.
   */
  async verify(entry: PoolEntry, address: HostPort): Promise<boolean> {
    const outcome = await this.tryHost(entry, address);
    if (outcome instanceof Error) return false;
    outcome.server.close(Disconnect.Verification);
    return outcome.verdict === 'use';
  }

  private adopt(entry: PoolEntry, server: ServerConn): ServerConn {
    const ctx = this.ctx;
    const pool = entry.pool;
    if (entry.loginParams === null) entry.loginParams = new Map(server.params);
    if (ctx.config.settings.serverResetQueryAlways) server.resetOnRelease = ctx.config.settings.serverResetQuery;
    ctx.logger.debug({ server: server.id, pool: pool.key, host: server.address.host, port: server.address.port, pid: server.processId, writable: server.writable }, 'server connection opened');
    return server;
  }

  /** Logs in to one host and judges it: 'use', 'fallback' (prefer-standby), or why it was refused. */
  private async tryHost(entry: PoolEntry, address: HostPort): Promise<{ server: ServerConn; verdict: string } | Error> {
    const ctx = this.ctx;
    const pool = entry.pool;
    const db = entry.db;
    const settings = ctx.config.settings;
    const user = db.user ?? pool.user;
    let server: ServerConn;
    try {
      const params: Record<string, string> = {};
      if (db.applicationName !== null) params['application_name'] = db.applicationName;
      if (db.clientEncoding !== null) params['client_encoding'] = db.clientEncoding;
      if (db.datestyle !== null) params['DateStyle'] = db.datestyle;
      if (db.timezone !== null) params['TimeZone'] = db.timezone;
      const result = await login({
        address,
        database: db.dbname ?? pool.database,
        user,
        credential: this.credentialFor(db, user),
        params,
        connectTimeoutMs: settings.serverConnectTimeoutMs,
        keepAlive: settings.tcpKeepalive,
      });
      const owner: ServerOwner = {
        release: (s) => pool.release(s),
        discard: (s, code) => pool.discard(s, code),
        onClosed: (s, code, detail, byUs) => {
          ctx.stats.countDisconnect('server', code);
          if (!byUs) pool.forget(s);
          ctx.logger.debug({ server: s.id, pool: pool.key, reason: code, detail, byUs }, 'server connection closed');
        },
        cleanupTimeoutMs: () => ctx.config.settings.serverCleanupTimeoutMs,
      };
      server = new ServerConn(address, result.socket, result, settings.maxPacketSize, owner);
      if (db.connectQuery !== null) {
        try {
          await server.runInternal(db.connectQuery);
          server.endInternal();
        } catch (err) {
          server.close(Disconnect.ConnectQueryFailed, (err as Error).message);
          throw err;
        }
      }
    } catch (err) {
      ctx.logger.warn({ pool: pool.key, host: address.host, port: address.port, err: (err as Error).message }, 'server login failed');
      return err as Error;
    }
    const gate = db.targetSessionAttrs;
    const writable = gateApplies(gate) ? await this.probeWritable(server) : null;
    server.writable = writable;
    let verdict = writable === null || satisfies(gate, writable) ? (gate === 'prefer-standby' && writable === true ? 'fallback' : 'use') : writable ? 'writable' : 'read-only';
    if (verdict === 'use' && writable === true && db.patroniApi.length > 0) {
      const api = db.patroniApi[db.hosts.indexOf(address)];
      if (api !== undefined && !(await this.leaderCheck.isLeader(api))) verdict = 'writable but not the Patroni leader';
    }
    if (verdict === 'use' || verdict === 'fallback') {
      this.upstreams.set(pool.database, { host: address.host, port: address.port, writable, checkedAt: Date.now() });
    } else {
      // The write gate: a client is never handed a server that does not match target_session_attrs.
      this.writeGateRejections.set(pool.database, (this.writeGateRejections.get(pool.database) ?? 0) + 1);
      ctx.logger.info({ pool: pool.key, host: address.host, port: address.port, writable, targetSessionAttrs: gate, verdict }, 'write gate: server rejected');
    }
    return { server, verdict };
  }

  /** Writability from the login ParameterStatus, or from a probe query on older servers. */
  private async probeWritable(server: ServerConn): Promise<boolean> {
    const reported = writableFromParams(server.params);
    if (reported !== null) return reported;
    try {
      await server.runInternal(WRITABLE_PROBE_SQL);
      server.endInternal();
      return true;
    } catch {
      server.endInternal();
      return false;
    }
  }

  private credentialFor(db: DatabaseConfig, user: string): ServerCredential {
    const ctx = this.ctx;
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
