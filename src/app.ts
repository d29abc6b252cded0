// Composition root: config -> logger -> pools -> listeners -> janitor. start() and stop() are the
// only lifecycle verbs; the process edge (argv, signals, exit codes) lives in main.ts.

import net from 'node:net';
import { writeFileSync, rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { loadCheckedAuthFile } from './auth/auth-file.js';
import { PoolRegistry } from './pool/registry.js';
import { Janitor } from './pool/janitor.js';
import { UpstreamConnector, type ConnectorContext } from './upstream/connector.js';
import { ClientSession } from './proxy/client-session.js';
import { ClientState } from './proxy/client-state.js';
import { sweepClients } from './proxy/client-timeouts.js';
import { ProxyStats, type ConsoleIO, type ConsoleLink, type ConsoleLogin, type ProxyContext } from './proxy/context.js';
import { Disconnect, ErrorCode, PgRelayError } from './errors.js';
import { wallClock } from './proxy/read-clock.js';
import { ConsoleSession } from './admin/console-session.js';
import { requestedBy } from './admin/requested-by.js';
import { consoleWelcome } from './admin/console-login.js';
import { createLogger } from './logger.js';
import { RepeatLog } from './log-limiter.js';
import { PauseController, type PauseEvent } from './pool/pause.js';
import { clientsInTransaction, ProxyControl } from './control/proxy-control.js';
import { PrimaryHints } from './upstream/primary-hints.js';
import { loadConfig } from './config/load.js';
import { planReload, type ReloadPlan } from './config/diff.js';
import { ConfigError } from './config/types.js';
import type { Control } from './control/contract.js';
import { Metrics, type ProxyCounters } from './metrics/metrics.js';
import { buildAdminServer } from './admin/http.js';
import { BearerCheck, checkAdminBinding, readAdminToken } from './admin/http-auth.js';
import type { FastifyInstance } from 'fastify';
import { loadSecurity, type Security } from './auth/security.js';
import { AuthQuery } from './auth/auth-query.js';
import { loadTls } from './tls/tls-contexts.js';
import { TlsFileWatch } from './tls/tls-file-watch.js';

export interface AppOptions {
  readonly logger?: Logger;
  /** The command line set the log level (-v, -q): log_level in the file does not change it. */
  readonly logLevelFromArgs?: boolean;
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
  private readonly authQuery: AuthQuery;
  /** tls_file_check_period: TLS files rotated in place are loaded without a SIGHUP. */
  private readonly tlsWatch = new TlsFileWatch(() => this.ctx.config.settings, () => this.reloadTls());
  private lastLeaderCheck = 0;
  private admin: FastifyInstance | null = null;
  /** The admin API's token check; a reload replaces the token it holds. */
  private readonly bearer = new BearerCheck(null);
  private adminToken: string | null = null;
  private readonly logLevelFromArgs: boolean;
  private stopped: Promise<void> | null = null;
  private shutdownDeadline = 0;
  /** Set by main.ts so the admin SHUTDOWN verb can end the process the same way a signal does. */
  onShutdownRequest: (() => void) | null = null;

  constructor(config: Config, opts: AppOptions = {}) {
    // Built in one direction: each object is complete when it is handed on. Observers (of pools,
    // of pauses) are attached at the end, once everything they report to exists.
    this.logLevelFromArgs = opts.logLevelFromArgs ?? false;
    const logger = opts.logger ?? createLogger(config.settings);
    // The context starts as what the connector reads; the same object grows into the full
    // ProxyContext (reloads replace its config and secrets, and every holder sees them).
    // TLS material and HBA rules: a file that does not load stops the start (ConfigError).
    const security = loadSecurity(config);
    const shared: ConnectorContext = {
      config,
      authSecrets: config.settings.authFile !== null ? loadCheckedAuthFile(config.settings.authFile, logger) : new Map(),
      logger,
      stats: new ProxyStats(),
      scramKeys: new Map(),
      tls: security.tls,
      queriedSecrets: new Map(),
    };
    const authQuery = new AuthQuery(shared);
    const connector = new UpstreamConnector(shared);
    const registry = new PoolRegistry(config, connector);
    const clock = { now: wallClock() };
    const base = Object.assign(shared, { registry, cancelKeys: new Map(), clock, repeatLog: new RepeatLog(() => this.ctx.logger), clientCount: () => this.clients.size, hba: security.hba, authQuery });
    const pause = new PauseController({ pools: () => registry.pools(), inTransaction: (db) => clientsInTransaction(this.clients, db) }, () => this.ctx.config.settings);
    const hints = new PrimaryHints(registry, connector, pause, logger, () => this.ctx.config.settings);
    const control = new ProxyControl({
      hints,
      ctx: base,
      clients: this.clients,
      pause,
      connector,
      reload: () => this.reloadFromFile(),
      shutdown: () => (this.onShutdownRequest !== null ? this.onShutdownRequest() : void this.stop()),
      ready: () => !this.stopping && this.listeners.length > 0,
      shuttingDown: () => this.stopping,
    });
    // The console reaches the proxy through this callback: proxy/ never imports admin/.
    this.ctx = Object.assign(base, {
      openConsole: (io: ConsoleIO, who: ConsoleLogin): ConsoleLink => {
        for (const b of consoleWelcome(who.user, who.processId, who.secretKey)) io.write(b);
        return new ConsoleSession(io, requestedBy(control, `console user "${who.user}"`), { user: who.user, admin: who.admin });
      },
    });
    this.connector = connector;
    this.pause = pause;
    this.hints = hints;
    this.control = control;
    this.metrics = new Metrics({ control, counters: () => this.counters(), poolTraffic: () => registry.poolStats() });
    const metrics = this.metrics;
    registry.observe(pause);
    registry.observe({ onServersChanged: () => undefined, onPoolCreated: () => undefined, onWaited: (pool, waitedMs) => metrics.observeWait(waitedMs / 1000, pool.database) });
    pause.observe((e) => this.onPauseEvent(e));
    this.janitor = new Janitor(clock, [
      (now) => registry.sweep(now),
      (now) => pause.sweep(now),
      (now) => {
        // Once a second: does the current upstream still hold the Patroni leader lock?
        if (now - this.lastLeaderCheck >= 1000) {
          this.lastLeaderCheck = now;
          hints.watchLeaders();
        }
      },
      (now) => sweepClients(this.clients, this.ctx.config.settings, now),
      (now) => control.sweepStats(now),
      (now) => this.ctx.repeatLog.sweep(now),
      (now) => authQuery.sweep(now),
      (now) => this.tlsWatch.sweep(now),
      () => this.checkShutdown(),
    ]);
    this.authQuery = authQuery;
    this.tlsWatch.accept();
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
      // Keepalive is set per accepted socket (accept()), so that a reload of tcp_keepalive applies.
      const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
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
    this.logWarnings(this.ctx.config);
  }

  /** One line per config warning (file, line, key): at startup and, the same, at each reload. */
  private logWarnings(config: Config): void {
    for (const w of config.warnings) this.ctx.logger.warn({ file: w.file, line: w.line, key: w.key }, w.message);
  }

  /**
   * The HTTP admin API (fastify). Refuses a non-loopback address without a token. `port`
   * overrides admin_listen_port (tests use 0 for a free port).
   */
  async startAdmin(port = this.ctx.config.settings.adminListenPort): Promise<{ host: string; port: number }> {
    const s = this.ctx.config.settings;
    const token = readAdminToken(s);
    checkAdminBinding(s.adminListenAddr, token);
    this.bearer.set(token);
    this.adminToken = token;
    const admin = buildAdminServer({ control: this.control, metrics: this.metrics, token: this.bearer, logger: this.ctx.logger });
    await admin.listen({ host: s.adminListenAddr, port });
    this.admin = admin;
    const a = admin.server.address() as net.AddressInfo;
    // Not `token`: the logger redacts that field, which would print **** whether one is set or not.
    this.ctx.logger.info({ host: a.address, port: a.port, tokenSet: token !== null }, 'admin API listening');
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
      loginFailures: st.loginFailures,
      autoResumes: this.pause.autoResumes,
      writeGateRejections: this.connector.writeGateRejections,
      preparesSent: st.preparesSent,
      preparedHits: st.preparedHits,
      preparedEvictions: st.preparedEvictions,
    };
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    this.ctx.stats.clientsAccepted++;
    if (this.ctx.config.settings.tcpKeepalive) socket.setKeepAlive(true);
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

  /**
   * Reads the config file again and applies it (SIGHUP, RELOAD). A file that does not load, or a
   * config that cannot be applied (an unreadable auth_file or admin token file), is refused whole:
   * the running config stays, and the error is logged naming the file. The error is rethrown for
   * the caller (RELOAD answers it).
   */
  reloadFromFile(): ReloadPlan {
    const file = this.ctx.config.file;
    try {
      if (file === null) throw new Error('no config file to reload: this configuration was built in code');
      return this.reload(loadConfig(file));
    } catch (err) {
      const where = err instanceof ConfigError ? { file: err.file, line: err.line, reason: err.reason } : { file };
      this.ctx.logger.error({ ...where, err: (err as Error).message }, 'reload refused: keeping the current configuration');
      throw err;
    }
  }

  /**
   * Applies a new config. Pools, timeouts, secrets and the admin token change now; what needs a
   * restart (listeners, pool modes, the log file) keeps its running value and is logged as such.
   * `changed` in the log names only what took effect. Throws, changing nothing, when the new
   * auth_file or admin token cannot be read.
   */
  reload(next: Config): ReloadPlan {
    // The same warnings as at startup: a typo added since must not pass silently.
    this.logWarnings(next);
    const plan = planReload(this.ctx.config, next);
    const s = plan.config.settings;
    // Whatever can fail is read before anything changes.
    const authSecrets = s.authFile !== null ? loadCheckedAuthFile(s.authFile, this.ctx.logger) : new Map<string, string>();
    // Certificates and keys are read again whatever the keys say: cert-manager rotates the files
    // under the same names. A file that does not load refuses the reload; the old contexts stay.
    // `next`, not plan.config: the same TLS and HBA settings (none waits for a restart), plus
    // where each was written, for errors at the line.
    const security = loadSecurity(next);
    const token = this.admin !== null ? readAdminToken(s) : this.adminToken;
    if (this.admin !== null) {
      checkAdminBinding(s.adminListenAddr, token);
      // admin_token_file's contents changed under the same key: still a change, and one that applies.
      if (token !== this.adminToken && !plan.changed.includes('admin_token') && !plan.changed.includes('admin_token_file')) plan.changed.push('admin_token_file');
    }
    this.ctx.config = plan.config;
    this.ctx.authSecrets = authSecrets;
    this.applySecurity(security, plan.changed);
    this.tlsWatch.accept();
    this.ctx.registry.reload(plan.config);
    this.bearer.set(token);
    this.adminToken = token;
    if (plan.changed.includes('log_level')) {
      if (this.logLevelFromArgs) {
        plan.changed.splice(plan.changed.indexOf('log_level'), 1);
        this.ctx.logger.warn({ key: 'log_level' }, 'reload: log_level is not applied: the command line (-v, -vv or -q) sets the log level');
      } else {
        this.ctx.logger.level = s.logLevel;
        if (this.admin !== null) this.admin.log.level = s.logLevel;
      }
    }
    if (plan.needsRestart.length > 0) {
      this.ctx.logger.warn({ keys: plan.needsRestart }, 'reload: these settings change only after a restart; their running values stay');
    }
    this.ctx.logger.info({ file: plan.config.file, changed: plan.changed, needsRestart: plan.needsRestart }, 'configuration reloaded');
    return plan;
  }

  /**
   * Puts reloaded TLS contexts and HBA rules in place: new connections use them, open ones keep
   * the session they negotiated. New certificate contents count as a change (`changed` names the
   * file's key); new server TLS makes every server reconnect when released, as PgBouncer does, so
   * no server keeps weaker settings than the file asks for.
   */
  private applySecurity(next: Security, changed: string[]): void {
    const before = this.ctx.tls;
    const note = (key: string): void => {
      if (!changed.includes(key)) changed.push(key);
    };
    if (next.tls.client?.fingerprint !== before.client?.fingerprint && next.tls.client !== null && before.client !== null) note('client_tls_cert_file');
    if ((next.tls.server?.digest ?? null) !== (before.server?.digest ?? null)) {
      note('server_tls');
      for (const pool of this.ctx.registry.pools()) pool.reconnect(Disconnect.ServerTlsChanged);
    }
    this.ctx.tls = next.tls;
    this.ctx.hba = next.hba;
    // auth_user, auth_query, auth_file or TLS may have changed: lookups start afresh.
    this.authQuery.reset();
    if (next.tls.client !== null) this.ctx.logger.info({ fingerprint: next.tls.client.fingerprint }, 'client TLS certificate in use');
  }

  /**
   * The TLS files changed on disk (tls_file_check_period): loads them alone, as a reload would,
   * and keeps the running contexts when they do not load (logged with the file and line; tried
   * again when the files change again). Returns what changed, or null when refused.
   */
  reloadTls(): string[] | null {
    let tls;
    try {
      tls = loadTls(this.ctx.config);
    } catch (err) {
      const where = err instanceof ConfigError ? { file: err.file, line: err.line, reason: err.reason } : {};
      this.ctx.logger.error({ ...where, err: (err as Error).message }, 'TLS files changed but do not load: keeping the running certificates');
      return null;
    }
    const changed: string[] = [];
    this.applySecurity({ tls, hba: this.ctx.hba }, changed);
    this.ctx.logger.info({ changed }, 'TLS files reloaded');
    return changed;
  }

  /**
   * Stops accepting, lets linked clients finish their transaction, and closes each client as it
   * goes idle; past the deadline everything left is closed. Called again during a shutdown, it
   * brings the deadline forward (a second SIGTERM calls stop(0): everything closes now) and
   * returns the same promise.
   */
  stop(deadlineMs = this.ctx.config.settings.shutdownTimeoutMs): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    this.shutdownDeadline = this.stopped === null ? deadline : Math.min(this.shutdownDeadline, deadline);
    this.stopped ??= this.shutDown(deadlineMs);
    return this.stopped;
  }

  private async shutDown(deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const l of this.listeners) l.close();
    this.ctx.logger.info({ clients: this.clients.size, deadlineMs }, 'shutting down');
    this.checkShutdown();
    while (this.clients.size > 0 && Date.now() < this.shutdownDeadline) {
      await new Promise((r) => setTimeout(r, 50));
      this.checkShutdown();
    }
    for (const c of [...this.clients]) c.fatal(new PgRelayError(ErrorCode.ShuttingDown, 'pgrelay is shutting down (shutdown_timeout reached)'));
    this.pause.close();
    this.authQuery.reset();
    this.hints.close();
    this.ctx.registry.closeAll(Disconnect.Shutdown);
    if (this.admin !== null) await this.admin.close();
    this.janitor.stop();
    const pidfile = this.ctx.config.settings.pidfile;
    if (pidfile !== null) rmSync(pidfile, { force: true });
    // Let the Terminate messages reach the servers before the caller exits.
    await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * During a shutdown, closes every client that holds no transaction: idle ones, logins, and admin
   * console sessions (the console that sent SHUTDOWN already has its reply; no console may hold
   * the shutdown up).
   */
  private checkShutdown(): void {
    if (!this.stopping) return;
    for (const c of [...this.clients]) {
      if (c.state === ClientState.idle || c.state === ClientState.login || c.state === ClientState.console) {
        c.fatal(new PgRelayError(ErrorCode.ShuttingDown, 'pgrelay is shutting down'));
      }
    }
  }
}
