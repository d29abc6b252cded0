// psycopg 3 (Debian python3-psycopg) through pgrelay in transaction pooling: test/drivers/
// psycopg_matrix.py runs the driver's own prepare path (after prepare_threshold executions), its
// SQL DEALLOCATE when its cache is full, pipelines, failing Parses, eviction with a small
// max_prepared_statements and the options parameter; each check it prints is an assertion here.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { dsn, ensureDriverDeps, metric, PYTHON, runProgram, startDriverSetup } from './driver-harness.js';

await ensureDriverDeps();
const setup = await startDriverSetup();
t.teardown(() => setup.stop());
const SCRIPT = fileURLToPath(new URL('./psycopg_matrix.py', import.meta.url));

t.test('psycopg 3 through pgrelay', async (t) => {
  const r = await runProgram(PYTHON, [SCRIPT, dsn(setup.relay), dsn(setup.small)], { timeoutMs: 180_000 });
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.trim().slice(-500)})`);
  const lines = r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { check?: string; ok?: boolean; detail?: string; done?: boolean; psycopg?: string; libpq?: number });
  const done = lines.find((l) => l.done === true);
  t.ok(done, `the script ran to its end (psycopg ${done?.psycopg ?? '?'}, libpq ${done?.libpq ?? '?'})`);
  const checks = lines.filter((l) => l.check !== undefined);
  t.ok(checks.length >= 13, `${checks.length} checks reported`);
  for (const c of checks) t.ok(c.ok, `${c.check}${c.detail ? ` (${c.detail})` : ''}`);
  t.ok((await metric(setup.relay, 'pgrelay_prepared_statement_prepares_total')) > 0, 'pgrelay prepared statements for psycopg');
  t.ok((await metric(setup.small, 'pgrelay_prepared_statement_evictions_total')) > 0, 'and evicted some');
});
