// The Control verbs and snapshots over the running proxy: the one place that reads pools, client
// sessions and server connections on behalf of the admin surfaces (HTTP, console, metrics).

import { AdminError, type PrimaryHintResult, type ClientSnapshot, type ConfigRow, type Control, type DatabaseSnapshot, type InTransactionClient, type PauseResult, type PoolSnapshot, type ResumeResult, type ServerSnapshot, type StateSnapshot, type StatsSnapshot } from './contract.js';
import { SETTINGS_TABLE, formatSetting } from '../config/settings.js';
import { TxStatus } from '../protocol/message-types.js';
import type { ClientSession } from '../proxy/client-session.js';
import { ClientState } from '../proxy/client-state.js';
import type { ServerConn } from '../proxy/server-conn.js';
import type { PauseController } from '../pool/pause.js';
import type { ProxyContext } from '../proxy/context.js';
import type { UpstreamConnector } from '../upstream/connector.js';
import type { PrimaryHints } from '../upstream/primary-hints.js';
import { NodeScope } from '../upstream/node-scope.js';
import { VERSION } from '../version.js';
import { StatsPeriod } from '../metrics/stats-period.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import { wallClock } from '../proxy/read-clock.js';

export interface ControlParts {
  readonly ctx: Omit<ProxyContext, 'openConsole'>;
  readonly clients: ReadonlySet<ClientSession>;
  readonly pause: PauseController;
  readonly connector: UpstreamConnector;
  readonly hints: PrimaryHints;
  reload(): void;
  shutdown(): void;
  ready(): boolean;
  shuttingDown(): boolean;
}

/**
 * Clients inside a transaction on `database` (null = any): linked, and their server is not idle
 * or has requests outstanding. The pause drain reports them when its deadline passes.
 */
export function clientsInTransaction(clients: Iterable<ClientSession>, database: string | null): InTransactionClient[] {
  const now = wallClock();
  const out: InTransactionClient[] = [];
  for (const c of clients) {
    if (c.state !== ClientState.active || c.server === null) continue;
    if (database !== null && c.database !== database) continue;
    if (c.server.txStatus === TxStatus.Idle && c.protocol.outstanding === 0) continue;
    out.push({ client: c.id, user: c.user, database: c.database, addr: c.remoteAddress, port: c.remotePort, idleMs: now - c.lastActivity });
  }
  return out;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined || ms === 0 ? null : new Date(ms).toISOString());

export class ProxyControl implements Control {
  /** SHOW STATS' avg_ columns: the last completed stats_period, ended by sweepStats(). */
  private readonly period = new StatsPeriod();

  constructor(private readonly parts: ControlParts) {}

  /** Called by the janitor: ends a stats_period when one has passed. */
  sweepStats(now: number): void {
    this.period.sweep(now, this.ctx.config.settings.statsPeriodMs, () => this.totals());
  }

  private get ctx(): Omit<ProxyContext, 'openConsole'> {
    return this.parts.ctx;
  }

  /** Validates a database name given to an admin verb (null/undefined = all). */
  private scope(database: string | undefined): string | null {
    if (database === undefined || database === '') return null;
    if (this.ctx.registry.findDatabase(database) === undefined) {
      throw new AdminError('PGRELAY_NO_SUCH_DATABASE', `no such database: ${database}`, 404, 'database');
    }
    return database;
  }

  async pause(opts: { database?: string; timeoutMs?: number; node?: string; by?: string } = {}): Promise<PauseResult> {
    const database = this.scope(opts.database);
    this.ctx.logger.info({ event: 'pause-request', by: opts.by ?? 'unknown', database: database ?? '*', node: opts.node, timeoutMs: opts.timeoutMs }, `PAUSE requested by ${opts.by ?? 'an unnamed caller'}`);
    if (opts.timeoutMs !== undefined && (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 0)) {
      throw new AdminError('PGRELAY_BAD_REQUEST', 'timeout_ms must be a non-negative integer', 400, 'timeout_ms');
    }
    if (opts.node !== undefined && opts.node !== '' && database === null) {
      // A hook pauses "for this node": hold only the databases that follow the primary and that
      // this node may serve (node-scope.ts). A replica pool, or a host list whose current upstream
      // is another node, goes on; with nothing to hold the PAUSE is ignored. While it is in force
      // pgrelay looks for the new primary itself (promotion-watch.ts), whichever comes first:
      // its own probe or the hook's hint.
      const node = opts.node;
      const scope = new NodeScope(node, this.parts.connector, (name) => this.ctx.registry.findDatabase(name));
      const names = new Set<string>([...this.ctx.config.databases.keys()].filter((n) => n !== '*'));
      for (const e of this.ctx.registry.all()) names.add(e.pool.database);
      const held = [...names].filter((n) => scope.includes(n));
      // Databases that will come through `*` later: judged by the `*` entry, unless pools through it exist already (judged above).
      const fallback = this.ctx.config.databases.get('*');
      const fallbackUsed = fallback !== undefined && [...this.ctx.registry.all()].some((e) => e.db === fallback);
      const future = fallback !== undefined && !fallbackUsed && this.parts.connector.followsPrimary('*', fallback) && this.parts.connector.servedBy('*', fallback, node);
      if (held.length === 0 && !future) {
        const current = this.currentUpstreams(null);
        this.ctx.logger.info({ node, current }, 'pause ignored: no database is served by this node as primary');
        return {
          result: 'ignored',
          database,
          drainMs: 0,
          serversLeft: 0,
          inTransaction: [],
          autoResumeAt: null,
          reason: `no database follows node ${node} as primary (current upstreams: ${current.map((u) => `${u.host}:${u.port}`).join(', ') || 'none'})`,
        };
      }
      this.ctx.logger.info({ event: 'pause-for-node', node, databases: held }, 'pause for a node: holding the databases it serves as primary');
      const result = this.parts.pause.pause(null, opts.timeoutMs, scope);
      this.parts.hints.watchPause(scope);
      return result;
    }
    return this.parts.pause.pause(database, opts.timeoutMs);
  }

  resume(opts: { database?: string; by?: string } = {}): ResumeResult {
    const database = this.scope(opts.database);
    this.ctx.logger.info({ event: 'resume-request', by: opts.by ?? 'unknown', database: database ?? '*' }, `RESUME requested by ${opts.by ?? 'an unnamed caller'}`);
    return this.parts.pause.resume(database);
  }

  primaryHint(opts: { node: string; role?: string }): PrimaryHintResult {
    return this.parts.hints.hint(opts.node, opts.role);
  }

  reconnect(database?: string): number {
    const db = this.scope(database);
    let n = 0;
    for (const e of this.ctx.registry.all()) if (db === null || e.pool.database === db) n += e.pool.reconnect(Disconnect.Reconnect);
    return n;
  }

  async waitClose(database?: string): Promise<void> {
    const db = this.scope(database);
    const pending = (): number => {
      let n = 0;
      for (const e of this.ctx.registry.all()) {
        if (db !== null && e.pool.database !== db) continue;
        for (const s of e.pool.servers().active) if (s.closeNeeded) n++;
      }
      return n;
    };
    while (pending() > 0) await new Promise((r) => setTimeout(r, 50).unref());
  }

  kill(database?: string): number {
    const db = this.scope(database);
    let n = 0;
    for (const c of [...this.parts.clients]) {
      // Console sessions are not the database's clients (and KILL must answer its caller).
      if (c.state === ClientState.console) continue;
      if (db === null || c.database === db) {
        c.fatal(new PgRelayError(ErrorCode.Killed, 'terminating connection due to administrator command (KILL)'));
        n++;
      }
    }
    for (const e of this.ctx.registry.all()) if (db === null || e.pool.database === db) e.pool.reconnect(Disconnect.Kill);
    return n;
  }

  /** RELOAD: a refused file keeps the running config; the caller gets the reason (the log has it too). */
  reload(): void {
    try {
      this.parts.reload();
    } catch (err) {
      throw new AdminError('PGRELAY_RELOAD_REFUSED', `reload refused, keeping the current configuration: ${(err as Error).message}`, 400);
    }
  }

  shutdown(): void {
    this.parts.shutdown();
  }

  ready(): boolean {
    return this.parts.ready();
  }

  version(): string {
    return VERSION;
  }

  private currentUpstreams(database: string | null): { host: string; port: number }[] {
    const out: { host: string; port: number }[] = [];
    for (const [db, u] of this.parts.connector.upstreams) if (database === null || db === database) out.push(u);
    return out;
  }

  inTransaction(database: string | null): InTransactionClient[] {
    return clientsInTransaction(this.parts.clients, database);
  }

  state(): StateSnapshot {
    const pause = this.parts.pause;
    const names = new Set<string>();
    for (const name of this.ctx.config.databases.keys()) if (name !== '*') names.add(name);
    for (const e of this.ctx.registry.all()) names.add(e.pool.database);
    for (const name of pause.pausedDatabases()) names.add(name);
    let waitingTotal = 0;
    const databases = [...names].sort().map((name) => {
      let waiting = 0;
      for (const e of this.ctx.registry.all()) if (e.pool.database === name) waiting += e.pool.waitingCount;
      waitingTotal += waiting;
      const st = pause.stateOf(name);
      const u = this.parts.connector.upstreams.get(name);
      const cfg = this.ctx.registry.findDatabase(name);
      return {
        name,
        paused: pause.isPaused(name),
        pausedSince: iso(st?.since),
        autoResumeAt: iso(st?.autoResumeAt),
        waitingClients: waiting,
        upstream: u === undefined ? null : { host: u.host, port: u.port, writable: u.writable, checkedAt: iso(u.checkedAt) },
        targetSessionAttrs: cfg?.targetSessionAttrs ?? 'auto',
        gate: cfg === undefined ? 'learning' : this.parts.connector.gateOf(name, cfg),
      };
    });
    const g = pause.globalState;
    return {
      paused: g !== null,
      pausedSince: iso(g?.since),
      autoResumeAt: iso(g?.autoResumeAt),
      waitingClients: waitingTotal,
      shuttingDown: this.parts.shuttingDown(),
      databases,
    };
  }

  pools(): PoolSnapshot[] {
    const byPool = new Map<unknown, { active: number; idle: number }>();
    for (const c of this.parts.clients) {
      if (c.pool === null) continue;
      const row = byPool.get(c.pool) ?? { active: 0, idle: 0 };
      if (c.state === ClientState.active || c.state === ClientState.linking) row.active++;
      else if (c.state === ClientState.idle) row.idle++;
      byPool.set(c.pool, row);
    }
    const now = wallClock();
    return [...this.ctx.registry.all()].map((e) => {
      const p = e.pool;
      const cl = byPool.get(p) ?? { active: 0, idle: 0 };
      return {
        database: p.database,
        user: p.user,
        poolMode: e.mode,
        clActive: cl.active + cl.idle,
        clWaiting: p.waitingCount,
        clIdle: cl.idle,
        svActive: p.activeCount,
        svIdle: p.idleCount,
        svLogin: p.connectingCount,
        maxWaitMs: p.oldestWaitMs(now),
        paused: p.isPaused,
      };
    });
  }

  clients(): ClientSnapshot[] {
    const now = wallClock();
    return [...this.parts.clients].map((c) => ({
      id: c.id,
      user: c.user,
      database: c.database,
      state: c.state === ClientState.waiting || c.state === ClientState.linking ? 'waiting' : c.state === ClientState.login ? 'login' : c.state === ClientState.active ? 'active' : 'idle',
      addr: c.remoteAddress,
      port: c.remotePort,
      localAddr: c.localAddress,
      localPort: c.localPort,
      connectTime: iso(c.connectedAt) ?? '',
      requestTime: iso(c.lastActivity) ?? '',
      waitMs: c.waitingSince > 0 ? now - c.waitingSince : 0,
      server: c.server?.id ?? null,
      applicationName: c.params.get('application_name') ?? '',
      preparedStatements: c.protocol.names?.size ?? 0,
    }));
  }

  servers(): ServerSnapshot[] {
    const out: ServerSnapshot[] = [];
    for (const e of this.ctx.registry.all()) {
      const { idle, active } = e.pool.servers();
      const row = (s: ServerConn, state: string): ServerSnapshot => ({
        id: s.id,
        user: e.db.user ?? e.pool.user,
        database: e.pool.database,
        state,
        addr: s.address.host,
        port: s.address.port,
        localPort: s.localPort ?? 0,
        connectTime: iso(s.createdAt) ?? '',
        requestTime: iso(s.linkedAt || s.idleSince) ?? '',
        closeNeeded: s.closeNeeded,
        client: s.client?.id ?? null,
        remotePid: s.processId,
        applicationName: s.params.get('application_name') ?? '',
        preparedStatements: s.statements?.size ?? 0,
        writable: s.writable,
      });
      for (const s of active) out.push(row(s as ServerConn, 'active'));
      for (const s of idle) out.push(row(s as ServerConn, 'idle'));
    }
    return out;
  }

  databases(): DatabaseSnapshot[] {
    const s = this.ctx.config.settings;
    const clientsPerDb = new Map<string, number>();
    for (const c of this.parts.clients) clientsPerDb.set(c.database, (clientsPerDb.get(c.database) ?? 0) + 1);
    const serversPerDb = new Map<string, number>();
    for (const e of this.ctx.registry.all()) serversPerDb.set(e.pool.database, (serversPerDb.get(e.pool.database) ?? 0) + e.pool.serverCount);
    return [...this.ctx.config.databases.values()].map((db) => ({
      name: db.name,
      hosts: db.hosts.map((h) => h.host).join(','),
      ports: db.hosts.map((h) => String(h.port)).join(','),
      dbname: db.dbname ?? db.name,
      forceUser: db.user ?? '',
      poolSize: db.poolSize ?? s.defaultPoolSize,
      minPoolSize: db.minPoolSize ?? s.minPoolSize,
      reservePoolSize: db.reservePoolSize ?? s.reservePoolSize,
      serverLifetimeS: Math.round((db.serverLifetimeMs ?? s.serverLifetimeMs) / 1000),
      poolMode: db.poolMode ?? s.poolMode,
      maxConnections: db.maxDbConnections ?? s.maxDbConnections,
      currentConnections: serversPerDb.get(db.name) ?? 0,
      currentClientConnections: clientsPerDb.get(db.name) ?? 0,
      paused: this.parts.pause.isPaused(db.name),
      targetSessionAttrs: db.targetSessionAttrs,
    }));
  }

  stats(): StatsSnapshot[] {
    return this.totals().map((row) => ({ ...row, averages: this.period.of(row.database) }));
  }

  /** Counters per database since start, retired pools included. */
  private totals(): StatsSnapshot[] {
    const per = new Map<string, StatsSnapshot>();
    // poolStats() includes retired pools' counters, so these totals never go back.
    for (const { database, stats: st } of this.ctx.registry.poolStats()) {
      const row = per.get(database) ?? { database, serverAssignments: 0, transactions: 0, queries: 0, bytesReceived: 0, bytesSent: 0, transactionTimeUs: 0, queryTimeUs: 0, waitTimeUs: 0, waits: 0 };
      per.set(database, {
        ...row,
        serverAssignments: row.serverAssignments + st.assignments,
        transactions: row.transactions + st.transactions,
        queries: row.queries + st.queries,
        bytesReceived: row.bytesReceived + st.bytesReceived,
        bytesSent: row.bytesSent + st.bytesSent,
        transactionTimeUs: row.transactionTimeUs + st.transactionTimeUs,
        queryTimeUs: row.queryTimeUs + st.queryTimeUs,
        waitTimeUs: row.waitTimeUs + st.waitTimeUs,
        waits: row.waits + st.waits,
      });
    }
    return [...per.values()];
  }

  config(): ConfigRow[] {
    const settings = this.ctx.config.settings;
    return SETTINGS_TABLE.filter((s) => s.aliasOf === undefined).map((s) => ({
      key: s.key,
      value: formatSetting(s, settings),
      default: s.default,
      changeable: s.reload,
    }));
  }

  users(): { name: string; poolMode: string }[] {
    const names = new Set<string>([...this.ctx.config.users.keys()]);
    for (const e of this.ctx.registry.all()) names.add(e.pool.user);
    return [...names].sort().map((name) => ({ name, poolMode: this.ctx.config.users.get(name)?.poolMode ?? this.ctx.config.settings.poolMode }));
  }
}
