// Throwaway etcd + Patroni clusters on 127.0.0.1 for failover tests: etcd 3.4 and the installed
// Patroni (run through patroni-launcher.py, which adds `before_stop` to Debian's 3.0.2), all as the
// `postgres` user when we are root, in temp dirs removed by destroy() or at process exit.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgBin, freePort, runAs, run as pgRun, type RunOptions as PgRunOptions } from './pg-cluster.js';

export interface PatroniNodeInfo {
  name: string;
  host: '127.0.0.1';
  pgPort: number;
  restPort: number;
  /** http://127.0.0.1:restPort */
  restUrl: string;
  /** The node's own dir: patroni.yml, patroni.log, data/, the unix socket, pgpass. Owned by the
   * postgres user, so a hook may write files here. */
  dir: string;
  dataDir: string;
  /** unix_socket_directories (local connections are trust). */
  socketDir: string;
  /** Patroni's stdout/stderr; PostgreSQL's stderr and hook output land here too. */
  logFile: string;
}

export interface PatroniClusterOptions {
  nodes?: 2 | 3;
  scope?: string;
  /** A command line (split like a shell, not run by one) used for both postgresql.before_stop and
   * postgresql.callbacks (on_start, on_stop, on_restart, on_role_change). Callbacks get
   * `ACTION ROLE SCOPE` appended; before_stop gets no arguments. null: no hook on that node. */
  hook?: (node: PatroniNodeInfo) => string | null;
  /** Extra PostgreSQL parameters for the whole cluster (bootstrap.dcs); they win over ours. */
  pgParameters?: Record<string, string>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Etcd {
  clientUrl: string;
  /** The temp dir (data dir and etcd.log); removed by stop(). */
  dir: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface PatroniPids {
  etcd: number | undefined;
  /** Patroni (python) processes by node name; undefined when not running. */
  patroni: Record<string, number | undefined>;
  /** Postmasters by node name, from postmaster.pid; undefined when none is running. */
  postmaster: Record<string, number | undefined>;
}

type NodeRef = string | PatroniNodeInfo;

const HOST = '127.0.0.1';
const PYTHON = '/usr/bin/python3';
const ETCD = '/usr/bin/etcd';
const PATRONICTL = '/usr/bin/patronictl';
const HAPROXY = '/usr/sbin/haproxy';
// haproxy: the primary Service of the runbook topology (patroni-haproxy.ts).
const PACKAGES = ['patroni', 'etcd-server', 'etcd-client', 'python3-etcd', 'python3-psycopg2', 'haproxy'];
const LAUNCHER = fileURLToPath(new URL('./patroni-launcher.py', import.meta.url));
const ENSURE_DEPS = fileURLToPath(new URL('../../scripts/ensure-deps.sh', import.meta.url));

const SUPERUSER = { user: 'postgres', password: 'pgrelay-super' } as const;
const REPLICATION = { username: 'replicator', password: 'pgrelay-repl' } as const;
const REWIND = { username: 'rewinder', password: 'pgrelay-rewind' } as const;

const ETCD_START_TIMEOUT_MS = 15_000;
const CLUSTER_START_TIMEOUT_MS = 90_000;
// Patroni's own stop can include a before_stop hook (the launcher caps it at 30 s) plus a
// checkpoint and shutdown; past this we SIGKILL it.
const PATRONI_STOP_TIMEOUT_MS = 60_000;
const TRANSITION_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
// patronictl verbs that ask "Are you sure" unless given --force (Patroni 3.0.x)
const PROMPTING_VERBS = new Set(['switchover', 'failover', 'restart', 'reinit', 'reload', 'flush']);

// ---------------------------------------------------------------------------------------------
// Small process and file helpers (pg-cluster.ts keeps its own private; these are the same idea)

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Synchronous sleep, for the process 'exit' handler where no event loop runs. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** True when `pid` is gone or a zombie (an unreaped child, or an orphan in a container whose
 * PID 1 does not reap, still answers kill(pid, 0)). */
export function deadOrZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!deadOrZombie(pid)) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

const haveSetpriv = ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => fs.existsSync(p));

/** Prefix for a daemon's argv: with setpriv, the daemon gets `sig` when this process dies without
 * running its exit hooks (SIGKILL), instead of living on. It is set after spawn's uid/gid switch,
 * which would otherwise clear it. */
function withDeathSignal(sig: NodeJS.Signals, cmd: string, args: string[]): [string, string[]] {
  return haveSetpriv ? ['setpriv', ['--pdeathsig', sig, cmd, ...args]] : [cmd, args];
}

/** Environment for our daemons and clients: nothing from the caller that PostgreSQL or Patroni
 * would read as configuration (PG*, PATRONI_*), English messages, and a HOME we own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('PG') || k.startsWith('PATRONI') || k.startsWith('LC_') || k === 'LANG' || k === 'LANGUAGE') continue;
    env[k] = v;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return { ...env, ...extra };
}

type RunOptions = Omit<PgRunOptions, 'cwd'>;

/** Runs a command to completion (pg-cluster's runner) with Patroni's clean environment by default. */
function run(cmd: string, args: string[], opts: RunOptions): Promise<CommandResult> {
  return pgRun(cmd, args, { ...opts, env: opts.env ?? cleanEnv() });
}

/** A long-running child (etcd, Patroni) writing to a log file. Unref'ed: an abandoned cluster must
 * not keep the test process alive; the exit hook cleans it up. */
interface Daemon {
  child: ChildProcess;
  exited: Promise<void>;
  /** Set once it has exited: "exit code N" / "signal S". */
  exitInfo: string | undefined;
}

function startDaemon(cmd: string, args: string[], opts: { cwd: string; logFile: string; env: NodeJS.ProcessEnv }): Daemon {
  const fd = fs.openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { ...runAs(), cwd: opts.cwd, env: opts.env, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  child.unref();
  const d: Daemon = { child, exited: Promise.resolve(), exitInfo: undefined };
  d.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      d.exitInfo = sig ? `signal ${sig}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (e) => {
      d.exitInfo = `spawn error: ${e.message}`;
      resolve();
    });
  });
  return d;
}

/** Signals a daemon and waits for its exit; SIGKILL after `timeoutMs`. Resolves false if it had to
 * be killed. */
async function stopDaemon(d: Daemon | undefined, sig: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  if (!d || d.exitInfo !== undefined) return true;
  d.child.ref(); // keep the event loop alive while we wait for it
  d.child.kill(sig);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    d.child.kill('SIGKILL');
  }, timeoutMs);
  await d.exited;
  clearTimeout(timer);
  return !killed;
}

/** os.tmpdir(), unless we are root and the postgres user could not reach into it (e.g. a TMPDIR
 * under /root): then /tmp. */
function tmpBase(): string {
  const base = os.tmpdir();
  if (runAs().uid === undefined) return base;
  for (let dir = path.resolve(base); ; dir = path.dirname(dir)) {
    try {
      if ((fs.statSync(dir).mode & 0o001) === 0) return '/tmp';
    } catch {
      return '/tmp';
    }
    if (path.dirname(dir) === dir) return base;
  }
}

/** Hands a file or dir to the user the daemons run as (when we are root); returns the path. */
function chownToDaemonUser(p: string): string {
  const ids = runAs();
  if (ids.uid !== undefined && ids.gid !== undefined) fs.chownSync(p, ids.uid, ids.gid);
  return p;
}

function writeOwnedFile(file: string, text: string, mode: number): void {
  fs.writeFileSync(file, text, { mode });
  chownToDaemonUser(file);
}

function logTail(file: string, lines = 40): string {
  try {
    const all = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return `--- ${file} (tail) ---\n${all.slice(-lines).join('\n')}`;
  } catch {
    return `(no log at ${file})`;
  }
}

/** GET over a fresh connection (no keep-alive socket to hold the event loop or go stale when a
 * Patroni dies). Resolves null when nothing answers in time. */
function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

// ---------------------------------------------------------------------------------------------
// Dependencies: never skipped silently. As root we install what is missing; otherwise we fail
// with the command to run.

let depsReady: Promise<void> | undefined;

async function missingDeps(): Promise<string[]> {
  const missing: string[] = [];
  for (const f of [ETCD, PATRONICTL, PYTHON, HAPROXY]) if (!fs.existsSync(f)) missing.push(f);
  if (fs.existsSync(PYTHON)) {
    const r = await run(PYTHON, ['-c', 'import patroni, etcd, psycopg2'], { timeoutMs: 30_000 });
    if (r.code !== 0) missing.push(`python modules (${r.stderr.trim().split('\n').pop() ?? ''})`);
  }
  return missing;
}

export function ensurePatroniDeps(): Promise<void> {
  depsReady ??= (async () => {
    findPgBin(); // throws a clear message when PostgreSQL itself is missing
    let missing = await missingDeps();
    if (missing.length === 0) return;
    const fix = `bash scripts/ensure-deps.sh ${PACKAGES.join(' ')}`;
    if (runAs().uid === undefined) {
      throw new Error(`Patroni tests need ${missing.join(', ')}; as root run: ${fix}`);
    }
    const r = await run('bash', [ENSURE_DEPS, ...PACKAGES], { env: { ...process.env }, timeoutMs: 600_000 });
    missing = await missingDeps();
    if (r.code !== 0 || missing.length > 0) {
      throw new Error(`\`${fix}\` failed (exit ${r.code}); still missing: ${missing.join(', ')}\n${r.stderr.trim()}`);
    }
  })();
  depsReady.catch(() => {
    depsReady = undefined; // let a later call try again
  });
  return depsReady;
}

// ---------------------------------------------------------------------------------------------
// Registry: everything not yet destroyed, so a crashing test does not leak daemons.

interface Destroyable {
  destroySync(): void;
}

const live = new Set<Destroyable>();
let exitHookInstalled = false;

function register(x: Destroyable): void {
  live.add(x);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: kill, wait briefly, remove dirs. Clusters first, since
    // Patroni needs etcd less than etcd needs nothing.
    process.on('exit', () => {
      const all = [...live];
      for (const x of all) if (x instanceof PatroniCluster) x.destroySync();
      for (const x of all) x.destroySync();
      live.clear();
    });
  }
}

/** Destroys every etcd and Patroni cluster this process started and has not destroyed yet. */
export async function destroyAllPatroni(): Promise<void> {
  const all = [...live];
  await Promise.all(all.filter((x) => x instanceof PatroniCluster).map((c) => (c as PatroniCluster).destroy()));
  await Promise.all(all.filter((x) => x instanceof EtcdServer).map((e) => (e as EtcdServer).stop()));
}

// ---------------------------------------------------------------------------------------------
// etcd

class EtcdServer implements Etcd, Destroyable {
  readonly dir: string;
  readonly logFile: string;
  readonly clientUrl: string;
  private daemon: Daemon | undefined;
  private stopped = false;

  readonly clientPort: number;
  readonly peerPort: number;

  constructor(dir: string, clientPort: number, peerPort: number) {
    this.dir = dir;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.logFile = path.join(dir, 'etcd.log');
    this.clientUrl = `http://${HOST}:${clientPort}`;
    register(this);
  }

  get pid(): number | undefined {
    return this.daemon?.exitInfo === undefined ? this.daemon?.child.pid : undefined;
  }

  async start(): Promise<void> {
    const peerUrl = `http://${HOST}:${this.peerPort}`;
    const args = [
      '--name', 'etcd0',
      '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `etcd0=${peerUrl}`,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      // no metrics/pprof listeners beyond the client URL: loopback only, nothing else bound
    ];
    // SIGKILL on our death: etcd holds nothing we need to flush.
    const [cmd, argv] = withDeathSignal('SIGKILL', ETCD, args);
    this.daemon = startDaemon(cmd, argv, { cwd: this.dir, logFile: this.logFile, env: cleanEnv({ HOME: this.dir }) });
    const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
    for (;;) {
      if (this.daemon.exitInfo !== undefined) {
        throw new Error(`etcd exited during startup (${this.daemon.exitInfo})\n${logTail(this.logFile)}`);
      }
      const r = await httpGet(`${this.clientUrl}/health`, 1000);
      if (r?.status === 200 && /"health"\s*:\s*"true"/.test(r.body)) return;
      if (Date.now() > deadline) throw new Error(`etcd not healthy within ${ETCD_START_TIMEOUT_MS} ms\n${logTail(this.logFile)}`);
      await sleep(POLL_MS);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await stopDaemon(this.daemon, 'SIGTERM', 5000);
    } finally {
      live.delete(this);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  destroySync(): void {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    const pid = this.pid;
    if (pid !== undefined) {
      signal(pid, 'SIGKILL');
      const until = Date.now() + 2000;
      while (!deadOrZombie(pid) && Date.now() < until) sleepSync(20);
    }
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
}

/** etcd 3.4 on free loopback client/peer ports, data in a temp dir, as the postgres user when we
 * are root; resolves once /health says true. */
export async function startEtcd(): Promise<Etcd> {
  await ensurePatroniDeps();
  const dir = chownToDaemonUser(fs.mkdtempSync(path.join(tmpBase(), 'pgrelay-etcd-')));
  const etcd = new EtcdServer(dir, await freePort(), await freePort());
  try {
    await etcd.start();
    return etcd;
  } catch (err) {
    await etcd.stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Patroni configuration

let cachedLocale: string | undefined;

/** C.UTF-8 when this libc has it (Debian does), else C: initdb fails on a missing locale. */
async function initdbLocale(): Promise<string> {
  if (cachedLocale !== undefined) return cachedLocale;
  let names: string[] = [];
  try {
    names = (await run('locale', ['-a'], { timeoutMs: 10_000 })).stdout.split('\n').map((s) => s.trim().toLowerCase());
  } catch {
    // no `locale` binary: fall back to C
  }
  cachedLocale = names.includes('c.utf8') || names.includes('c.utf-8') ? 'C.UTF-8' : 'C';
  return cachedLocale;
}

function patroniConfig(
  scope: string,
  node: PatroniNodeInfo,
  etcd: EtcdServer,
  locale: string,
  hook: string | null,
  pgParameters: Record<string, string>,
): unknown {
  const postgresql: Record<string, unknown> = {
    listen: `${HOST}:${node.pgPort}`,
    connect_address: `${HOST}:${node.pgPort}`,
    data_dir: node.dataDir,
    bin_dir: findPgBin(),
    pgpass: path.join(node.dir, 'pgpass'),
    authentication: {
      superuser: { username: SUPERUSER.user, password: SUPERUSER.password },
      replication: REPLICATION,
      rewind: REWIND,
    },
    // Per-node parameters; PostgreSQL's stderr goes to Patroni's stdout, i.e. node.logFile.
    parameters: {
      unix_socket_directories: node.socketDir,
      logging_collector: 'off',
      log_line_prefix: '%m [%p] ',
    },
    pg_hba: [
      'local all all trust',
      `host replication ${REPLICATION.username} ${HOST}/32 md5`,
      `host all all ${HOST}/32 md5`,
    ],
  };
  if (hook !== null) {
    postgresql.callbacks = { on_start: hook, on_stop: hook, on_restart: hook, on_role_change: hook };
    // Patroni 3.0.2 ignores this key; patroni-launcher.py reads it from the loaded config.
    postgresql.before_stop = hook;
  }
  return {
    scope,
    namespace: '/pgrelay/',
    name: node.name,
    log: { level: 'INFO' },
    restapi: { listen: `${HOST}:${node.restPort}`, connect_address: `${HOST}:${node.restPort}` },
    // etcd 3.4 serves only the v3 API: an `etcd:` section would get 404 forever.
    etcd3: { hosts: [`${HOST}:${etcd.clientPort}`] },
    bootstrap: {
      dcs: {
        ttl: 20,
        loop_wait: 2,
        retry_timeout: 5,
        maximum_lag_on_failover: 1048576,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            wal_log_hints: 'on',
            max_wal_senders: '10',
            max_replication_slots: '10',
            max_connections: '100',
            shared_buffers: '32MB',
            // fsync=off only matters if the machine crashes, which a throwaway cluster does not
            // survive anyway; pg_rewind does not depend on it. synchronous_commit stays on: with
            // it off, a kill -9 of a postmaster could lose acknowledged commits, which would make
            // "no committed write lost" tests fail for the wrong reason. full_page_writes stays on
            // (pg_rewind needs it).
            fsync: 'off',
            ...pgParameters,
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale }, 'data-checksums'],
    },
    postgresql,
    watchdog: { mode: 'off' },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

// ---------------------------------------------------------------------------------------------
// The cluster

interface NodeState {
  info: PatroniNodeInfo;
  configFile: string;
  patroni: Daemon | undefined;
}

export class PatroniCluster implements Destroyable {
  readonly scope: string;
  /** The temp dir holding one dir per node (etcd has its own, see `etcd.dir`). */
  readonly dir: string;
  readonly nodes: PatroniNodeInfo[];
  readonly superuser = { user: SUPERUSER.user, password: SUPERUSER.password } as const;
  readonly etcd: Etcd;

  private readonly state = new Map<string, NodeState>();
  private readonly etcdServer: EtcdServer;
  private destroyed = false;

  /** Use startPatroniCluster(); the constructor only lays out paths. */
  constructor(scope: string, dir: string, etcd: EtcdServer, nodes: PatroniNodeInfo[]) {
    this.scope = scope;
    this.dir = dir;
    this.etcd = etcd;
    this.etcdServer = etcd;
    this.nodes = nodes;
    for (const info of nodes) this.state.set(info.name, { info, configFile: path.join(info.dir, 'patroni.yml'), patroni: undefined });
    register(this);
  }

  private nodeState(ref: NodeRef): NodeState {
    const name = typeof ref === 'string' ? ref : ref.name;
    const s = this.state.get(name);
    if (!s) throw new Error(`no node ${name} in cluster ${this.scope} (nodes: ${this.nodes.map((n) => n.name).join(', ')})`);
    return s;
  }

  node(ref: NodeRef): PatroniNodeInfo {
    return this.nodeState(ref).info;
  }

  configFile(ref: NodeRef): string {
    return this.nodeState(ref).configFile;
  }

  /** Every process the cluster runs, for "nothing left behind" checks. */
  pids(): PatroniPids {
    const patroni: Record<string, number | undefined> = {};
    const postmaster: Record<string, number | undefined> = {};
    for (const { info, patroni: d } of this.state.values()) {
      patroni[info.name] = d && d.exitInfo === undefined ? d.child.pid : undefined;
      postmaster[info.name] = livePostmasterPid(info);
    }
    return { etcd: this.etcd.pid, patroni, postmaster };
  }

  // --- starting and stopping Patroni -----------------------------------------------------------

  /** Starts (again) the node's Patroni through the launcher; resolves once its REST API answers. */
  async startPatroni(ref: NodeRef): Promise<void> {
    if (this.destroyed) throw new Error('cluster was destroyed');
    const s = this.nodeState(ref);
    if (s.patroni && s.patroni.exitInfo === undefined) return;
    const launcher = path.join(this.dir, 'patroni-launcher.py');
    // SIGTERM on our death: Patroni then stops its PostgreSQL, which it started in its own session
    // (so the postmaster would not get a death signal of its own).
    const [cmd, args] = withDeathSignal('SIGTERM', PYTHON, [launcher, s.configFile]);
    s.patroni = startDaemon(cmd, args, {
      cwd: s.info.dir,
      logFile: s.info.logFile,
      env: cleanEnv({ HOME: s.info.dir, LC_ALL: await initdbLocale(), LANG: await initdbLocale(), PYTHONUNBUFFERED: '1' }),
    });
    const d = s.patroni;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (d.exitInfo !== undefined) throw new Error(`Patroni ${s.info.name} exited (${d.exitInfo})\n${logTail(s.info.logFile)}`);
      if ((await httpGet(`${s.info.restUrl}/patroni`, 1000)) !== null) return;
      if (Date.now() > deadline) throw new Error(`Patroni ${s.info.name}: REST API not up within 30 s\n${logTail(s.info.logFile)}`);
      await sleep(POLL_MS);
    }
  }

  /** SIGTERM the node's Patroni (it stops PostgreSQL, running before_stop first) and wait for its
   * exit. A leader's exit hands the lock to a replica. */
  async sigtermPatroni(ref: NodeRef): Promise<void> {
    const s = this.nodeState(ref);
    if (!(await stopDaemon(s.patroni, 'SIGTERM', PATRONI_STOP_TIMEOUT_MS))) {
      throw new Error(`Patroni ${s.info.name} ignored SIGTERM for ${PATRONI_STOP_TIMEOUT_MS} ms and was killed\n${logTail(s.info.logFile)}`);
    }
  }

  /** SIGKILL the node's Patroni: its PostgreSQL keeps running (and stays writable if primary). */
  async kill9Patroni(ref: NodeRef): Promise<void> {
    await stopDaemon(this.nodeState(ref).patroni, 'SIGKILL', 5000);
  }

  /** SIGKILL the node's postmaster (a crash; Patroni restarts it on its next loop). Returns its PID. */
  kill9Postmaster(ref: NodeRef): number {
    const info = this.node(ref);
    const pid = livePostmasterPid(info);
    if (pid === undefined) throw new Error(`no running postmaster on ${info.name} (${info.dataDir}/postmaster.pid)`);
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  // --- patronictl --------------------------------------------------------------------------------

  /** Runs patronictl with `-c <a node's config>` (only scope, namespace and etcd3 are read from
   * it), adding `--force` to the verbs that would otherwise ask for confirmation. stdin is closed,
   * so anything else that prompts fails instead of hanging. */
  async patronictl(args: string[], timeoutMs = 60_000): Promise<CommandResult> {
    const verb = args[0] ?? '';
    const force = PROMPTING_VERBS.has(verb) && !args.includes('--force') ? ['--force'] : [];
    return run(PATRONICTL, ['-c', this.configFile(this.nodes[0]!), ...args, ...force], {
      env: cleanEnv({ LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' }),
      timeoutMs,
    });
  }

  private async patronictlOk(args: string[]): Promise<CommandResult> {
    const r = await this.patronictl(args);
    // patronictl exits 0 on some refusals ("Switchover failed, details: 503, ...", "Failed: restart
    // for member ..."): catch those too, but not "Successfully failed over"
    if (r.code !== 0 || /\b(?:switchover|failover) failed\b|^\s*(?:Failed|Error|Aborted)\b/im.test(r.stdout + r.stderr)) {
      throw new Error(`patronictl ${args.join(' ')} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`.trimEnd());
    }
    return r;
  }

  /** `patronictl switchover` away from the current leader (to `candidate`, or Patroni's choice);
   * resolves once another node holds the leader lock and accepts writes. The old primary is then
   * still rejoining: call waitHealthy() to wait for it. */
  async switchover(candidate?: string): Promise<PatroniNodeInfo> {
    const old = await this.waitForLeader(TRANSITION_TIMEOUT_MS);
    if (candidate !== undefined) this.node(candidate);
    const r = await this.patronictlOk([
      'switchover', this.scope, '--leader', old.name, ...(candidate !== undefined ? ['--candidate', candidate] : []),
    ]);
    return this.waitForPrimary((n) => (candidate !== undefined ? n.name === candidate : n.name !== old.name), TRANSITION_TIMEOUT_MS, r.stdout);
  }

  /** `patronictl failover --candidate`: resolves once the candidate holds the lock and accepts writes. */
  async failover(candidate: string): Promise<PatroniNodeInfo> {
    this.node(candidate);
    const r = await this.patronictlOk(['failover', this.scope, '--candidate', candidate]);
    return this.waitForPrimary((n) => n.name === candidate, TRANSITION_TIMEOUT_MS, r.stdout);
  }

  /** `patronictl restart` of one node (Patroni runs before_stop, stops and starts PostgreSQL);
   * resolves once it accepts connections again, and writes if it was the leader. */
  async restart(ref: NodeRef): Promise<void> {
    const info = this.node(ref);
    const wasLeader = (await this.leader())?.name === info.name;
    const r = await this.patronictlOk(['restart', this.scope, info.name]);
    const deadline = Date.now() + TRANSITION_TIMEOUT_MS;
    for (;;) {
      const state = await this.recoveryState(info);
      if (state !== null && (!wasLeader || state === 'f')) return;
      if (Date.now() > deadline) throw new Error(`${info.name} not back within ${TRANSITION_TIMEOUT_MS} ms after restart\n${r.stdout}\n${logTail(info.logFile)}`);
      await sleep(POLL_MS);
    }
  }

  // --- finding the primary -----------------------------------------------------------------------

  /** The node whose Patroni says it holds the leader lock (`GET /primary` is 200), or null. Says
   * nothing about writability: /primary stays 200 for 1-2 s after that PostgreSQL stopped. */
  async leader(): Promise<PatroniNodeInfo | null> {
    const answers = await Promise.all(this.nodes.map((n) => httpGet(`${n.restUrl}/primary`, 1000)));
    const i = answers.findIndex((a) => a?.status === 200);
    return i >= 0 ? this.nodes[i]! : null;
  }

  /** Waits for a node that both holds the leader lock and accepts writes (either alone is fooled:
   * /primary by its stale second, writability by a primary whose Patroni died). */
  waitForLeader(timeoutMs = TRANSITION_TIMEOUT_MS): Promise<PatroniNodeInfo> {
    return this.waitForPrimary(() => true, timeoutMs);
  }

  private async waitForPrimary(accept: (n: PatroniNodeInfo) => boolean, timeoutMs: number, context = ''): Promise<PatroniNodeInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const candidates = this.nodes.filter(accept);
      const locks = await Promise.all(candidates.map((n) => httpGet(`${n.restUrl}/primary`, 1000)));
      for (let i = 0; i < candidates.length; i++) {
        if (locks[i]?.status === 200 && (await this.recoveryState(candidates[i]!)) === 'f') return candidates[i]!;
      }
      if (Date.now() > deadline) {
        throw new Error(`no ${candidates.map((n) => n.name).join('/')} primary (leader lock + writable) within ${timeoutMs} ms\n${context}\n${this.diagnostics()}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** 't' / 'f' from pg_is_in_recovery(), or null when the node does not answer. */
  private async recoveryState(node: PatroniNodeInfo): Promise<'t' | 'f' | null> {
    try {
      const v = await this.psql(node, 'SELECT pg_is_in_recovery()', 5000);
      return v === 't' || v === 'f' ? v : null;
    } catch {
      return null;
    }
  }

  /** Waits until every node runs, one holds the lock and accepts writes, Patroni reports every
   * member running/streaming, and a WAL record written on the leader has been replayed by every
   * replica over a streaming connection. Returns the leader. */
  async waitHealthy(timeoutMs = TRANSITION_TIMEOUT_MS): Promise<PatroniNodeInfo> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const remaining = Math.max(1000, deadline - Date.now());
      const leader = await this.waitForPrimary(() => true, remaining);
      last = await this.healthProblem(leader);
      if (last === '') return leader;
      if (Date.now() > deadline) throw new Error(`cluster not healthy within ${timeoutMs} ms: ${last}\n${this.diagnostics()}`);
      await sleep(200);
    }
  }

  /** '' when healthy, else what is not. */
  private async healthProblem(leader: PatroniNodeInfo): Promise<string> {
    const r = await httpGet(`${leader.restUrl}/cluster`, 2000);
    if (r?.status !== 200) return `GET ${leader.restUrl}/cluster: ${r?.status ?? 'no answer'}`;
    let members: Array<{ name?: string; role?: string; state?: string }>;
    try {
      members = (JSON.parse(r.body) as { members?: typeof members }).members ?? [];
    } catch {
      return `GET /cluster: not JSON: ${r.body.slice(0, 200)}`;
    }
    for (const n of this.nodes) {
      const m = members.find((x) => x.name === n.name);
      if (!m) return `${n.name} not in /cluster`;
      // 'running' in 3.0.x; 4.x reports replicas as 'streaming'
      if (m.state !== 'running' && m.state !== 'streaming') return `${n.name} is ${m.state}`;
      if ((n.name === leader.name) !== (m.role === 'leader')) return `${n.name} has role ${m.role}`;
    }
    // A real write on the leader (a WAL record, not visible in any table) must reach every replica.
    let lsn: string;
    try {
      lsn = await this.psql(leader, "SELECT pg_logical_emit_message(false, 'pgrelay-harness', 'probe')", 5000);
    } catch (e) {
      return `probe write on ${leader.name}: ${(e as Error).message}`;
    }
    const until = Date.now() + 10_000;
    for (const n of this.nodes.filter((x) => x.name !== leader.name)) {
      for (;;) {
        let v = '';
        try {
          v = await this.psql(
            n,
            `SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn AND ` +
              `EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')`,
            5000,
          );
        } catch {
          // not answering yet
        }
        if (v === 't') break;
        if (Date.now() > until) return `${n.name} has not replayed ${lsn} over streaming replication`;
        await sleep(POLL_MS);
      }
    }
    return '';
  }

  // --- SQL -----------------------------------------------------------------------------------------

  /** Runs SQL with `psql -XAtq` as the superuser over the node's unix socket (trust) and resolves
   * with its output minus the trailing newline; rejects on any error. */
  async psql(ref: NodeRef, sql: string, timeoutMs = 60_000): Promise<string> {
    const info = this.node(ref);
    const args = [
      '-X', '-A', '-t', '-q', '-w', '-v', 'ON_ERROR_STOP=1',
      '-h', info.socketDir, '-p', String(info.pgPort), '-U', SUPERUSER.user, '-d', 'postgres', '-f', '-',
    ];
    const r = await run(path.join(findPgBin(), 'psql'), args, {
      env: cleanEnv({ PGCONNECT_TIMEOUT: String(Math.max(2, Math.ceil(timeoutMs / 2000))), PGCLIENTENCODING: 'UTF8' }),
      input: sql,
      timeoutMs,
    });
    if (r.code !== 0) throw new Error(`psql on ${info.name} (port ${info.pgPort}) failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout.replace(/\n$/, '');
  }

  // --- teardown ------------------------------------------------------------------------------------

  /** SIGTERM every Patroni and wait (each stops its PostgreSQL), `pg_ctl stop -m immediate` any
   * postmaster left (a SIGKILLed Patroni leaves its postmaster running), stop etcd, remove the dirs. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await Promise.all([...this.state.values()].map((s) => stopDaemon(s.patroni, 'SIGTERM', PATRONI_STOP_TIMEOUT_MS)));
      await Promise.all(this.nodes.map((n) => stopPostmaster(n)));
    } finally {
      live.delete(this);
      await this.etcdServer.stop();
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** The synchronous variant for the process 'exit' hook: no grace, just nothing left behind. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    const pids: number[] = [];
    for (const { patroni } of this.state.values()) {
      const pid = patroni && patroni.exitInfo === undefined ? patroni.child.pid : undefined;
      // SIGKILL, not SIGTERM: a graceful Patroni stop takes seconds and may run a hook
      if (pid !== undefined) {
        signal(pid, 'SIGKILL');
        pids.push(pid);
      }
    }
    const until = Date.now() + 2000;
    while (pids.some((p) => !deadOrZombie(p)) && Date.now() < until) sleepSync(20);
    const postmasters: number[] = [];
    for (const n of this.nodes) {
      const pid = livePostmasterPid(n);
      if (pid !== undefined) {
        signal(pid, 'SIGQUIT'); // immediate shutdown: the postmaster takes its backends down
        postmasters.push(pid);
      }
    }
    const until2 = Date.now() + 5000;
    while (postmasters.some((p) => !deadOrZombie(p)) && Date.now() < until2) sleepSync(20);
    for (const p of postmasters) if (!deadOrZombie(p)) signal(p, 'SIGKILL');
    this.etcdServer.destroySync();
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }

  /** Tails of every node's log, for error messages. */
  diagnostics(): string {
    return this.nodes.map((n) => logTail(n.logFile, 25)).join('\n');
  }
}

/** The postmaster PID from postmaster.pid, when that process is alive. */
function livePostmasterPid(node: PatroniNodeInfo): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(node.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && !deadOrZombie(pid) ? pid : undefined;
}

async function stopPostmaster(node: PatroniNodeInfo): Promise<void> {
  const pid = livePostmasterPid(node);
  if (pid === undefined) return;
  try {
    await run(path.join(findPgBin(), 'pg_ctl'), ['stop', '-D', node.dataDir, '-m', 'immediate', '-w', '-t', '20'], {
      asPostgres: true,
      timeoutMs: 30_000,
    });
  } catch {
    // fall through to SIGKILL
  }
  if (!(await waitDead(pid, 5000))) signal(pid, 'SIGKILL');
  await waitDead(pid, 5000);
}

/** An etcd and 2 or 3 Patroni nodes on loopback. node0 is started first and becomes the leader;
 * the others join as streaming replicas. Resolves once waitHealthy() holds. Destroy it with
 * `t.teardown(() => cluster.destroy())`. */
export async function startPatroniCluster(opts: PatroniClusterOptions = {}): Promise<PatroniCluster> {
  await ensurePatroniDeps();
  const count = opts.nodes ?? 2;
  const scope = opts.scope ?? 'pgrelay';
  const locale = await initdbLocale();
  const etcd = (await startEtcd()) as EtcdServer;
  let dir: string | undefined;
  let cluster: PatroniCluster | undefined;
  try {
    dir = chownToDaemonUser(fs.mkdtempSync(path.join(tmpBase(), 'pgrelay-patroni-')));
    const nodes: PatroniNodeInfo[] = [];
    for (let i = 0; i < count; i++) {
      const nodeDir = path.join(dir, `node${i}`);
      fs.mkdirSync(nodeDir, { mode: 0o700 });
      chownToDaemonUser(nodeDir);
      const restPort = await freePort();
      nodes.push({
        name: `node${i}`,
        host: HOST,
        pgPort: await freePort(),
        restPort,
        restUrl: `http://${HOST}:${restPort}`,
        dir: nodeDir,
        dataDir: path.join(nodeDir, 'data'),
        socketDir: nodeDir,
        logFile: path.join(nodeDir, 'patroni.log'),
      });
    }
    cluster = new PatroniCluster(scope, dir, etcd, nodes);
    // A copy next to the configs: the postgres user may not be able to read the source tree.
    writeOwnedFile(path.join(dir, 'patroni-launcher.py'), fs.readFileSync(LAUNCHER, 'utf8'), 0o644);
    for (const n of nodes) {
      const config = patroniConfig(scope, n, etcd, locale, opts.hook ? opts.hook(n) : null, opts.pgParameters ?? {});
      // JSON is YAML, and quoting every string sidesteps YAML 1.1's `on`/`off` booleans.
      writeOwnedFile(cluster.configFile(n), `${JSON.stringify(config, null, 2)}\n`, 0o600);
    }
    const deadline = Date.now() + CLUSTER_START_TIMEOUT_MS;
    // node0 alone first, so the leader is predictable; the others would only wait for it anyway.
    await cluster.startPatroni(nodes[0]!);
    await cluster.waitForLeader(deadline - Date.now());
    await Promise.all(nodes.slice(1).map((n) => cluster!.startPatroni(n)));
    await cluster.waitHealthy(Math.max(1000, deadline - Date.now()));
    return cluster;
  } catch (err) {
    if (cluster) await cluster.destroy();
    else {
      await etcd.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
    throw err;
  }
}
