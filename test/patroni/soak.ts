// The switchover soak: `npm run test:patroni:soak`. Ten switchovers in a row, alternating nodes,
// each under pgbench through pgrelay in the Service topology (HAProxy as the primary Service).
// Passes when every switchover costs 0 failed transactions and a stall within Patroni's
// no-primary window + 0.8 s. Not part of `npm test`: about 3 minutes. --count N, --out FILE.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runScenario, startBed, table, type Row } from './topology.js';
import { destroyAllPatroni } from '../harness/patroni.js';
import { destroyAll } from '../harness/pg-cluster.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '10' }, out: { type: 'string' } } });
const count = Number(values.count);
const OVER_WINDOW_MS = 800;

async function main(): Promise<void> {
  const started = Date.now();
  const bed = await startBed({ topologies: ['service'] });
  const rows: Row[] = [];
  try {
    for (let i = 1; i <= count; i++) {
      const leader = await bed.cluster.waitHealthy(90_000);
      const target = bed.cluster.nodes.find((n) => n.name !== leader.name)!;
      const [row] = await runScenario(bed, { name: `switchover ${i}: ${leader.name} → ${target.name}`, benchSeconds: 9, action: async (b) => void (await b.cluster.switchover(target.name)) });
      rows.push(row!);
      console.log(`${row!.scenario}: transactions ${row!.transactions}, failed ${row!.failed}, stall ${row!.stallMs} ms, window ${row!.windowMs ?? '-'} ms, share ${row!.shareMs ?? '-'} ms`);
    }
  } finally {
    await bed.destroy();
  }
  const failed = rows.reduce((n, r) => n + r.failed, 0);
  const over = rows.filter((r) => r.windowMs !== null && r.stallMs - r.windowMs > OVER_WINDOW_MS);
  console.log('\n' + table(rows));
  console.log(`\n${count} switchovers in ${Math.round((Date.now() - started) / 1000)} s: ${failed} failed transactions; ${count - over.length}/${count} stalls within the no-primary window + ${OVER_WINDOW_MS} ms`);
  if (values.out !== undefined) writeFileSync(values.out, JSON.stringify({ rows }, null, 2));
  if (failed > 0 || over.length > 0) process.exitCode = 1;
}

main().catch(async (err: Error) => {
  console.error(err.stack ?? err.message);
  await destroyAllPatroni().catch(() => undefined);
  await destroyAll().catch(() => undefined);
  process.exit(1);
});
