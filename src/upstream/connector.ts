// Opens server connections for pools: picks the upstream credential (the [databases] password,
// the auth_file secret, or SCRAM keys learned from the client's own login), tries the database's
// hosts in order and judges each login by the database's write gate (roles.ts). Every login has
// its own deadlines: server_connect_timeout for the server's first answer, server_login_timeout
// for the whole of it, write gate included. Probes for a promotion use the same login.

import { login, type ServerCredential } from '../proxy/server-login.js';
import { ServerConn } from '../proxy/server-conn.js';
import type { ServerOwner } from '../proxy/server-client.js';
import { isPermanentLoginError } from '../pool/pool-contract.js';
import type { PoolEntry, UpstreamFactory } from '../pool/registry.js';
import { parseSecret } from '../auth/secret.js';
import type { ProxyContext } from '../proxy/context.js';
import type { DatabaseConfig, HostPort } from '../config/types.js';
import { satisfies, writableFromParams, WRITABLE_PROBE_SQL } from './write-gate.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import { SqlState } from '../protocol/sqlstate.js';
import { PatroniLeaderCheck } from './patroni.js';
import { DatabaseRoles, isNode, type Gate, type LastSeen } from './roles.js';
import { LoginLog } from './login-log.js';

/**
 * What the connector reads of the shared context. The app passes the context object itself,
 * before its registry exists (the registry needs this connector), so the connector sees config
 * and secrets as reloads change them.
 */
export type ConnectorContext = Pick<ProxyContext, 'config' | 'authSecrets' | 'scramKeys' | 'logger' | 'stats' | 'tls' | 'queriedSecrets'>;

/** One login judged: passed the gate (the server is open: use it or close it), refused by the gate, or no login at all. */
export type LoginOutcome =
  | { readonly kind: 'passed'; readonly server: ServerConn; readonly writable: boolean | null; readonly fallback: boolean }
  | { readonly kind: 'refused'; readonly verdict: string; readonly writable: boolean | null }
  | { readonly kind: 'failed'; readonly error: Error; readonly down: boolean };

export interface AttemptOptions {
  /** The gate to judge by (default: the database's own). */
  readonly gate?: Gate;
  /** Patroni REST base URL to ask for the leader lock when the server is writable (default: the host's patroni_api). */
  readonly leaderApi?: string | null;
}

/** A login failure that says the node is not serving (refused, shutting down or starting up, dropped the login). */
function isDown(err: Error): boolean {
  const sqlstate = (err as { sqlstate?: string }).sqlstate;
  if (sqlstate === SqlState.CannotConnectNow) return true;
  return /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|closed the connection during login/.test(err.message);
}

function isSame(a: HostPort, b: { host: string; port: number } | undefined): boolean {
  return b !== undefined && a.host === b.host && a.port === b.port;
}

export class UpstreamConnector implements UpstreamFactory {
  readonly roles = new DatabaseRoles();
  private readonly loginLog: LoginLog;

  constructor(private readonly ctx: ConnectorContext) {
    this.loginLog = new LoginLog(() => ctx.logger);
  }

  /** The last upstream each database's connections went to, and whether it passed the gate. */
  readonly upstreams = new Map<string, LastSeen & { checkedAt: number }>();
  writeGateRejections = new Map<string, number>();

  readonly leaderCheck = new PatroniLeaderCheck();

  /** The gate a database's pools use now (for state snapshots). */
  gateOf(database: string, db: DatabaseConfig): Gate {
    return this.roles.gateOf(database, db);
  }

  /** Whether a PAUSE or hint for the primary holds this database (see roles.ts). */
  followsPrimary(database: string, db: DatabaseConfig): boolean {
    return this.roles.followsPrimary(database, db, this.upstreams.get(database));
  }

  /** Whether `node` may be this database's server (see roles.ts). */
  servedBy(database: string, db: DatabaseConfig, node: string): boolean {
    return this.roles.servedBy(db, node, this.upstreams.get(database));
  }

  /** A server for the pool: its hosts in order, judged by its gate (or `gate`: a promotion watch asks for a writable one). */
  async connect(entry: PoolEntry, gate?: Gate): Promise<ServerConn> {
    const pool = entry.pool;
    const db = entry.db;
    const last = this.upstreams.get(pool.database);
    // The host that worked last time first, then the rest in the configured order.
    const hosts = [...db.hosts].sort((a, b) => Number(isSame(b, last)) - Number(isSame(a, last)));
    let lastError: Error = new Error(`no hosts configured for database ${pool.database}`);
    let fallback: ServerConn | null = null;
    for (const address of hosts) {
      const outcome = await this.attempt(entry, address, gate === undefined ? {} : { gate });
      if (outcome.kind === 'failed') {
        lastError = outcome.error;
        this.loginLog.failed(pool.database, pool.key, address.host, address.port, outcome.error);
        if (isPermanentLoginError(outcome.error)) break;
        continue;
      }
      if (outcome.kind === 'passed' && !outcome.fallback) {
        fallback?.close(Disconnect.BetterUpstream);
        return this.adopt(entry, outcome.server);
      }
      if (outcome.kind === 'passed') {
        if (fallback === null) fallback = outcome.server; // prefer-standby: a primary will do if no standby answers
        else outcome.server.close(Disconnect.BetterUpstream);
        continue;
      }
      lastError = new PgRelayError(ErrorCode.ServerConnectFailed, `no upstream for ${pool.database} passes the write gate (target_session_attrs=${db.targetSessionAttrs}; last tried ${address.host}:${address.port}: ${outcome.verdict})`, SqlState.CannotConnectNow);
    }
    if (fallback !== null) return this.adopt(entry, fallback);
    throw lastError;
  }

  /**
   * Whether `address` would be accepted for the pool's database right now (login, write gate,
   * Patroni leader lock). The connection is closed.
   */
  async verify(entry: PoolEntry, address: HostPort): Promise<boolean> {
    const outcome = await this.attempt(entry, address);
    if (outcome.kind !== 'passed') return false;
    outcome.server.close(Disconnect.Verification);
    return true;
  }

  /** Readies a server for its pool (login parameters, reset query). Also used for a probe's server handed to a pool. */
  adopt(entry: PoolEntry, server: ServerConn): ServerConn {
    const ctx = this.ctx;
    if (entry.loginParams === null) entry.loginParams = new Map(server.params);
    if (ctx.config.settings.serverResetQueryAlways) server.resetOnRelease = ctx.config.settings.serverResetQuery;
    ctx.logger.debug({ server: server.id, pool: entry.pool.key, host: server.address.host, port: server.address.port, pid: server.processId, writable: server.writable }, 'server connection opened');
    return server;
  }

  /**
   * One login to `address` with the pool's credentials, judged by the gate, within
   * server_login_timeout. A server that arrives after the deadline is closed.
   */
  attempt(entry: PoolEntry, address: HostPort, opts: AttemptOptions = {}): Promise<LoginOutcome> {
    const deadlineMs = this.ctx.config.settings.serverLoginTimeoutMs;
    return new Promise<LoginOutcome>((resolve) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        resolve({ kind: 'failed', down: false, error: new PgRelayError(ErrorCode.ServerConnectFailed, `server_login_timeout: ${address.host}:${address.port} did not pass login and write gate within ${deadlineMs} ms`) });
      }, deadlineMs);
      timer.unref();
      this.tryHost(entry, address, opts, deadlineMs).then((outcome) => {
        clearTimeout(timer);
        if (!late) resolve(outcome);
        else if (outcome.kind === 'passed') outcome.server.close(Disconnect.LoginTimeout);
      });
    });
  }

  /** Logs in to one host and judges it. Never rejects. */
  private async tryHost(entry: PoolEntry, address: HostPort, opts: AttemptOptions, deadlineMs: number): Promise<LoginOutcome> {
    const ctx = this.ctx;
    const pool = entry.pool;
    const db = entry.db;
    const settings = ctx.config.settings;
    const user = db.user ?? pool.user;
    // Patroni's leader lock is asked while the login runs, not after it: during a promotion or a
    // restart its REST API answers slowly, and the two waits need not add up.
    const api = opts.leaderApi !== undefined ? opts.leaderApi : db.patroniApi[db.hosts.findIndex((h) => isSame(h, address))] ?? null;
    let leader: Promise<boolean> | null = null;
    const askLeader = (): Promise<boolean> => (leader ??= this.leaderCheck.isLeader(api!, Date.now(), Math.min(1000, deadlineMs)));
    if (api !== null) void askLeader();
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
        connectTimeoutMs: deadlineMs,
        answerTimeoutMs: Math.min(settings.serverConnectTimeoutMs, deadlineMs),
        keepAlive: settings.tcpKeepalive,
        tls: ctx.tls.server,
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
      return { kind: 'failed', error: err as Error, down: isDown(err as Error) };
    }
    const gate = opts.gate ?? this.roles.gateOf(pool.database, db);
    // Writability: from the login's ParameterStatus (free), probed with a query only when the gate needs it.
    const reported = writableFromParams(server.params);
    const writable = gate === 'any' ? reported : await this.probeWritable(server, reported);
    server.writable = writable;
    let verdict =
      writable === null || gate === 'learning' || satisfies(gate, writable) ? (gate === 'prefer-standby' && writable === true ? 'fallback' : 'use') : writable ? 'writable' : 'read-only';
    if (verdict === 'use' && writable === true && (gate === 'read-write' || gate === 'primary') && api !== null) {
      if (!(await askLeader())) verdict = 'writable but not the Patroni leader';
    }
    if (verdict === 'use' || verdict === 'fallback') {
      if (opts.gate === undefined || db.hosts.some((h) => isSame(h, address))) this.noteUpstream(entry, address, writable, gate);
      return { kind: 'passed', server, writable, fallback: verdict === 'fallback' };
    }
    // The write gate: a client is never handed a server that does not match target_session_attrs.
    this.writeGateRejections.set(pool.database, (this.writeGateRejections.get(pool.database) ?? 0) + 1);
    this.loginLog.rejected(pool.database, pool.key, address.host, address.port, verdict, gate);
    server.close(Disconnect.WriteGate);
    return { kind: 'refused', verdict, writable };
  }

  private noteUpstream(entry: PoolEntry, address: HostPort, writable: boolean | null, gate: Gate): void {
    const database = entry.pool.database;
    this.upstreams.set(database, { host: address.host, port: address.port, writable, checkedAt: Date.now() });
    this.loginLog.passed(database, address.host, address.port);
    const learned = gate === 'learning' && writable !== null ? this.roles.learn(database, entry.db, writable) : null;
    if (learned !== null) {
      this.ctx.logger.info(
        { event: 'role-learned', database, host: address.host, port: address.port, writable, gate: learned === 'primary' ? 'read-write' : 'any' },
        learned === 'primary'
          ? `database "${database}" follows the primary: its server is writable, so from now on only a writable server passes (target_session_attrs=auto)`
          : `database "${database}" is a read-only pool: its servers have been read-only, so every server is used and a PAUSE for the primary does not hold it (target_session_attrs=auto)`,
      );
      // Read-only servers it may have been handed while it was learning no longer pass: closed when released.
      if (learned === 'primary') entry.pool.retireWhere((s) => (s as ServerConn).writable === false, Disconnect.WriteGate);
    }
  }

  /** Writability from the login ParameterStatus, or from a probe query on older servers. */
  private async probeWritable(server: ServerConn, reported: boolean | null): Promise<boolean> {
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
    // A user found through auth_query logs in upstream with what the lookup returned.
    const stored = ctx.authSecrets.get(user) ?? ctx.queriedSecrets.get(user);
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
