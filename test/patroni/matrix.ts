// The scenario matrix repeated, for the spread: `npm run test:patroni:spread -- --runs 5`. One test
// bed (both topologies behind one hook configuration), every scenario N times, then per topology
// and scenario the min / median / max of the stall, Patroni's no-primary window, pgrelay's share
// and stall − window, failures summed, and each target judged. --out FILE writes the rows as JSON.
// Not part of `npm test`: about 3 minutes per run.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runScenario, scenarios, startBed, table, type Row, type Topology } from './topology.js';
import { destroyAllPatroni } from '../harness/patroni.js';
import { destroyAll } from '../harness/pg-cluster.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, out: { type: 'string' }, only: { type: 'string' } } });
const runs = Number(values.runs);
const only = values.only === undefined ? null : new Set(values.only.split(','));

/** The issue's targets: planned events cost 0 failures; share and stall − window bounded per topology. */
const TARGETS: Record<Topology, { shareMs: number; overWindowMs: number }> = {
  service: { shareMs: 100, overWindowMs: 800 },
  direct: { shareMs: 150, overWindowMs: 300 },
};

function spread(xs: (number | null)[]): string {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return '-';
  const med = v.length % 2 === 1 ? v[(v.length - 1) / 2]! : Math.round((v[v.length / 2 - 1]! + v[v.length / 2]!) / 2);
  return v.length === 1 ? String(v[0]) : `${v[0]} / ${med} / ${v[v.length - 1]}`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const bed = await startBed();
  const rows: Row[] = [];
  const specs = scenarios().filter((s) => only === null || only.has(s.name));
  try {
    for (let run = 1; run <= runs; run++) {
      for (const spec of specs) {
        const result = await runScenario(bed, spec);
        rows.push(...result);
        for (const r of result) console.log(`run ${run} ${r.topology.padEnd(7)} ${r.scenario.padEnd(28)} tx ${r.transactions} failed ${r.failed} stall ${r.stallMs} window ${r.windowMs ?? '-'} share ${r.shareMs ?? '-'}`);
      }
    }
  } finally {
    await bed.destroy();
  }
  const planned = new Set(specs.filter((s) => s.planned).map((s) => s.name));
  const lines = [
    `${runs} run(s), ${Math.round((Date.now() - started) / 1000)} s; spreads are min / median / max`,
    '',
    '| topology | scenario | transactions (median) | failed (all runs) | longest stall (ms) | no-primary window (ms) | pgrelay share (ms) | stall − window (ms) | targets |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const topology of ['service', 'direct'] as const) {
    for (const spec of specs) {
      const rs = rows.filter((r) => r.topology === topology && r.scenario === spec.name);
      if (rs.length === 0) continue;
      const failed = rs.reduce((n, r) => n + r.failed, 0);
      const over = rs.map((r) => (r.windowMs === null ? null : r.stallMs - r.windowMs));
      const tx = rs.map((r) => r.transactions).sort((a, b) => a - b)[Math.floor(rs.length / 2)];
      const t = TARGETS[topology];
      const verdicts: string[] = [];
      if (planned.has(spec.name)) verdicts.push(failed === 0 ? '0 failed: met' : `${failed} failed: MISSED`);
      const shares = rs.map((r) => r.shareMs).filter((x): x is number => x !== null);
      if (shares.length > 0) verdicts.push(`share ≤ ${t.shareMs}: ${shares.every((s) => s <= t.shareMs) ? 'met' : `MISSED (${shares.filter((s) => s > t.shareMs).length}/${shares.length})`}`);
      const overs = over.filter((x): x is number => x !== null);
      if (overs.length > 0) verdicts.push(`stall ≤ window + ${t.overWindowMs}: ${overs.every((o) => o <= t.overWindowMs) ? 'met' : `MISSED (${overs.filter((o) => o > t.overWindowMs).length}/${overs.length})`}`);
      lines.push(`| ${topology} | ${spec.name} | ${tx} | ${failed} | ${spread(rs.map((r) => r.stallMs))} | ${spread(rs.map((r) => r.windowMs))} | ${spread(rs.map((r) => r.shareMs))} | ${spread(over)} | ${verdicts.join('; ')} |`);
    }
  }
  console.log('\n' + lines.join('\n'));
  console.log('\nevery run:\n' + table(rows));
  if (values.out !== undefined) writeFileSync(values.out, JSON.stringify({ runs, rows }, null, 2));
}

main().catch(async (err: Error) => {
  console.error(err.stack ?? err.message);
  await destroyAllPatroni().catch(() => undefined);
  await destroyAll().catch(() => undefined);
  process.exit(1);
});
