// PAUSE / RESUME semantics on real PostgreSQL: drains wait for open transactions, a drain deadline
// reports who is still in a transaction, RESUME completes a draining PAUSE, forgotten pauses
// auto-resume, logins and cancels work while paused, and pgbench sees no error through a hold.

import t from 'tap';
import pg from 'pg';
import { startCluster, pgbench } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql('create table if not exists pause_t (v int)');

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

t.test('a transaction open at PAUSE commits; PAUSE completes only after it', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  await a.query('begin');
  await a.query('insert into pause_t values (1)');
  let paused = false;
  const pausing = relay.app.control.pause({ timeoutMs: 5000 }).then((r) => {
    paused = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(paused, 'PAUSE still draining while the transaction is open');
  await a.query('insert into pause_t values (2)');
  await a.query('commit');
  const r = await pausing;
  t.equal(r.result, 'drained');
  t.equal(r.serversLeft, 0);
  t.equal(relay.app.control.pools()[0]?.svActive ?? 0, 0);
  relay.app.control.resume();
  t.equal((await a.query('select count(*)::int as n from pause_t where v in (1,2)')).rows[0].n, 2);
});

t.test('an idle-in-transaction client makes PAUSE hit its deadline and is reported', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  await a.query('begin');
  const started = Date.now();
  const r = await relay.app.control.pause({ timeoutMs: 500 });
  t.equal(r.result, 'timeout');
  t.ok(Date.now() - started >= 450);
  t.equal(r.inTransaction.length, 1);
  t.equal(r.inTransaction[0]?.user, 'postgres');
  t.equal(r.serversLeft, 1);
  t.ok(relay.app.control.state().paused, 'the pool stays paused after a drain timeout');
  await a.query('rollback');
  relay.app.control.resume();
});

t.test('RESUME while a PAUSE is draining completes that PAUSE with "resumed"', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  await a.query('begin');
  const pausing = relay.app.control.pause({ timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 100));
  const res = relay.app.control.resume();
  t.ok(res.wasPaused);
  const r = await pausing;
  t.equal(r.result, 'resumed', 'no hang: the PAUSE caller is answered');
  await a.query('commit');
  t.equal(relay.app.control.resume().wasPaused, false, 'RESUME is idempotent');
});

t.test('PAUSE is idempotent and per-database pause composes with global', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  t.equal((await relay.app.control.pause({ database: 'postgres', timeoutMs: 1000 })).result, 'drained');
  t.equal((await relay.app.control.pause({ database: 'postgres', timeoutMs: 1000 })).result, 'drained');
  const first = relay.app.control.state().databases.find((d) => d.name === 'postgres');
  t.ok(first?.paused);
  await relay.app.control.pause({ timeoutMs: 1000 });
  relay.app.control.resume({ database: 'postgres' });
  t.ok(relay.app.pause.isPaused('postgres'), 'still paused by the global pause');
  relay.app.control.resume();
  t.notOk(relay.app.control.state().paused);
  t.notOk(relay.app.pause.isPaused('postgres'));
});

t.test('a forgotten pause resumes at pause_max_duration', async (t) => {
  const relay = await startRelay(cluster, { settings: { pauseMaxDurationMs: 800 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  await relay.app.control.pause({ timeoutMs: 1000 });
  const started = Date.now();
  const r = await a.query('select 1 as n'); // waits in the queue until the auto-resume
  t.equal(r.rows[0].n, 1);
  const waited = Date.now() - started;
  t.ok(waited >= 300 && waited < 3000, `held ${waited} ms, then auto-resumed`);
  t.notOk(relay.app.control.state().paused);
  t.equal(relay.app.pause.autoResumes, 1);
});

t.test('logins during a pause need no server; a held query can be canceled (57014)', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const warm = await connect(relay.url()); // caches the pool's login parameters
  await warm.end();
  await relay.app.control.pause({ timeoutMs: 1000 });
  const b = await connect(relay.url());
  t.teardown(() => b.end());
  t.pass('login succeeded while paused');
  const held = b.query('select 42 as n').then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  await new Promise((r) => setTimeout(r, 200));
  t.equal(relay.app.control.pools()[0]?.clWaiting, 1, 'the query waits in the queue');
  const canceller = new pg.Client({ connectionString: relay.url() });
  await canceller.connect();
  await (canceller as unknown as { cancel(c: pg.Client, q: unknown): Promise<void> }).cancel?.(b, null);
  await canceller.end().catch(() => undefined);
  // node-postgres has no public cancel API; send the CancelRequest ourselves.
  const { processID, secretKey } = b as unknown as { processID: number; secretKey: number };
  await sendCancel(relay.port, processID, secretKey);
  const err = await held;
  t.equal(err?.code, '57014');
  relay.app.control.resume();
  t.equal((await b.query('select 7 as n')).rows[0].n, 7, 'the client goes on after resume');
});

t.test('pgbench -c 16 -j 2 through PAUSE, 3 s hold, RESUME: 0 failed, latency shows the hold', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 8 } });
  t.teardown(() => relay.stop());
  const conn = ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'];
  t.equal((await pgbench([...conn, '-i', '-s', '1', '-q', 'postgres'])).code, 0);
  const bench = pgbench([...conn, '-c', '16', '-j', '2', '-T', '8', '-P', '1', 'postgres']);
  await new Promise((r) => setTimeout(r, 1500));
  const p = await relay.app.control.pause({ timeoutMs: 5000 });
  t.equal(p.result, 'drained');
  await new Promise((r) => setTimeout(r, 3000));
  relay.app.control.resume();
  const r = await bench;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.failed ?? 0, 0, 'no failed transactions');
  // pgbench -P 1 prints one progress line a second; the hold shows as seconds with ~0 tps.
  const tps = [...r.stderr.matchAll(/progress: [\d.]+ s, ([\d.]+) tps/g)].map((m) => Number(m[1]));
  t.ok(tps.filter((x) => x < 1).length >= 2, `progress shows the hold: ${tps.join(' ')}`);
  t.ok(tps.filter((x) => x > 50).length >= 3, 'and traffic before and after it');
});

function sendCancel(port: number, pid: number, secret: number): Promise<void> {
  return import('node:net').then(
    ({ default: net }) =>
      new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          const b = Buffer.alloc(16);
          b.writeInt32BE(16, 0);
          b.writeInt32BE(80877102, 4);
          b.writeInt32BE(pid, 8);
          b.writeInt32BE(secret, 12);
          s.end(b);
        });
        s.on('close', () => resolve());
        s.on('error', () => resolve());
      }),
  );
}
