// The three things pgbench is pointed at: PostgreSQL itself, PgBouncer and pgrelay. Writes each
// proxy's config with equivalent settings (transaction pooling, pool size 20, trust auth on
// loopback) and starts it as its own process: pgrelay through its real CLI, PgBouncer as `postgres`.
// With `tls`, both proxies get the same TLS on both sides: client TLS required, server TLS
// verify-full against the benchmark's own CA; without it both talk plaintext to PostgreSQL.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, runAs } from '../test/harness/pg-cluster.js';
import { Daemon } from './proc.js';
import { NODE_OPTIONS } from '../src/node-options.js';

export const TargetName = { direct: 'direct', pgbouncer: 'pgbouncer', pgrelay: 'pgrelay' } as const;
export type TargetName = (typeof TargetName)[keyof typeof TargetName];

/** The interleaving order inside every round. */
export const TARGET_ORDER: readonly TargetName[] = [TargetName.direct, TargetName.pgbouncer, TargetName.pgrelay];

export const TARGET_LABEL: Record<TargetName, string> = {
  direct: 'direct PostgreSQL',
  pgbouncer: 'PgBouncer',
  pgrelay: 'pgrelay',
};

/**
 * The node binary that runs pgrelay: PGRELAY_BENCH_NODE, or the one running the bench. The Docker
 * image runs the current LTS, whose TLS path costs less than node 20's; this measures it.
 */
export const PGRELAY_NODE: string = process.env['PGRELAY_BENCH_NODE'] ?? process.execPath;

/**
 * Node options pgrelay is run with: the same as the Docker image's ENTRYPOINT, plus any given in
 * PGRELAY_BENCH_NODE_ARGS (space-separated), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile
 * pgrelay under a workload (node refuses --cpu-prof in NODE_OPTIONS).
 */
export const PGRELAY_NODE_ARGS: readonly string[] = [...NODE_OPTIONS, ...(process.env['PGRELAY_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')];

export interface Target {
  name: TargetName;
  port: number;
  /** The proxy process; null for direct PostgreSQL. */
  daemon: Daemon | null;
}

/** The benchmark's TLS material: the proxies' certificate, and the CA PostgreSQL's certificate is verified with. */
export interface BenchTls {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** The same TLS lines for both proxies (PgBouncer 1.18 reads them with the same meaning). */
function tlsLines(tls: BenchTls | undefined): string {
  if (tls === undefined) return '';
  return [
    'client_tls_sslmode = require',
    `client_tls_cert_file = ${tls.certFile}`,
    `client_tls_key_file = ${tls.keyFile}`,
    'server_tls_sslmode = verify-full',
    `server_tls_ca_file = ${tls.caFile}`,
    '',
  ].join('\n');
}

export interface ProxyOptions {
  /** Directory for configs and logs (readable by the `postgres` user). */
  workDir: string;
  upstreamPort: number;
  poolSize: number;
  maxClientConn: number;
  fdLimit: number;
  /** TLS on both sides; unset = plaintext on both sides. */
  tls?: BenchTls;
  /** pgrelay only: more config lines (after PGRELAY_BENCH_SETTINGS's), separated by ';'. */
  settings?: string;
}

/** How pgrelay's node is started: under another program (valgrind), with a longer wait for its port. */
export interface Launcher {
  /** The command and its arguments, before the node binary. */
  readonly prefix: readonly string[];
  readonly listenTimeoutMs: number;
}

/** PgBouncer's binary, or null when it is not installed. */
export function findPgbouncer(): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];
  for (const d of dirs) {
    if (d === '') continue;
    const p = path.join(d, 'pgbouncer');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

export function pgbouncerVersion(bin: string): string {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

/** Whether a PgBouncer version string ("PgBouncer 1.18.0") names one that tracks prepared statements (1.21+). */
export function pgbouncerTracksPrepared(version: string): boolean {
  const m = /(\d+)\.(\d+)/.exec(version);
  return m !== null && (Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 21));
}

/** Starts PgBouncer in the foreground as the `postgres` user when we are root. */
export async function startPgbouncer(bin: string, o: ProxyOptions): Promise<Target> {
  const dir = path.join(o.workDir, `pgbouncer-${o.tls !== undefined ? 'tls-' : ''}${Date.now()}`);
  fs.mkdirSync(dir);
  const ids = runAs();
  const userlist = path.join(dir, 'userlist.txt');
  // auth_type trust still looks the user up in auth_file; the password is ignored.
  fs.writeFileSync(userlist, '"postgres" ""\n');
  const port = await freePort();
  const ini = path.join(dir, 'pgbouncer.ini');
  fs.writeFileSync(
    ini,
    `[databases]
* = host=127.0.0.1 port=${o.upstreamPort}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${userlist}
pool_mode = transaction
default_pool_size = ${o.poolSize}
max_client_conn = ${o.maxClientConn}
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
log_stats = 0
${pgbouncerTracksPrepared(pgbouncerVersion(bin)) ? 'max_prepared_statements = 200\n' : ''}${tlsLines(o.tls)}`,
  );
  if (ids.uid !== undefined && ids.gid !== undefined) {
    for (const p of [dir, userlist, ini]) fs.chownSync(p, ids.uid, ids.gid);
  }
  const daemon = Daemon.start({
    name: 'PgBouncer',
    cmd: bin,
    args: [ini],
    cwd: dir,
    logFile: path.join(dir, 'pgbouncer.log'),
    ...ids,
    fdLimit: o.fdLimit,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' },
  });
  try {
    await daemon.waitListening(port);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return { name: TargetName.pgbouncer, port, daemon };
}

/**
 * Extra pgrelay.ini lines from PGRELAY_BENCH_SETTINGS (separated by ';'), e.g.
 * `max_prepared_statements = 0`, to measure what one setting costs.
 */
function extraSettings(own = ''): string {
  const v = `${process.env['PGRELAY_BENCH_SETTINGS'] ?? ''};${own}`;
  return v.split(';').map((l) => l.trim()).filter((l) => l !== '').map((l) => `${l}\n`).join('');
}

/** Starts pgrelay through its CLI (`node [NODE_ARGS] dist/main.js CONFIG.ini`) from the repository root. */
export async function startPgrelay(repoRoot: string, o: ProxyOptions, nodeArgs: readonly string[] = PGRELAY_NODE_ARGS, launcher?: Launcher): Promise<Target> {
  const dir = path.join(o.workDir, `pgrelay-${o.tls !== undefined ? 'tls-' : ''}${Date.now()}`);
  fs.mkdirSync(dir);
  const port = await freePort();
  const ini = path.join(dir, 'pgrelay.ini');
  fs.writeFileSync(
    ini,
    `[databases]
* = host=127.0.0.1 port=${o.upstreamPort}

[pgrelay]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
pool_mode = transaction
default_pool_size = ${o.poolSize}
max_client_conn = ${o.maxClientConn}
ignore_startup_parameters = extra_float_digits
log_level = warn
log_connections = 0
log_disconnections = 0
shutdown_timeout = 2
${o.tls === undefined ? 'server_tls_sslmode = disable\n' : tlsLines(o.tls)}${extraSettings(o.settings)}`,
  );
  const daemon = Daemon.start({
    name: 'pgrelay',
    cmd: launcher?.prefix[0] ?? PGRELAY_NODE,
    args: [...(launcher?.prefix.slice(1) ?? []), ...(launcher !== undefined ? [PGRELAY_NODE] : []), ...nodeArgs, path.join(repoRoot, 'dist', 'main.js'), ini],
    cwd: dir,
    logFile: path.join(dir, 'pgrelay.log'),
    fdLimit: o.fdLimit,
  });
  try {
    await daemon.waitListening(port, launcher?.listenTimeoutMs);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return { name: TargetName.pgrelay, port, daemon };
}
