// pgbench through pgrelay (transaction pooling): init, then simple and extended protocol runs
// with more clients than servers; zero failed transactions.

import t from 'tap';
import { startCluster, pgbench } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const relay = await startRelay(cluster, { settings: { defaultPoolSize: 10, maxClientConn: 200 } });
t.teardown(() => relay.stop());

const conn = ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'];

t.test('pgbench -i through pgrelay', async (t) => {
  const r = await pgbench([...conn, '-i', '-s', '2', '-q', 'postgres']);
  t.equal(r.code, 0, r.stderr);
});

for (const mode of ['simple', 'extended']) {
  t.test(`pgbench -c 20 -j 2 -T 5 -M ${mode}`, async (t) => {
    const r = await pgbench([...conn, '-c', '20', '-j', '2', '-T', '5', '-M', mode, 'postgres']);
    t.equal(r.code, 0, r.stderr);
    t.ok((r.processed ?? 0) > 100, `processed ${r.processed} transactions (${r.tps} tps)`);
    t.equal(r.failed ?? 0, 0, 'no failed transactions');
    t.notMatch(r.stderr, /aborted|error/i);
  });
}
