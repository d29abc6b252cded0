// Composition root: config -> logger -> pools -> listeners -> janitor. start() and stop() are the
// only lifecycle verbs; the process edge (argv, signals, exit codes) lives in main.ts.

import net from 'node:net';
import { writeFileSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { loadCheckedAuthFile } from './auth/auth-file.js';
import { PoolRegistry } from './pool/registry.js';
import { Janitor } from './pool/janitor.js';
import { UpstreamConnector } from './upstream/connector.js';
import { ClientSession, ClientState } from './proxy/client-session.js';
import { sweepClients } from './proxy/client-timeouts.js';
import { ProxyStats, type ProxyContext } from './proxy/context.js';
import { SqlState } from './protocol/sqlstate.js';
import { createLogger } from './logger.js';
import { PauseController, type PauseEvent } from './pool/pause.js';
import { ProxyControl } from './control.js';
import { PrimaryHints } from './upstream/primary-hints.js';
import { loadConfig } from './config/load.js';
import { diffConfig } from './config/diff.js';
import type { Control } from './admin/control.js';
import { Metrics, type ProxyCounters } from './metrics/metrics.js';
import { buildAdminServer } from './admin/http.js';
import { checkAdminBinding } from './admin/http-auth.js';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';

export interface AppOptions {
  readonly logger?: Logger;
}

export class App {
  readonly ctx: ProxyContext;
  readonly clients = new Set<ClientSession>();
  /** One callback shared by every client session, not a closure each. */
  private readonly onClientGone = (c: ClientSession): void => {
    this.clients.delete(c);
    // Its pool may retire once no client holds it (autodb_idle_timeout).
    if (c.entry !== null) this.ctx.registry.detach(c.entry);
  };
  private readonly listeners: net.Server[] = [];
  private readonly janitor: Janitor;
  private stopping = false;
  readonly pause: PauseController;
  readonly control: Control;
  readonly connector: UpstreamConnector;
  readonly metrics: Metrics;
  readonly hints: PrimaryHints;
  private lastLeaderCheck = 0;
  private admin: FastifyInstance | null = null;
  /** Set by main.ts so the admin SHUTDOWN verb can end the process the same way a signal does. */
  onShutdownRequest: (() => void) | null = null;

  constructor(config: Config, opts: AppOptions = {}) {
    const connector = new UpstreamConnector();
    const registry = new PoolRegistry(config, connector);
    const clock = { now: Date.now() };
    const logger = opts.logger ?? createLogger(config.settings);
    this.ctx = {
      config,
      authSecrets: config.settings.authFile !== null ? loadCheckedAuthFile(config.settings.authFile, logger) : new Map(),
      registry,
      logger,
      stats: new ProxyStats(),
      cancelKeys: new Map(),
      scramKeys: new Map(),
      clock,
      clientCount: () => this.clients.size,
    };
    connector.bind(this.ctx);
    this.connector = connector;
    let control: ProxyControl | null = null;
    this.pause = new PauseController(
      {
        pools: () => registry.pools(),
        inTransaction: (db) => control?.inTransaction(db) ?? [],
        onEvent: (e) => this.onPauseEvent(e),
      },
      () => this.ctx.config.settings,
    );
    registry.observer = {
      onServersChanged: () => this.pause.onServersChanged(),
      onWaited: (pool, waitedMs) => this.metrics.observeWait(waitedMs / 1000, pool.database),
    };
    registry.onPoolCreated = (pool) => this.pause.applyTo(pool);
    this.hints = new PrimaryHints(registry, connector, this.pause, this.ctx.logger, () => Math.max(this.ctx.config.settings.pauseMaxDurationMs, 10_000));
    control = new ProxyControl({
      hints: this.hints,
      ctx: this.ctx,
      clients: this.clients,
      pause: this.pause,
      connector,
      reload: () => {
        if (this.ctx.config.file === null) throw new Error('no config file to reload');
        this.reload(loadConfig(this.ctx.config.file));
      },
      shutdown: () => (this.onShutdownRequest !== null ? this.onShutdownRequest() : void this.stop()),
      ready: () => !this.stopping && this.listeners.length > 0,
      shuttingDown: () => this.stopping,
    });
    this.control = control;
    this.ctx.control = control;
    this.metrics = new Metrics({ control, counters: () => this.counters() });
    this.janitor = new Janitor(clock, [
      (now) => registry.sweep(now),
      (now) => this.pause.sweep(now),
      (now) => {
        // Once a second: does the current upstream still hold the Patroni leader lock?
        if (now - this.lastLeaderCheck >= 1000) {
          this.lastLeaderCheck = now;
          this.hints.watchLeaders();
        }
      },
      (now) => sweepClients(this.clients, this.ctx.config.settings, now),
      () => this.checkShutdown(),
    ]);
  }

  get config(): Config {
    return this.ctx.config;
  }

  /** Bound addresses (listen_port 0 picks a free port, as the tests do). */
  addresses(): { host: string; port: number }[] {
    const out: { host: string; port: number }[] = [];
    for (const l of this.listeners) {
      const a = l.address();
      if (a !== null && typeof a === 'object') out.push({ host: a.address, port: a.port });
      else if (typeof a === 'string') out.push({ host: a, port: 0 });
    }
    return out;
  }

  get port(): number {
    return this.addresses()[0]?.port ?? 0;
  }

  async start(): Promise<void> {
    const s = this.ctx.config.settings;
    const targets: net.ListenOptions[] = s.listenAddr.map((host) => ({ host, port: s.listenPort, backlog: 1024 }));
    // PgBouncer's Unix socket: <dir>/.s.PGSQL.<port>, so `psql -h <dir> -p <port>` works.
    if (s.unixSocketDir !== null && s.listenPort > 0) targets.push({ path: `${s.unixSocketDir}/.s.PGSQL.${s.listenPort}`, backlog: 1024 });
    for (const target of targets) {
      if (target.path !== undefined) rmSync(target.path, { force: true });
      const server = net.createServer({ noDelay: true, keepAlive: s.tcpKeepalive }, (socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(target, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      server.on('error', (err) => this.ctx.logger.error({ err: err.message }, 'listener error'));
      this.listeners.push(server);
    }
    if (s.adminListenPort > 0) await this.startAdmin();
    if (s.pidfile !== null) writeFileSync(s.pidfile, `${process.pid}\n`);
    this.janitor.start();
    this.ctx.logger.info({ listen: this.addresses(), poolMode: s.poolMode, authType: s.authType }, 'pgrelay listening');
    for (const w of this.ctx.config.warnings) this.ctx.logger.warn({ file: w.file, line: w.line, key: w.key }, w.message);
  }

  /**
   * The HTTP admin API (fastify). Refuses a non-loopback address without a token. `port`
   * overrides admin_listen_port (tests use 0 for a free port).
   */
  async startAdmin(port = this.ctx.config.settings.adminListenPort): Promise<{ host: string; port: number }> {
    const s = this.ctx.config.settings;
    const token = s.adminToken ?? (s.adminTokenFile !== null ? readFileSync(s.adminTokenFile, 'utf8').trim() : null);
    checkAdminBinding(s.adminListenAddr, token);
    const admin = buildAdminServer({ control: this.control, metrics: this.metrics, token, logger: this.ctx.logger });
    await admin.listen({ host: s.adminListenAddr, port });
    this.admin = admin;
    const a = admin.server.address() as net.AddressInfo;
    this.ctx.logger.info({ host: a.address, port: a.port, token: token !== null }, 'admin API listening');
    return { host: a.address, port: a.port };
  }

  /** The hot path's plain counters, summed for a scrape. */
  private counters(): ProxyCounters {
    const st = this.ctx.stats;
    let serverConnects = 0;
    let serverConnectFailures = 0;
    // poolStats() includes retired pools' counters, so these totals never go back.
    for (const { stats } of this.ctx.registry.poolStats()) {
      serverConnects += stats.serverConnects;
      serverConnectFailures += stats.serverConnectFailures;
    }
    return {
      clientsAccepted: st.clientsAccepted,
      clientsRejected: st.clientsRejected,
      transactions: st.transactions,
      queries: st.queries,
      bytesFromClients: st.bytesFromClients,
      bytesToClients: st.bytesToClients,
      cancelsForwarded: st.cancelsForwarded,
      cancelsIgnored: st.cancelsIgnored,
      serverConnects,
      serverConnectFailures,
      disconnects: st.disconnects,
      autoResumes: this.pause.autoResumes,
      writeGateRejections: this.connector.writeGateRejections,
    };
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.ctx.stats.clientsAccepted++;
    const client = new ClientSession(socket, this.ctx, this.onClientGone);
    this.clients.add(client);
  }

  /** One structured log line per pause, drain result, resume and auto-resume. */
  private onPauseEvent(e: PauseEvent): void {
    const log = this.ctx.logger;
    switch (e.kind) {
      case 'pause':
        log.info({ event: 'pause', database: e.database ?? '*', drainTimeoutMs: e.drainTimeoutMs, autoResumeAt: e.autoResumeAt === null ? null : new Date(e.autoResumeAt).toISOString() }, 'pause');
        return;
      case 'drain':
        this.metrics.observeDrain(e.drainMs / 1000, e.result);
        (e.result === 'timeout' ? log.warn.bind(log) : log.info.bind(log))({ event: 'drain', database: e.database ?? '*', result: e.result, drainMs: e.drainMs, serversLeft: e.serversLeft, inTransaction: e.inTransaction }, `pause drain ${e.result}`);
        return;
      case 'resume':
        this.metrics.observePaused(e.pausedMs / 1000);
        (e.auto ? log.warn.bind(log) : log.info.bind(log))({ event: e.auto ? 'auto-resume' : 'resume', database: e.database ?? '*', pausedMs: e.pausedMs, waitingClients: e.waitingClients }, e.auto ? 'auto-resume: pause_max_duration reached' : 'resume');
        return;
    }
  }

  /** Applies a new config: pools, timeouts and secrets change now; listen addresses need a restart. */
  reload(next: Config): void {
    const authSecrets = next.settings.authFile !== null ? loadCheckedAuthFile(next.settings.authFile, this.ctx.logger) : new Map<string, string>();
    const diff = diffConfig(this.ctx.config, next);
    if (diff.needsRestart.length > 0) {
      this.ctx.logger.warn({ keys: diff.needsRestart }, 'reload: these settings change only after a restart');
    }
    this.ctx.config = next;
    this.ctx.authSecrets = authSecrets;
    this.ctx.registry.reload(next);
    this.ctx.logger.info({ file: next.file, changed: diff.changed }, 'configuration reloaded');
  }

  /**
   * Stops accepting, lets linked clients finish their transaction, and closes each client as it
   * goes idle; past the deadline everything left is closed.
   */
  async stop(deadlineMs = this.ctx.config.settings.shutdownTimeoutMs): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      for (const l of this.listeners) l.close();
      this.ctx.logger.info({ clients: this.clients.size, deadlineMs }, 'shutting down');
    }
    this.checkShutdown();
    const deadline = Date.now() + deadlineMs;
    while (this.clients.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      this.checkShutdown();
    }
    for (const c of [...this.clients]) c.fatal(SqlState.AdminShutdown, 'pgrelay is shutting down', 'shutdown deadline');
    this.pause.close();
    this.ctx.registry.closeAll('shutdown');
    if (this.admin !== null) await this.admin.close();
    this.janitor.stop();
    const pidfile = this.ctx.config.settings.pidfile;
    if (pidfile !== null) rmSync(pidfile, { force: true });
    // Let the Terminate messages reach the servers before the caller exits.
    await new Promise((r) => setTimeout(r, 20));
  }

  private checkShutdown(): void {
    if (!this.stopping) return;
    for (const c of [...this.clients]) {
      if (c.state === ClientState.idle || c.state === ClientState.login) {
        c.fatal(SqlState.AdminShutdown, 'pgrelay is shutting down', 'shutdown');
      }
    }
  }
}
