// Transaction pooling on real PostgreSQL: servers are really shared, interleaved transactions
// never see each other's session state, parameters are replayed, session mode keeps the link.

import t from 'tap';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

async function connect(url: string, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, ...extra });
  await c.connect();
  return c;
}

t.test('pool size 1: many clients share one server; interleaved transactions stay isolated', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const clients = await Promise.all(Array.from({ length: 5 }, () => connect(relay.url())));
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const pids = new Set<number>();
  for (const c of clients) pids.add((await c.query('select pg_backend_pid() as pid')).rows[0].pid);
  t.equal(pids.size, 1, 'all five clients ran on the same backend');
  // Two transactions that would clash if they shared a server at the same time.
  const [a, b] = clients as [pg.Client, pg.Client];
  await a.query('begin');
  await a.query(`set local work_mem = '8MB'`);
  const bDone = b.query(`select current_setting('work_mem') as wm`); // must wait for a's transaction
  await new Promise((r) => setTimeout(r, 200));
  const aWm = (await a.query(`select current_setting('work_mem') as wm`)).rows[0].wm;
  await a.query('commit');
  t.equal(aWm, '8MB');
  t.equal((await bDone).rows[0].wm, '4MB', 'b ran after a committed and saw none of its state');
});

t.test('tracked session parameters are replayed on whichever server a client gets', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const tokyo = await connect(relay.url(), { options: undefined });
  const utc = await connect(relay.url());
  t.teardown(() => Promise.all([tokyo.end(), utc.end()]));
  await tokyo.query(`set timezone to 'Asia/Tokyo'`);
  await tokyo.query(`set application_name to 'tokyo-app'`);
  await tokyo.query(`set datestyle to 'German'`);
  const seenByUtc = (await utc.query(`select current_setting('TimeZone') as tz, current_setting('application_name') as app, current_setting('DateStyle') as ds`)).rows[0];
  t.not(seenByUtc.tz, 'Asia/Tokyo', "another client's SET timezone does not leak");
  t.not(seenByUtc.app, 'tokyo-app');
  t.not(seenByUtc.ds, 'German, DMY');
  const seenByTokyo = (await tokyo.query(`select current_setting('TimeZone') as tz, current_setting('application_name') as app, current_setting('DateStyle') as ds`)).rows[0];
  t.same(seenByTokyo, { tz: 'Asia/Tokyo', app: 'tokyo-app', ds: 'German, DMY' }, 'its own settings follow it to the shared server');
});

t.test('startup parameters are replayed too', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url(), { application_name: 'alpha' } as pg.ClientConfig);
  const b = await connect(relay.url(), { application_name: 'beta' } as pg.ClientConfig);
  t.teardown(() => Promise.all([a.end(), b.end()]));
  for (let i = 0; i < 3; i++) {
    t.equal((await a.query(`select current_setting('application_name') as n`)).rows[0].n, 'alpha');
    t.equal((await b.query(`select current_setting('application_name') as n`)).rows[0].n, 'beta');
  }
});

t.test('session mode keeps one server per client', async (t) => {
  const relay = await startRelay(cluster, { settings: { poolMode: 'session', defaultPoolSize: 2 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  const b = await connect(relay.url());
  t.teardown(() => Promise.all([a.end(), b.end()]));
  await a.query(`set work_mem = '16MB'`);
  const pa = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  const pb = (await b.query('select pg_backend_pid() as p')).rows[0].p;
  t.not(pa, pb);
  t.equal((await a.query(`select current_setting('work_mem') as w`)).rows[0].w, '16MB', 'plain SET survives in session mode');
  t.equal((await a.query('select pg_backend_pid() as p')).rows[0].p, pa);
});

t.test('session mode resets the server (DISCARD ALL) before reuse', async (t) => {
  const relay = await startRelay(cluster, { settings: { poolMode: 'session', defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  await a.query(`set work_mem = '16MB'`);
  await a.query(`prepare p1 as select 1`);
  await a.end();
  const b = await connect(relay.url());
  t.teardown(() => b.end());
  t.equal((await b.query(`select current_setting('work_mem') as w`)).rows[0].w, '4MB');
  t.equal((await b.query(`select count(*)::int as n from pg_prepared_statements`)).rows[0].n, 0);
});

t.test('max_client_conn refuses extra clients with 53300', async (t) => {
  const relay = await startRelay(cluster, { settings: { maxClientConn: 2 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  const b = await connect(relay.url());
  t.teardown(() => Promise.all([a.end(), b.end()]));
  const c = new pg.Client({ connectionString: relay.url() });
  await t.rejects(c.connect(), { code: '53300' });
});

t.test('query_wait_timeout ends a wait with a clear error', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 700 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  const b = await connect(relay.url());
  b.on('error', () => undefined);
  t.teardown(() => a.end());
  await a.query('begin'); // holds the only server
  const started = Date.now();
  await t.rejects(b.query('select 1'), /query_wait_timeout/);
  const waited = Date.now() - started;
  t.ok(waited >= 600 && waited < 3000, `waited ${waited} ms`);
  await a.query('rollback');
});

t.test('idle_transaction_timeout closes a client idle inside a transaction', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, idleTransactionTimeoutMs: 600 } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  const errored = new Promise<Error>((resolve) => a.on('error', resolve));
  await a.query('begin');
  const err = await errored;
  t.match(err.message, /idle-in-transaction timeout|terminat/);
  const b = await connect(relay.url());
  t.teardown(() => b.end());
  t.equal((await b.query('select 1 as n')).rows[0].n, 1, 'the server was rolled back and reused');
});

t.test('server_reset_query_always cleans untracked session state between transactions', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, serverResetQueryAlways: true, serverResetQuery: 'DISCARD ALL' } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  const b = await connect(relay.url());
  t.teardown(() => Promise.all([a.end(), b.end()]));
  await a.query(`set work_mem = '32MB'`);
  t.equal((await b.query(`select current_setting('work_mem') as w`)).rows[0].w, '4MB');
});

t.test('server_check_query runs on servers idle past server_check_delay', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, serverCheckDelayMs: 0, serverCheckQuery: 'select 1' } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  for (let i = 0; i < 5; i++) t.equal((await a.query('select $1::int as n', [i])).rows[0].n, i);
  // A server killed while idle in the pool is detected and replaced without the client noticing.
  const pid = (await a.query('select pg_backend_pid() as p')).rows[0].p;
  await cluster.psql(`select pg_terminate_backend(${pid})`);
  await new Promise((r) => setTimeout(r, 100));
  t.equal((await a.query('select 7 as n')).rows[0].n, 7);
});

t.test('connect_query runs on each new server connection; a failing one is reported', async (t) => {
  const relay = await startRelay(cluster, { databases: { '*': { hosts: [{ host: cluster.host, port: cluster.port }], connectQuery: "SET work_mem = '9MB'" } } });
  t.teardown(() => relay.stop());
  const a = await connect(relay.url());
  t.teardown(() => a.end());
  t.equal((await a.query(`select current_setting('work_mem') as w`)).rows[0].w, '9MB');
  const broken = await startRelay(cluster, {
    settings: { queryWaitTimeoutMs: 1500 },
    databases: { '*': { hosts: [{ host: cluster.host, port: cluster.port }], connectQuery: 'SELECT no_such_function()' } },
  });
  t.teardown(() => broken.stop());
  const c = new pg.Client({ connectionString: broken.url() });
  c.on('error', () => undefined);
  await t.rejects(c.connect(), /no_such_function|query_wait_timeout/);
});

t.test('the Unix socket listener pools like the TCP one (psql -h DIR -p PORT)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgrelay-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The socket file is named after listen_port (.s.PGSQL.<port>), so the port must be a real one.
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, unixSocketDir: dir, listenPort: await freePort() } });
  t.teardown(() => relay.stop());
  const viaSocket = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: dir, port: relay.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    return c;
  };
  const clients = await Promise.all(Array.from({ length: 3 }, viaSocket));
  t.equal(clients.filter((c) => (c as unknown as { connection: { stream: { remoteAddress?: string } } }).connection.stream.remoteAddress === undefined).length, 3, 'connected through the socket file, not TCP');
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const pids = new Set<number>();
  for (const c of clients) pids.add((await c.query('select pg_backend_pid() as pid')).rows[0].pid);
  t.equal(pids.size, 1, 'the three Unix-socket clients shared one server');
  // A result larger than one read, through the same shared read buffer as TCP clients.
  const big = (await clients[0]!.query(`select string_agg(md5(i::text), '') as s from generate_series(1, 20000) i`)).rows[0].s as string;
  t.equal(big.length, 20000 * 32, 'a 640 KB value arrives whole');
});
