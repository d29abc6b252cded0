// pgjdbc (Debian libpostgresql-jdbc-java, with a headless JRE) through pgrelay in transaction
// pooling: test/drivers/PgjdbcMatrix.java runs the driver's own server-prepare path (after
// prepareThreshold executions), Close and new texts, batches (pipelines of Bind/Execute), failing
// Parses, eviction with a small max_prepared_statements, and options compared with what PostgreSQL
// itself gives; each check it prints is an assertion here.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { ensureDriverDeps, JAVA, metric, PGJDBC_JAR, runProgram, startDriverSetup } from './driver-harness.js';

await ensureDriverDeps();
const setup = await startDriverSetup();
t.teardown(() => setup.stop());
const SOURCE = fileURLToPath(new URL('./PgjdbcMatrix.java', import.meta.url));
const jdbc = (port: number): string => `jdbc:postgresql://127.0.0.1:${port}/postgres?sslmode=disable`;

t.test('pgjdbc through pgrelay', async (t) => {
  const r = await runProgram(JAVA, ['-cp', PGJDBC_JAR, SOURCE, jdbc(setup.relay.port), jdbc(setup.small.port), jdbc(setup.cluster.port)], { timeoutMs: 240_000 });
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.trim().slice(-800)})`);
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { check?: string; ok?: boolean; detail?: string; done?: boolean; driver?: string });
  const done = lines.find((l) => l.done === true);
  t.ok(done, `the program ran to its end (${done?.driver ?? '?'})`);
  const checks = lines.filter((l) => l.check !== undefined);
  t.ok(checks.length >= 9, `${checks.length} checks reported`);
  for (const c of checks) t.ok(c.ok, `${c.check}${c.detail ? ` (${c.detail})` : ''}`);
  t.ok((await metric(setup.relay, 'pgrelay_prepared_statement_prepares_total')) > 0, 'pgrelay prepared statements for pgjdbc');
  t.ok((await metric(setup.small, 'pgrelay_prepared_statement_evictions_total')) > 0, 'and evicted some');
});
