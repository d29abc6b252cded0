// Hold-to-first-commit after RESUME, over 20 pause/resume cycles under pgbench load: how long a
// client whose transaction was held by the pause waits after RESUME before its commit returns.
// pgbench must report 0 failed transactions across all cycles.

import t from 'tap';
import pg from 'pg';
import { startCluster, pgbench } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const relay = await startRelay(cluster, { settings: { defaultPoolSize: 8, maxClientConn: 100 } });
t.teardown(() => relay.stop());
const conn = ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'];
await pgbench([...conn, '-i', '-s', '1', '-q', 'postgres']);
await cluster.psql('create table if not exists probe_t (v int)');

t.test('20 pause/resume cycles under pgbench -c 16 -j 2', async (t) => {
  const cycles = 20;
  const bench = pgbench([...conn, '-c', '16', '-j', '2', '-T', String(cycles * 0.6 + 4), 'postgres'], {}, { timeoutMs: 120_000 });
  const probe = new pg.Client({ connectionString: relay.url() });
  await probe.connect();
  t.teardown(() => probe.end());
  await new Promise((r) => setTimeout(r, 1000));
  const samples: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const p = await relay.app.control.pause({ timeoutMs: 5000 });
    t.equal(p.result, 'drained', `cycle ${i} drained in ${p.drainMs} ms`);
    const held = probe.query('begin; insert into probe_t values (1); commit;');
    await new Promise((r) => setTimeout(r, 200));
    const resumedAt = performance.now();
    relay.app.control.resume();
    await held;
    samples.push(performance.now() - resumedAt);
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = await bench;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.failed ?? 0, 0, `pgbench: ${r.processed} transactions, 0 failed`);
  samples.sort((a, b) => a - b);
  const median = (samples[9]! + samples[10]!) / 2;
  const max = samples[samples.length - 1]!;
  t.comment(`hold-to-first-commit after RESUME: median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${cycles} cycles; pgbench ${r.processed} transactions, ${r.failed ?? 0} failed`);
  t.ok(max < 2000, `max ${max.toFixed(1)} ms`);
});
