// Faults on real PostgreSQL: a client that leaves mid-transaction never leaves a dirty server in
// the pool; a server that dies mid-transaction gives its client an error and the pool heals; an
// unreachable upstream gives waiting clients a clear error within the configured bounds.

import t from 'tap';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql('create table if not exists marks (v text)');

t.test('client aborts mid-transaction: its work is rolled back and the server reused cleanly', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const a = new pg.Client({ connectionString: relay.url() });
  await a.connect();
  a.on('error', () => undefined);
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  await a.query('begin');
  await a.query(`insert into marks values ('aborted')`);
  (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const b = new pg.Client({ connectionString: relay.url() });
  await b.connect();
  t.teardown(() => b.end());
  const r = await b.query(`select pg_backend_pid() as p, (select count(*)::int from marks where v = 'aborted') as n, current_setting('transaction_isolation') as iso`);
  t.equal(r.rows[0].n, 0, 'the insert was rolled back');
  t.equal(r.rows[0].p, pid, 'the same server, rolled back and verified idle, was reused');
  await b.query('select 1');
});

t.test('client aborts mid-query: the server is closed, not reused', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const a = new pg.Client({ connectionString: relay.url() });
  await a.connect();
  a.on('error', () => undefined);
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  a.query('select pg_sleep(30)').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  await new Promise((r) => setTimeout(r, 300));
  const b = new pg.Client({ connectionString: relay.url() });
  await b.connect();
  t.teardown(() => b.end());
  const p2 = (await b.query('select pg_backend_pid() as p')).rows[0].p;
  t.not(p2, pid, 'a fresh server');
});

t.test('server killed mid-transaction: the client gets an error, the pool heals', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2 } });
  t.teardown(() => relay.stop());
  const a = new pg.Client({ connectionString: relay.url() });
  await a.connect();
  a.on('error', () => undefined);
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  const running = a.query('select pg_sleep(30)').then(
    () => null,
    (e: Error) => e,
  );
  await new Promise((r) => setTimeout(r, 200));
  await cluster.psql(`select pg_terminate_backend(${pid})`);
  t.match((await running)?.message, /server connection lost|terminating connection/);
  const b = new pg.Client({ connectionString: relay.url() });
  await b.connect();
  t.teardown(() => b.end());
  t.equal((await b.query('select 1 as n')).rows[0].n, 1, 'new clients are served by a new server');
  const again = await a.query('select 2 as n').then(
    (r) => r.rows[0].n,
    () => 'closed',
  );
  t.ok(again === 2 || again === 'closed', 'the affected client either continues or was told the connection is gone');
});

t.test('server killed while a client idles inside a transaction: FATAL, never a silent new transaction', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2 } });
  t.teardown(() => relay.stop());
  const a = new pg.Client({ connectionString: relay.url() });
  await a.connect();
  const errored = new Promise<Error>((resolve) => a.on('error', resolve));
  await a.query('begin');
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  await cluster.psql(`select pg_terminate_backend(${pid})`);
  const err = await errored;
  t.match(err.message, /server connection lost|terminating connection/);
});

t.test('unreachable upstream: waiting clients get a clear error within connect + wait timeouts', async (t) => {
  const relay = await startRelay(
    { host: '127.0.0.1', port: 1 },
    { settings: { serverConnectTimeoutMs: 500, queryWaitTimeoutMs: 1500 }, databases: { '*': { hosts: [{ host: '127.0.0.1', port: 1 }] } } },
  );
  t.teardown(() => relay.stop());
  const c = new pg.Client({ connectionString: relay.url() });
  c.on('error', () => undefined);
  const started = Date.now();
  const err = await c.connect().then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  const took = Date.now() - started;
  t.ok(err, 'login fails');
  t.match(err?.message, /query_wait_timeout|cannot connect|ECONNREFUSED/);
  t.match(err?.code, /^(08006|08P01|57P03)$/);
  t.ok(took < 500 + 1500 + 1000, `answered in ${took} ms`);
});

t.test('upstream restart: the pool reconnects and clients continue', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2, queryWaitTimeoutMs: 20000 } });
  t.teardown(() => relay.stop());
  const a = new pg.Client({ connectionString: relay.url() });
  await a.connect();
  a.on('error', () => undefined);
  t.teardown(() => a.end().catch(() => undefined));
  await a.query('select 1');
  await cluster.stop('fast');
  await cluster.start();
  // The idle server died with the restart; the next transaction gets a fresh one.
  const r = await a.query('select 3 as n');
  t.equal(r.rows[0].n, 3);
});
