// Throwaway PostgreSQL clusters for integration tests: initdb into a temp dir, run `postgres`
// as our own child (so we hold its PID and can SIGINT/SIGQUIT/SIGKILL it), standbys via
// pg_basebackup, and cleanup that also runs when a test crashes. Plus psql/pgbench wrappers.

import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export type AuthMethod = 'trust' | 'md5' | 'scram-sha-256';
export type StopMode = 'fast' | 'immediate';

export interface ClusterUser {
  name: string;
  password: string;
  superuser?: boolean;
  /** How the password is stored (password_encryption). Defaults to the cluster's auth when it
   * is md5/scram-sha-256, else scram-sha-256. An md5 hba line also accepts scram-stored
   * passwords (the server then runs SCRAM), so one md5 cluster can host both kinds. */
  encryption?: 'md5' | 'scram-sha-256';
}

export interface ClusterOptions {
  auth?: AuthMethod;
  users?: ClusterUser[];
  /** Extra postgresql.conf settings; they win over the harness defaults. */
  settings?: Record<string, string>;
  /** Extra pg_hba.conf lines, placed before the harness's own (first match wins). */
  hba?: string[];
  /** wal_level=replica, wal senders and a replication hba line, so basebackupStandby() works. */
  replication?: boolean;
}

export interface ConnectOptions {
  user?: string;
  password?: string;
  database?: string;
}

export interface PsqlOptions extends ConnectOptions {
  timeoutMs?: number;
}

export interface PgbenchResult {
  code: number;
  stdout: string;
  stderr: string;
  tps: number | null;
  failed: number | null;
  processed: number | null;
}

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Binaries and identities

let cachedBin: string | undefined;

/** The bin dir of the newest installed PostgreSQL. */
export function findPgBin(): string {
  if (cachedBin !== undefined) return cachedBin;
  const root = '/usr/lib/postgresql';
  let versions: number[] = [];
  try {
    versions = fs
      .readdirSync(root)
      .filter((d) => /^\d+(\.\d+)?$/.test(d))
      .filter((d) => fs.existsSync(path.join(root, d, 'bin', 'postgres')) && fs.existsSync(path.join(root, d, 'bin', 'initdb')))
      .map(Number)
      .sort((a, b) => b - a);
  } catch {
    // no Debian layout; fall through to pg_config
  }
  if (versions.length > 0) {
    cachedBin = path.join(root, String(versions[0]), 'bin');
    return cachedBin;
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dir && fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'))) {
      cachedBin = dir;
      return dir;
    }
  } catch {
    // no pg_config either
  }
  throw new Error(
    'no PostgreSQL server binaries found (looked in /usr/lib/postgresql/<N>/bin and `pg_config --bindir`); ' +
      'run `bash scripts/ensure-deps.sh` as root, or `apt-get install postgresql`',
  );
}

function bin(name: string): string {
  return path.join(findPgBin(), name);
}

let cachedRunAs: { uid?: number; gid?: number } | undefined;

/** spawn() options that make a child run as the `postgres` OS user when we are root (the server
 * refuses to run as root); empty (run as ourselves) otherwise. */
export function runAs(): { uid?: number; gid?: number } {
  if (cachedRunAs !== undefined) return cachedRunAs;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    cachedRunAs = {};
    return cachedRunAs;
  }
  // os.userInfo() only describes the current user, so read the passwd database directly.
  let passwd = '';
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    // handled below
  }
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  const fields = line?.split(':');
  const uid = Number(fields?.[2]);
  const gid = Number(fields?.[3]);
  if (!line || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(
      'running as root but there is no `postgres` OS user to run the server as; installing the ' +
        'Debian postgresql package creates it (bash scripts/ensure-deps.sh)',
    );
  }
  cachedRunAs = { uid, gid };
  return cachedRunAs;
}

/** Environment for PostgreSQL binaries: no stray PG* variables from the caller (PGHOST,
 * PGSSLMODE, ...) and English messages, since we grep the server log. */
function pgEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG') && k !== 'LC_ALL' && k !== 'LANG' && k !== 'LANGUAGE') env[k] = v;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// Process helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  asPostgres?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs: number;
}

/** Runs a command to completion, bounded by a timeout (SIGKILL, then reject). */
export function run(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      ...(opts.asPostgres ? runAs() : {}),
      cwd: opts.cwd ?? os.tmpdir(),
      env: opts.env ?? pgEnv(),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(cmd)}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) {
        reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: timed out after ${opts.timeoutMs} ms\n${stderr}${stdout}`.trimEnd()));
        return;
      }
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {
        // the process may exit before reading everything; its exit code tells the story
      });
      child.stdin!.end(opts.input);
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Synchronous sleep, for the process 'exit' handler where no event loop runs. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** True when `pid` is gone or a zombie (our exited-but-unreaped child looks alive to kill(0)). */
function deadOrZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // state is the field after the parenthesised command name, which may itself contain spaces
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

let setprivChecked: boolean | undefined;
function haveSetpriv(): boolean {
  if (setprivChecked === undefined) {
    setprivChecked = ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => fs.existsSync(p));
  }
  return setprivChecked;
}

// ---------------------------------------------------------------------------------------------
// Ports and temp dirs

/** A currently free TCP port on 127.0.0.1 (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read the bound port'))));
    });
  });
}

/** os.tmpdir(), unless we are root and the postgres user could not reach into it (e.g. a
 * TMPDIR under /root): then /tmp. */
function tmpBase(): string {
  const base = os.tmpdir();
  if (runAs().uid === undefined) return base;
  let dir = path.resolve(base);
  for (;;) {
    try {
      if ((fs.statSync(dir).mode & 0o001) === 0) return '/tmp';
    } catch {
      return '/tmp';
    }
    const parent = path.dirname(dir);
    if (parent === dir) return base;
    dir = parent;
  }
}

function makeClusterDir(): string {
  const dir = fs.mkdtempSync(path.join(tmpBase(), 'pgrelay-pg-'));
  const ids = runAs();
  if (ids.uid !== undefined && ids.gid !== undefined) fs.chownSync(dir, ids.uid, ids.gid);
  return dir;
}

function quoteConf(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

// ---------------------------------------------------------------------------------------------
// Registry: every cluster not yet destroyed, so a crashing test does not leak servers.

const live = new Set<PgCluster>();
let exitHookInstalled = false;

function register(c: PgCluster): void {
  live.add(c);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: signal, wait briefly for the postmaster, remove dirs.
    process.on('exit', () => {
      for (const cluster of live) cluster.destroySync();
      live.clear();
    });
  }
}

/** Destroys every cluster this process created and has not destroyed yet. */
export async function destroyAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.destroy()));
}

// ---------------------------------------------------------------------------------------------
// The cluster

export class PgCluster {
  readonly host = HOST;
  /** The temp dir holding data/, the unix socket and server.log. */
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  port: number;
  readonly options: ClusterOptions;

  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private destroyed = false;

  /** Use startCluster() / basebackupStandby(); the constructor only lays out paths. */
  constructor(dir: string, port: number, options: ClusterOptions) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.socketDir = dir;
    this.logFile = path.join(dir, 'server.log');
    this.port = port;
    this.options = options;
    register(this);
  }

  /** PID of the running postmaster; undefined while stopped. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  connectionString(opts: ConnectOptions = {}): string {
    const user = encodeURIComponent(opts.user ?? SUPERUSER);
    const pass = opts.password !== undefined ? `:${encodeURIComponent(opts.password)}` : '';
    const db = encodeURIComponent(opts.database ?? 'postgres');
    return `postgresql://${user}${pass}@${HOST}:${this.port}/${db}`;
  }

  /** Runs SQL through `psql -XAtq` (statements one by one, stopping at the first error) and
   * resolves with its output minus the trailing newline. Without a password it connects via
   * the unix socket, which is always trust; with one, over TCP so the hba auth applies. */
  async psql(sql: string, opts: PsqlOptions = {}): Promise<string> {
    const args = [
      '-X', '-A', '-t', '-q', '-w',
      '-v', 'ON_ERROR_STOP=1',
      '-h', opts.password !== undefined ? HOST : this.socketDir,
      '-p', String(this.port),
      '-U', opts.user ?? SUPERUSER,
      '-d', opts.database ?? 'postgres',
      '-f', '-',
    ];
    const env = pgEnv({ PGCLIENTENCODING: 'UTF8', PGCONNECT_TIMEOUT: '10' });
    if (opts.password !== undefined) env.PGPASSWORD = opts.password;
    const r = await run(bin('psql'), args, { env, input: sql, timeoutMs: opts.timeoutMs ?? 60_000 });
    if (r.code !== 0) {
      throw new Error(`psql failed (exit ${r.code}) on port ${this.port}: ${r.stderr.trim() || r.stdout.trim()}`);
    }
    return r.stdout.replace(/\n$/, '');
  }

  /** Starts the server (again) on the same port and data dir and waits until it accepts
   * connections. */
  async start(): Promise<void> {
    if (this.destroyed) throw new Error('cluster was destroyed');
    if (this.child?.killed) {
      // stop() did not await it (kill9): wait for the old postmaster's exit before replacing it
      this.child.ref();
      await this.exited;
    }
    if (this.child) return;
    // After kill9() the old postmaster's backends may linger a moment, holding the shared
    // memory segment; the new postmaster then refuses to start. They notice postmaster death
    // quickly, so retry for a while.
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await this.spawnAndWait(deadline);
        return;
      } catch (err) {
        const retry = /pre-existing shared memory block|lock file .* already exists/i.test((err as Error).message);
        if (!retry || Date.now() > deadline - 1000) throw err;
        await sleep(250);
      }
    }
  }

  private async spawnAndWait(deadline: number): Promise<void> {
    const logStart = fileSize(this.logFile);
    const fd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const postgres = bin('postgres');
      // setpriv --pdeathsig: if the test process dies without running its exit hooks (SIGKILL,
      // an uncaught signal), the postmaster gets SIGQUIT instead of living on forever. The
      // setting survives exec because postgres is not setuid, and it is set after spawn's
      // uid/gid switch (a credential change would clear it).
      const [cmd, args] = haveSetpriv()
        ? ['setpriv', ['--pdeathsig', 'SIGQUIT', postgres, '-D', this.dataDir]]
        : [postgres, ['-D', this.dataDir]];
      child = spawn(cmd, args as string[], {
        ...runAs(),
        cwd: this.dir,
        env: pgEnv(),
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    // An abandoned cluster must not keep the test process alive; the exit hook cleans it up.
    child.unref();
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        if (this.child === child) this.child = undefined;
        resolve();
      });
      child.once('error', (e) => {
        exitInfo = `spawn error: ${e.message}`;
        if (this.child === child) this.child = undefined;
        resolve();
      });
    });

    for (;;) {
      if (exitInfo !== undefined) {
        throw new Error(`postgres on port ${this.port} exited during startup (${exitInfo})\n${this.logTail(30, logStart)}`);
      }
      const r = await run(bin('pg_isready'), ['-q', '-h', HOST, '-p', String(this.port), '-U', SUPERUSER, '-d', 'postgres', '-t', '2'], {
        timeoutMs: 5000,
      });
      if (r.code === 0 && exitInfo === undefined) return;
      if (Date.now() > deadline) {
        await this.stop('immediate');
        throw new Error(`postgres on port ${this.port} did not accept connections within ${START_TIMEOUT_MS} ms\n${this.logTail(30, logStart)}`);
      }
      await sleep(100);
    }
  }

  /** fast = SIGINT (abort transactions, checkpoint, exit); immediate = SIGQUIT (no checkpoint,
   * crash recovery on the next start). Resolves once the postmaster has exited. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    const child = this.child;
    if (!child) {
      await this.exited;
      return;
    }
    child.ref(); // keep the event loop alive while we wait for it
    child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL the postmaster, like a machine crash (the backends notice and exit on their own). */
  kill9(): void {
    this.child?.kill('SIGKILL');
  }

  /** `pg_ctl promote`: ends recovery on a standby; resolves when it accepts writes. */
  async promote(): Promise<void> {
    const r = await run(bin('pg_ctl'), ['promote', '-D', this.dataDir, '-w', '-t', '30'], {
      asPostgres: true,
      cwd: this.dir,
      timeoutMs: 40_000,
    });
    if (r.code !== 0) throw new Error(`pg_ctl promote failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }

  /** A streaming standby of this cluster (pg_basebackup -R) on a new free port, started and
   * accepting read-only connections. Needs `replication: true` here. */
  async basebackupStandby(): Promise<PgCluster> {
    if (!this.options.replication) throw new Error('basebackupStandby needs a primary started with { replication: true }');
    const dir = makeClusterDir();
    const standby = new PgCluster(dir, await freePort(), this.options);
    try {
      const r = await run(
        bin('pg_basebackup'),
        ['-h', HOST, '-p', String(this.port), '-U', SUPERUSER, '-D', standby.dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync', '-w'],
        { asPostgres: true, cwd: dir, timeoutMs: 120_000 },
      );
      fs.appendFileSync(standby.logFile, r.stdout + r.stderr);
      if (r.code !== 0) throw new Error(`pg_basebackup failed (exit ${r.code}): ${r.stderr.trim()}`);
      // The copied postgresql.conf carries the primary's port and socket dir; later lines win.
      fs.appendFileSync(
        path.join(standby.dataDir, 'postgresql.conf'),
        `\n# pgrelay test harness: standby overrides\nport = ${standby.port}\nunix_socket_directories = ${quoteConf(standby.socketDir)}\nhot_standby = on\n`,
      );
      await standby.start();
      return standby;
    } catch (err) {
      await standby.destroy();
      throw err;
    }
  }

  /** Stops the server (immediately: the data is thrown away) and removes the temp dir. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      await this.stop('immediate');
    } finally {
      live.delete(this);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** The synchronous variant for the process 'exit' hook. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    const pid = this.child?.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGQUIT');
        const until = Date.now() + 5000;
        while (!deadOrZombie(pid) && Date.now() < until) sleepSync(20);
        if (!deadOrZombie(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }

  /** The last `lines` lines of the server log (optionally only what was written after byte
   * offset `from`), for error messages. */
  logTail(lines = 30, from = 0): string {
    try {
      const text = fs.readFileSync(this.logFile, 'utf8').slice(from);
      const all = text.trimEnd().split('\n');
      return `--- ${this.logFile} (tail) ---\n${all.slice(-lines).join('\n')}`;
    } catch {
      return `(no server log at ${this.logFile})`;
    }
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// startCluster

function serverConf(port: number, socketDir: string, opts: ClusterOptions): string {
  const settings: Record<string, string> = {
    listen_addresses: HOST,
    port: String(port),
    unix_socket_directories: socketDir,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    shared_buffers: '32MB',
    huge_pages: 'off',
    // stderr is the server.log file we hand the postmaster; no collector, no rotation
    logging_collector: 'off',
    log_destination: 'stderr',
    log_min_messages: 'warning',
    log_line_prefix: '%m [%p] ',
  };
  if (opts.replication) {
    settings.wal_level = 'replica';
    settings.max_wal_senders = '10';
    settings.max_replication_slots = '10';
    settings.hot_standby = 'on';
  }
  Object.assign(settings, opts.settings ?? {});
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${quoteConf(v)}`);
  return `\n# pgrelay test harness\n${lines.join('\n')}\n`;
}

function hbaConf(opts: ClusterOptions): string {
  const auth = opts.auth ?? 'trust';
  const lines = [
    '# pgrelay test harness',
    ...(opts.hba ?? []),
    // the harness administers the cluster over the unix socket (psql without a password)
    'local all all trust',
    'local replication all trust',
    ...(opts.replication ? [`host replication all ${HOST}/32 trust`] : []),
    `host all all ${HOST}/32 ${auth}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** initdb + start a new cluster on a free loopback port; creates the users. Destroy it with
 * `t.teardown(() => cluster.destroy())`. */
export async function startCluster(opts: ClusterOptions = {}): Promise<PgCluster> {
  const dir = makeClusterDir();
  let cluster: PgCluster | undefined;
  try {
    const initdb = await run(
      bin('initdb'),
      ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', SUPERUSER, '--no-sync', '-E', 'UTF8', '--locale=C'],
      { asPostgres: true, cwd: dir, timeoutMs: 120_000 },
    );
    fs.writeFileSync(path.join(dir, 'initdb.log'), initdb.stdout + initdb.stderr);
    if (initdb.code !== 0) throw new Error(`initdb failed (exit ${initdb.code}):\n${initdb.stderr.trim() || initdb.stdout.trim()}`);

    cluster = new PgCluster(dir, await freePort(), opts);
    const confFile = path.join(cluster.dataDir, 'postgresql.conf');
    const baseConf = fs.readFileSync(confFile, 'utf8');
    // hba is written before the first start rather than reloaded afterwards: pg_reload_conf()
    // only signals the postmaster, so a connection right after it could still see the old file.
    fs.writeFileSync(path.join(cluster.dataDir, 'pg_hba.conf'), hbaConf(opts));

    // Another process may take the port between freePort() and the bind; pick another then.
    for (let attempt = 1; ; attempt++) {
      fs.writeFileSync(confFile, baseConf + serverConf(cluster.port, cluster.socketDir, opts));
      try {
        await cluster.start();
        break;
      } catch (err) {
        if (attempt >= 3 || !/could not (bind|create listen socket)|Address already in use/i.test((err as Error).message)) throw err;
        cluster.port = await freePort();
      }
    }

    if (opts.users?.length) {
      const existing = new Set((await cluster.psql('SELECT rolname FROM pg_roles')).split('\n'));
      const defaultEnc = opts.auth === 'md5' || opts.auth === 'scram-sha-256' ? opts.auth : 'scram-sha-256';
      const sql = opts.users
        .map((u) => {
          const enc = u.encryption ?? defaultEnc;
          const verb = existing.has(u.name) ? 'ALTER' : 'CREATE';
          return (
            `SET password_encryption = ${quoteLiteral(enc)};\n` +
            `${verb} ROLE ${quoteIdent(u.name)} LOGIN ${u.superuser ? 'SUPERUSER' : 'NOSUPERUSER'} PASSWORD ${quoteLiteral(u.password)};`
          );
        })
        .join('\n');
      await cluster.psql(sql);
    }
    return cluster;
  } catch (err) {
    if (cluster) await cluster.destroy();
    else fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// pgbench

function num(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parses pgbench's closing summary; null for whatever it did not print. */
export function parsePgbenchSummary(stdout: string): Pick<PgbenchResult, 'tps' | 'failed' | 'processed'> {
  return {
    // "number of transactions actually processed: 1000/1000" (-t) or ": 5123" (-T)
    processed: num(/number of transactions actually processed: (\d+)/, stdout),
    // "number of failed transactions: 0 (0.000%)" (PostgreSQL 15+)
    failed: num(/number of failed transactions: (\d+)/, stdout),
    // 15+: "tps = X (without initial connection time)"; before 14: "(excluding connections establishing)"
    tps:
      num(/tps = ([\d.]+) \(without initial connection time\)/, stdout) ??
      num(/tps = ([\d.]+) \(excluding connections establishing\)/, stdout) ??
      num(/tps = ([\d.]+)/, stdout),
  };
}

/** Runs the pgbench of findPgBin() (as the current user) and parses its summary. Rejects only
 * if it cannot be run or exceeds `timeoutMs`; a failing run resolves with its exit code. */
export async function pgbench(
  args: string[],
  env: Record<string, string> = {},
  opts: { timeoutMs?: number } = {},
): Promise<PgbenchResult> {
  const r = await run(bin('pgbench'), args, {
    env: { ...process.env, LC_ALL: 'C', ...env },
    timeoutMs: opts.timeoutMs ?? 180_000,
  });
  return { ...r, ...parsePgbenchSummary(r.stdout) };
}
