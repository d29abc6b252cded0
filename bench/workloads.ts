// The pgbench workloads and one measured run of one of them: pgbench with per-transaction logs,
// from which the average and p99 latency are computed, plus the proxy's CPU time and the host's
// CPU use sampled around it.

import fs from 'node:fs';
import path from 'node:path';
import { pgbench } from '../test/harness/pg-cluster.js';
import { busyPercent, cpuSeconds, hostCpu } from './proc.js';

export interface Workload {
  id: string;
  /** The pgbench options that define it, for tables. */
  label: string;
  clients: number;
  threads: number;
  args: readonly string[];
  /** TPC-B writes: vacuum branches/tellers and empty history before each run (pgbench -n skips it). */
  tpcb: boolean;
  /**
   * TLS on both sides: pgbench with PGSSLMODE=require against the TLS instances of the proxies
   * (client TLS required, server TLS verify-full) and against PostgreSQL directly. Every other
   * workload runs with PGSSLMODE=disable.
   */
  tls?: boolean;
  /**
   * Named prepared statements in transaction pooling (pgbench -M prepared): PgBouncer before 1.21
   * cannot run it (its cells are n/a).
   */
  prepared?: boolean;
}

function select(clients: number): Workload {
  return { id: `select-c${clients}`, label: `-S c=${clients}`, clients, threads: clients >= 16 ? 2 : 1, args: ['-S'], tpcb: false };
}

/** -S through the extended protocol: unnamed statements (parse and plan every time), or prepared once per client. */
function protocolSelect(mode: 'extended' | 'prepared', clients: number): Workload {
  return { id: `${mode}-c${clients}`, label: `-M ${mode} -S c=${clients}`, clients, threads: 2, args: ['-M', mode, '-S'], tpcb: false, ...(mode === 'prepared' ? { prepared: true } : {}) };
}

function tlsSelect(clients: number): Workload {
  return { id: `tls-select-c${clients}`, label: `TLS -S c=${clients}`, clients, threads: 2, args: ['-S'], tpcb: false, tls: true };
}

export const WORKLOADS: readonly Workload[] = [
  select(1),
  select(16),
  select(64),
  select(256),
  select(1000),
  { id: 'tpcb-c16', label: 'TPC-B c=16', clients: 16, threads: 2, args: [], tpcb: true },
  protocolSelect('extended', 16),
  { id: 'connect-c16', label: '-C -S c=16', clients: 16, threads: 2, args: ['-C', '-S'], tpcb: false },
  protocolSelect('extended', 64),
  protocolSelect('prepared', 16),
  protocolSelect('prepared', 64),
  tlsSelect(16),
  tlsSelect(64),
];

export const SHORT_WORKLOADS: readonly string[] = ['select-c16', 'tpcb-c16', 'connect-c16'];

export interface RunSample {
  round: number;
  tps: number | null;
  /** Mean and 99th percentile of the per-transaction latencies in pgbench's --log files. */
  latAvgMs: number | null;
  latP99Ms: number | null;
  /** pgbench's own "latency average" line. */
  pgbenchLatAvgMs: number | null;
  transactions: number | null;
  failed: number | null;
  /** CPU seconds (user + system) the proxy process used while pgbench ran; null for direct. */
  proxyCpuSec: number | null;
  /** Share of both CPUs busy during the run (everything: postgres, proxy, pgbench). */
  hostBusyPct: number;
  wallSec: number;
  error: string | null;
}

export interface RunSpec {
  port: number;
  workload: Workload;
  durationSec: number;
  round: number;
  /** Where pgbench writes its per-transaction logs (removed after parsing). */
  logDir: string;
  /** PID of the proxy whose CPU is measured, or null. */
  proxyPid: number | null;
}

/**
 * Extra seconds of -T for the initial connections: pgbench's clock starts before its clients have
 * connected, and 1,000 backends take seconds to fork. tps is computed without that time, so the
 * measured window stays about `durationSec` long.
 */
export function connectAllowance(clients: number): number {
  return clients >= 256 ? Math.ceil(clients / 200) : 0;
}

export async function runWorkload(s: RunSpec): Promise<RunSample> {
  const tag = `pgbench-${s.workload.id}-${s.port}-${s.round}-${Date.now()}`;
  const args = [
    '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres',
    '-n', // no vacuum through the target: run.ts vacuums directly before TPC-B runs
    '-c', String(s.workload.clients),
    '-j', String(s.workload.threads),
    '-T', String(s.durationSec + connectAllowance(s.workload.clients)),
    '--log', `--log-prefix=${path.join(s.logDir, tag)}`,
    ...s.workload.args,
    'postgres',
  ];
  const cpu0 = s.proxyPid !== null ? cpuSeconds(s.proxyPid) : null;
  const host0 = hostCpu();
  const t0 = Date.now();
  // The timeout covers connection setup at c=1000 and a proxy that stops answering.
  const r = await pgbench(args, { PGCONNECT_TIMEOUT: '30', PGSSLMODE: s.workload.tls === true ? 'require' : 'disable' }, { timeoutMs: (s.durationSec + 120) * 1000 });
  const wallSec = (Date.now() - t0) / 1000;
  const host1 = hostCpu();
  const cpu1 = s.proxyPid !== null ? cpuSeconds(s.proxyPid) : null;
  const lat = readLatencies(s.logDir, tag);
  const sample: RunSample = {
    round: s.round,
    tps: r.tps,
    latAvgMs: lat.avgMs,
    latP99Ms: lat.p99Ms,
    pgbenchLatAvgMs: num(/latency average = ([\d.]+) ms/, r.stdout),
    transactions: r.processed,
    failed: r.failed,
    proxyCpuSec: cpu0 !== null && cpu1 !== null ? round3(cpu1 - cpu0) : null,
    hostBusyPct: Math.round(busyPercent(host0, host1) * 10) / 10,
    wallSec: round3(wallSec),
    error: null,
  };
  if (r.code !== 0 || r.tps === null || !r.processed || (r.failed ?? 0) > 0) {
    const why = r.stderr.trim().split('\n').filter((l) => l !== '').slice(-3).join(' | ');
    const what = r.code === 0 && !r.processed ? `no transaction completed within -T (initial connections took ${num(/initial connection time = ([\d.]+) ms/, r.stdout) ?? '?'} ms)` : why;
    sample.error = `pgbench exit ${r.code}${r.failed ? `, ${r.failed} failed transactions` : ''}: ${what}`.slice(0, 500);
  }
  return sample;
}

/** Mean and p99 of the latency column (µs, the third field) of every log file pgbench wrote for
 * `tag` (one per thread: TAG.PID, TAG.PID.1, ...); the files are deleted afterwards. Lines of
 * failed or skipped transactions carry a word instead of a number and are left out. */
export function readLatencies(dir: string, tag: string): { avgMs: number | null; p99Ms: number | null; count: number } {
  let values = new Float64Array(1 << 16);
  let n = 0;
  let sum = 0;
  for (const f of fs.readdirSync(dir)) {
    if (!f.startsWith(`${tag}.`)) continue;
    const file = path.join(dir, f);
    const text = fs.readFileSync(file, 'latin1');
    fs.rmSync(file, { force: true });
    let pos = 0;
    while (pos < text.length) {
      let eol = text.indexOf('\n', pos);
      if (eol < 0) eol = text.length;
      const a = text.indexOf(' ', pos);
      const b = a < 0 ? -1 : text.indexOf(' ', a + 1);
      const c = b < 0 ? -1 : text.indexOf(' ', b + 1);
      if (c > 0 && c < eol) {
        const us = Number(text.slice(b + 1, c));
        if (Number.isFinite(us)) {
          if (n === values.length) {
            const bigger = new Float64Array(values.length * 2);
            bigger.set(values);
            values = bigger;
          }
          values[n++] = us;
          sum += us;
        }
      }
      pos = eol + 1;
    }
  }
  if (n === 0) return { avgMs: null, p99Ms: null, count: 0 };
  const sorted = values.subarray(0, n).sort();
  const p99 = sorted[Math.max(0, Math.ceil(n * 0.99) - 1)]!;
  return { avgMs: round3(sum / n / 1000), p99Ms: round3(p99 / 1000), count: n };
}

function num(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Median of the non-null values (mean of the middle two for an even count); null if none. */
export function median(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
