// Before/after comparison of one change to pgrelay: builds another revision in a scratch git
// worktree, then runs pgbench against PgBouncer, pgrelay at that revision and pgrelay as it is
// in this checkout, interleaved in rounds on one PostgreSQL. Prints tps, p99 and proxy CPU per
// transaction with the after/before ratio. Usage: npx tsx bench/ab.ts --base REV (see --help).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { destroyAll, pgbench, runAs, startCluster } from '../test/harness/pg-cluster.js';
import { stopAllDaemons } from './proc.js';
import { findPgbouncer, PGRELAY_NODE_ARGS, startPgbouncer, startPgrelay } from './targets.js';
import type { Target } from './targets.js';
import { median, runWorkload, WORKLOADS } from './workloads.js';
import type { RunSample, Workload } from './workloads.js';
import { buildCheckout, buildRevision, REPO } from './worktree.js';

const USAGE = `Usage: npx tsx bench/ab.ts --base REV [options]

  --base REV         git revision to compare against (built in a scratch worktree)
  --rounds N         rounds (default 3)
  --duration S       seconds per pgbench run (default 10)
  --workloads A,B    workload ids (default select-c16,select-c64,select-c256)
  --scale N          pgbench -i scale (default 10)
  --rate TPS         run pgbench at a fixed rate (-R): every target gets the same load, and
                     proxy CPU µs/tx compares without the noise of a saturated box
  --before-node-args "A B"  node options for the "before" pgrelay (default: the image's)
  --after-node-args "A B"   node options for the "after" pgrelay (default: the image's); with
                     --base HEAD this measures a node option alone
  --fresh            start both pgrelays anew (and warm them up) every round: how well V8
                     optimizes the forwarding path can differ from one process to the next by
                     several percent of its CPU, which one process per target would carry into
                     every round
`;

function log(msg: string): void {
  process.stderr.write(`ab: ${msg}\n`);
}

function nodeArgsLabel(args: readonly string[]): string {
  return args.length > 0 ? ` (node ${args.join(' ')})` : '';
}

function fmt(x: number | null, digits = 0): string {
  return x === null ? 'n/a' : x.toFixed(digits);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      workloads: { type: 'string', default: 'select-c16,select-c64,select-c256' },
      scale: { type: 'string', default: '10' },
      rate: { type: 'string' },
      'before-node-args': { type: 'string' },
      'after-node-args': { type: 'string' },
      fresh: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.base === undefined) {
    process.stdout.write(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const rounds = Number(values.rounds);
  const duration = Number(values.duration);
  const rate = values.rate === undefined ? null : Number(values.rate);
  if (rate !== null && !(rate > 0)) throw new Error(`--rate: expected a positive number, got ${values.rate}`);
  const workloads: Workload[] = values.workloads.split(',').map((id) => {
    const w = WORKLOADS.find((x) => x.id === id.trim());
    if (w === undefined) throw new Error(`unknown workload ${id}`);
    return rate === null ? w : { ...w, label: `${w.label} -R ${rate}`, args: [...w.args, '-R', String(rate)] };
  });
  const splitArgs = (v: string | undefined): readonly string[] => (v === undefined ? PGRELAY_NODE_ARGS : v.split(' ').filter((a) => a !== ''));
  const beforeArgs = splitArgs(values['before-node-args']);
  const afterArgs = splitArgs(values['after-node-args']);
  const bouncerBin = findPgbouncer();
  if (bouncerBin === null) throw new Error('pgbouncer is not installed (npm run deps -- pgbouncer)');
  const after = buildCheckout();
  const base = buildRevision(values.base);
  const ids = runAs();
  const workDir = fs.mkdtempSync(path.join(ids.uid !== undefined ? '/tmp' : os.tmpdir(), 'pgrelay-ab-work-'));
  if (ids.uid !== undefined && ids.gid !== undefined) fs.chownSync(workDir, ids.uid, ids.gid);
  fs.mkdirSync(path.join(workDir, 'logs'));
  try {
    const maxClients = Math.max(...workloads.map((w) => w.clients));
    const cluster = await startCluster({ settings: { max_connections: '200', shared_buffers: '256MB' } });
    const init = await pgbench(['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', values.scale, '-q', 'postgres'], {}, { timeoutMs: 900_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await cluster.psql('VACUUM ANALYZE');
    const opts = { workDir, upstreamPort: cluster.port, poolSize: 20, maxClientConn: maxClients + 200, fdLimit: 65536 };
    const targets: { label: string; t: Target }[] = [
      { label: 'PgBouncer', t: await startPgbouncer(bouncerBin, opts) },
      { label: `before ${base.sha}${nodeArgsLabel(beforeArgs)}`, t: await startPgrelay(base.dir, opts, beforeArgs) },
      { label: `after ${after}${nodeArgsLabel(afterArgs)}`, t: await startPgrelay(REPO, opts, afterArgs) },
    ];
    const warm: Workload = { id: 'warmup', label: 'warm-up', clients: 16, threads: 2, args: ['-S'], tpcb: false };
    for (const { t } of targets) await runWorkload({ port: t.port, workload: warm, durationSec: 3, round: 0, logDir: path.join(workDir, 'logs'), proxyPid: null });
    const samples = new Map<string, RunSample[]>();
    for (let round = 1; round <= rounds; round++) {
      if (values.fresh && round > 1) {
        // New processes for both builds, warmed up the same way as the first ones.
        for (const [i, dir, args] of [[1, base.dir, beforeArgs], [2, REPO, afterArgs]] as const) {
          await targets[i]!.t.daemon!.stop();
          targets[i]!.t = await startPgrelay(dir, opts, args);
          await runWorkload({ port: targets[i]!.t.port, workload: warm, durationSec: 3, round: 0, logDir: path.join(workDir, 'logs'), proxyPid: null });
        }
      }
      for (const w of workloads) {
        for (const { label, t } of targets) {
          if (w.tpcb) await cluster.psql('VACUUM pgbench_branches, pgbench_tellers; TRUNCATE pgbench_history');
          const s = await runWorkload({ port: t.port, workload: w, durationSec: duration, round, logDir: path.join(workDir, 'logs'), proxyPid: t.daemon!.pid });
          const key = `${w.id}\t${label}`;
          samples.set(key, [...(samples.get(key) ?? []), s]);
          log(`round ${round} ${w.label} ${label}: ${s.error ?? `tps ${fmt(s.tps)} p99 ${fmt(s.latP99Ms, 3)} ms cpu ${fmt(s.proxyCpuSec, 2)} s`}`);
        }
      }
    }
    const out: string[] = [`| workload | target | tps | p99 ms | proxy µs/tx | tps per round |`, `| --- | --- | ---: | ---: | ---: | --- |`];
    for (const w of workloads) {
      const rows = targets.map(({ label }) => {
        const ss = samples.get(`${w.id}\t${label}`) ?? [];
        const usPerTx = median(ss.map((s) => (s.proxyCpuSec !== null && s.transactions ? (s.proxyCpuSec * 1e6) / s.transactions : null)));
        return { label, tps: median(ss.map((s) => s.tps)), p99: median(ss.map((s) => s.latP99Ms)), usPerTx, per: ss.map((s) => fmt(s.tps)).join(', ') };
      });
      for (const r of rows) out.push(`| ${w.label} | ${r.label} | ${fmt(r.tps)} | ${fmt(r.p99, 3)} | ${fmt(r.usPerTx, 1)} | ${r.per} |`);
      const [bouncer, before, after] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
      const ratio = (a: number | null, b: number | null): string => (a !== null && b !== null && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
      out.push(`| ${w.label} | after/before | ${ratio(after.tps, before.tps)} | ${ratio(after.p99, before.p99)} | ${ratio(after.usPerTx, before.usPerTx)} | after/PgBouncer tps ${ratio(after.tps, bouncer.tps)} |`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await stopAllDaemons();
    await destroyAll();
    fs.rmSync(workDir, { recursive: true, force: true });
    base.remove();
  }
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
