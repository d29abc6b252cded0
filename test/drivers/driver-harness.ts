// Shared set-up of the driver matrix: a throwaway PostgreSQL with a small table, pgrelay in
// transaction pooling in front of it with a pool of two (so several clients really move between
// servers), the Debian driver packages installed when missing (as the Patroni tests do), and the
// prepared-statement counters of /metrics.

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startCluster, runAs, type PgCluster } from '../harness/pg-cluster.js';
import { startRelay, type Relay } from '../harness/relay.js';
import type { Settings } from '../../src/config/types.js';
import { spawn } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';
export const JAVA = '/usr/bin/java';
export const PGJDBC_JAR = '/usr/share/java/postgresql.jar';
/** Debian packages the driver matrix runs: psycopg 3 and pgjdbc with a headless JRE. */
export const DRIVER_PACKAGES = ['python3-psycopg', 'libpostgresql-jdbc-java', 'default-jre-headless'];
const ENSURE_DEPS = fileURLToPath(new URL('../../scripts/ensure-deps.sh', import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (or kills it after `timeoutMs`). */
export function runProgram(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function missingDrivers(): Promise<string[]> {
  const missing: string[] = [];
  if (!fs.existsSync(PYTHON) || (await runProgram(PYTHON, ['-c', 'import psycopg'], { timeoutMs: 30_000 })).code !== 0) missing.push('psycopg 3 (python3-psycopg)');
  if (!fs.existsSync(JAVA)) missing.push('java');
  if (!fs.existsSync(PGJDBC_JAR)) missing.push(PGJDBC_JAR);
  return missing;
}

let ready: Promise<void> | undefined;

/** Installs the driver packages when one is missing (root only), or says what to run. */
export function ensureDriverDeps(): Promise<void> {
  ready ??= (async () => {
    let missing = await missingDrivers();
    if (missing.length === 0) return;
    const fix = `bash scripts/ensure-deps.sh ${DRIVER_PACKAGES.join(' ')}`;
    if (runAs().uid === undefined) throw new Error(`the driver tests need ${missing.join(', ')}; as root run: ${fix}`);
    const r = await runProgram('bash', [ENSURE_DEPS, ...DRIVER_PACKAGES], { timeoutMs: 600_000 });
    missing = await missingDrivers();
    if (r.code !== 0 || missing.length > 0) throw new Error(`\`${fix}\` failed (exit ${r.code}); still missing: ${missing.join(', ')}\n${r.stderr.trim()}`);
  })();
  ready.catch(() => {
    ready = undefined;
  });
  return ready;
}

export interface DriverSetup {
  cluster: PgCluster;
  relay: Relay;
  /** A second pgrelay with max_prepared_statements = 3, for the eviction cases. */
  small: Relay;
  stop(): Promise<void>;
}

/** PostgreSQL with table drv(id int primary key, v text) of 100 rows, drv_batch, drv_s.where_am_i, and the two relays. */
export async function startDriverSetup(settings: Partial<Settings> = {}): Promise<DriverSetup> {
  const cluster = await startCluster();
  await cluster.psql(`create table drv (id int primary key, v text); insert into drv select g, 'v' || g from generate_series(1, 100) g; create schema drv_s; create table drv_s.where_am_i (v text); insert into drv_s.where_am_i values ('drv_s'); create table drv_batch (id int, v text)`);
  const common: Partial<Settings> = { defaultPoolSize: 2, queryWaitTimeoutMs: 20_000, ignoreStartupParameters: [], ...settings };
  const relay = await startRelay(cluster, { settings: common, admin: true });
  const small = await startRelay(cluster, { settings: { ...common, maxPreparedStatements: 3 }, admin: true });
  return {
    cluster,
    relay,
    small,
    stop: async () => {
      await relay.stop();
      await small.stop();
      await cluster.destroy();
    },
  };
}

/** A counter of /metrics (NaN when absent). */
export async function metric(relay: Relay, name: string): Promise<number> {
  const text = await (await fetch(`${relay.adminUrl!}/metrics`)).text();
  return Number(new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** The connection string of a relay for libpq-style drivers. */
export function dsn(relay: Relay): string {
  return `host=127.0.0.1 port=${relay.port} user=postgres dbname=postgres`;
}
