// pgbench -M prepared through pgrelay in transaction pooling: each pgbench client prepares its
// script's statements (P_0, P_1 ...) once and then only binds them, while pgrelay moves the clients
// among two servers. The TPC-B-like script (seven statements, writes) and -S, with more clients than
// servers; then with max_prepared_statements below the number of statements, so servers evict and
// prepare again. No failed transactions, and the counters show what happened.

import t from 'tap';
import { pgbench } from '../harness/pg-cluster.js';
import { metric, startDriverSetup } from './driver-harness.js';

const setup = await startDriverSetup({ maxClientConn: 200 });
t.teardown(() => setup.stop());
const conn = (port: number): string[] => ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'];

t.test('pgbench -i', async (t) => {
  const r = await pgbench([...conn(setup.cluster.port), '-i', '-s', '1', '-q', 'postgres']);
  t.equal(r.code, 0, r.stderr);
});

// pgbench prepares a client's statements with PQprepare, which blocks its whole thread until the
// answer comes: a client of that thread inside a TPC-B transaction keeps its server meanwhile, so
// with more clients per thread than servers any transaction pooler stalls. TPC-B therefore runs one
// client per thread; -S (one statement per transaction) runs four per thread.
for (const [label, extra] of [
  ['TPC-B -c 6 -j 6', ['-c', '6', '-j', '6']],
  ['-S -c 8 -j 2', ['-S', '-c', '8', '-j', '2']],
] as const) {
  t.test(`pgbench -M prepared ${label} -T 4 through a pool of two`, async (t) => {
    const before = await metric(setup.relay, 'pgrelay_prepared_statement_hits_total');
    const r = await pgbench([...conn(setup.relay.port), '-n', '-M', 'prepared', '-T', '4', ...extra, 'postgres']);
    t.equal(r.code, 0, r.stderr);
    t.ok((r.processed ?? 0) > 100, `processed ${r.processed} transactions (${r.tps} tps)`);
    t.equal(r.failed ?? 0, 0, 'no failed transactions');
    t.notMatch(r.stderr, /aborted|error/i);
    const hits = (await metric(setup.relay, 'pgrelay_prepared_statement_hits_total')) - before;
    t.ok(hits >= (r.processed ?? 0), `every transaction bound statements its server had (${hits} hits)`);
  });
}

t.test('pgbench -M prepared TPC-B with max_prepared_statements = 3 (seven statements)', async (t) => {
  const r = await pgbench([...conn(setup.small.port), '-n', '-M', 'prepared', '-c', '6', '-j', '6', '-T', '4', 'postgres']);
  t.equal(r.code, 0, r.stderr);
  t.ok((r.processed ?? 0) > 50, `processed ${r.processed} transactions (${r.tps} tps)`);
  t.equal(r.failed ?? 0, 0, 'no failed transactions');
  t.notMatch(r.stderr, /aborted|error/i);
  t.ok((await metric(setup.small, 'pgrelay_prepared_statement_evictions_total')) > 0, 'servers evicted statements and prepared them again');
});
