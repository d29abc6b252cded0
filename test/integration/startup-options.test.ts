// The `options` startup parameter and other startup settings through pgrelay in transaction
// pooling, on real PostgreSQL: each client's settings hold in every transaction on every server
// (its own replayed, another client's reset), a server that already matches runs nothing extra,
// a client's SET or DISCARD ALL cannot leave its settings to the next client, ignored parameters
// stay ignored, and what pgrelay cannot honour is a FATAL that names it.

import t, { type Test } from 'tap';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { WireClient, errorFields, query, types } from '../harness/wire-client.js';
import type { Settings } from '../../src/config/types.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql('create schema opt_a; create schema opt_b; create table opt_a.which (v text); create table opt_b.which (v text)');
await cluster.psql(`insert into opt_a.which values ('a'); insert into opt_b.which values ('b')`);

async function relayOf(t: Test, settings: Partial<Settings> = {}): Promise<Relay> {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2, queryWaitTimeoutMs: 8000, ...settings } });
  t.teardown(() => relay.stop());
  return relay;
}

async function pgClient(t: Test, relay: Relay, options?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: relay.url(), ...(options !== undefined ? { options } : {}) } as pg.ClientConfig);
  c.on('error', () => undefined); // a FATAL ends the connection; the query reports it
  await c.connect();
  t.teardown(() => c.end().catch(() => undefined));
  return c;
}

const one = async (c: pg.Client, sql: string): Promise<string> => String(Object.values((await c.query(sql)).rows[0] as Record<string, unknown>)[0]);

t.test('options=-c TimeZone -c search_path hold in every transaction, on every server', async (t) => {
  const relay = await relayOf(t);
  const tokyo = await pgClient(t, relay, '-c TimeZone=Asia/Tokyo -c search_path=opt_a,public');
  const plain = await pgClient(t, relay);
  const other = await pgClient(t, relay, '--search-path=opt_b --statement_timeout=1234');
  const pids = new Set<string>();
  for (let i = 0; i < 12; i++) {
    // Interleaved, with a transaction held open now and then, so that the clients swap servers.
    const holder = i % 3 === 0 ? await pgClient(t, relay) : null;
    if (holder !== null) await holder.query('begin');
    t.equal(await one(tokyo, 'show timezone'), 'Asia/Tokyo');
    t.equal(await one(tokyo, 'select v from which'), 'a', 'search_path=opt_a,public (two schemas, as the startup packet means it)');
    t.equal(await one(tokyo, 'show search_path'), 'opt_a,public', 'shown as given, as PostgreSQL shows a startup value');
    t.equal(await one(plain, 'show search_path'), '"$user", public', "another client's search_path was reset");
    t.equal(await one(plain, 'show statement_timeout'), '0');
    t.not(await one(plain, 'show timezone'), 'Asia/Tokyo');
    t.equal(await one(other, 'select v from which'), 'b');
    t.equal(await one(other, 'show statement_timeout'), '1234ms');
    pids.add(await one(tokyo, 'select pg_backend_pid()'));
    if (holder !== null) {
      await holder.query('commit');
      await holder.end();
    }
  }
  t.ok(pids.size >= 2, `the client ran on ${pids.size} servers`);
});

t.test('a server that already has the settings runs nothing extra', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 1, serverCheckDelayMs: 3_600_000 });
  const c = await pgClient(t, relay, '-c search_path=opt_b');
  await one(c, 'select 1');
  const calls = await one(c, `select calls from pg_stat_user_functions where funcname = 'set_config'`).catch(() => 'n/a');
  void calls;
  // Count the queries the server saw: pg_stat_activity of this backend shows the last one; a
  // replay would run just before each transaction. Use the xact counter instead.
  const before = Number(await one(c, `select xact_commit from pg_stat_database where datname = current_database()`));
  for (let i = 0; i < 5; i++) await one(c, 'select 1');
  await one(c, 'select pg_stat_clear_snapshot()');
  const after = Number(await one(c, `select xact_commit from pg_stat_database where datname = current_database()`));
  t.ok(after - before <= 7, `about one transaction per query, no replay between them (${after - before})`);
});

t.test("a client's own SET or DISCARD ALL does not leave settings to the next client", async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 1 });
  const a = await pgClient(t, relay, '-c search_path=opt_b');
  const b = await pgClient(t, relay, '-c search_path=opt_b');
  await a.query('set search_path = opt_a');
  t.equal(await one(b, 'select v from which'), 'b', 'b gets its own value again, not what a SET');
  await a.query('discard all');
  t.equal(await one(b, 'select v from which'), 'b', 'after DISCARD ALL too');
  t.equal(await one(a, 'select v from which'), 'b', 'and a, in its next transaction, has its startup value');
});

t.test('ignore_startup_parameters keeps its meaning; other startup parameters are replayed', async (t) => {
  const relay = await relayOf(t, { ignoreStartupParameters: ['extra_float_digits', 'work_mem'] });
  const c = await WireClient.connect(relay.port, { params: { extra_float_digits: '2', work_mem: '77MB', statement_timeout: '4321', options: '-c work_mem=99MB' } });
  t.teardown(() => c.destroy());
  c.send(query('show work_mem; show statement_timeout; show extra_float_digits'));
  const r = await c.readUntilReady(1);
  const rows = r.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2)));
  t.same(rows, ['4MB', '4321ms', '1'], 'work_mem ignored (directly and in options), statement_timeout replayed');
});

t.test('what pgrelay cannot honour is a FATAL that names it', async (t) => {
  const relay = await relayOf(t);
  await t.rejects(pgClient(t, relay, '-B 128'), { message: /unsupported switch in startup parameter "options": -B/ });
  await t.rejects(pgClient(t, relay, '-c work_mem'), { message: /-c work_mem requires a value/ });
  // The server judges the value the first time it is applied.
  const bad = await pgClient(t, relay, '-c no_such_setting_anywhere=1');
  await t.rejects(bad.query('select 1'), { message: /no_such_setting_anywhere/ });
  const late = await pgClient(t, relay, '-c shared_buffers=1GB');
  await t.rejects(late.query('select 1'), { code: '55P02' });
});

t.test('a reported setting given in options shows at login', async (t) => {
  const relay = await relayOf(t);
  const c = await WireClient.connect(relay.port, { params: { options: '-c default_transaction_read_only=on' } });
  t.teardown(() => c.destroy());
  c.send(query('create temp table ro_check (x int)'));
  const r = await c.readUntilReady(1);
  t.equal(types(r), 'EZ');
  t.equal(errorFields(r[0]!.body).get('C'), '25006', 'read-only transaction, as asked');
});
