// Postgres.js (npm `postgres`) through pgrelay in transaction pooling, pool of two: it prepares
// every static query as a named statement, and pipelines the queries it is given at once on one
// connection. Eight single-connection instances run a prepared query many times; a pipeline of
// prepared executions; a failing Parse; its own Close when its statement cache is full (the name
// prepared again later); eviction with a small max_prepared_statements; and the options parameter.

import t from 'tap';
import postgres from 'postgres';
import { metric, startDriverSetup } from './driver-harness.js';
import type { Relay } from '../harness/relay.js';

const setup = await startDriverSetup();
t.teardown(() => setup.stop());

function connect(relay: Relay, connection: Record<string, string> = {}): ReturnType<typeof postgres> {
  return postgres({ host: '127.0.0.1', port: relay.port, user: 'postgres', database: 'postgres', max: 1, prepare: true, onnotice: () => undefined, connection });
}

t.test('static queries prepared once per connection, across many transactions and servers', async (t) => {
  const clients = Array.from({ length: 8 }, () => connect(setup.relay));
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const before = await metric(setup.relay, 'pgrelay_prepared_statement_hits_total');
  const pids = new Set<number>();
  const errors: string[] = [];
  await Promise.all(
    clients.map(async (sql, i) => {
      for (let n = 0; n < 40; n++) {
        const id = ((i * 7 + n) % 100) + 1;
        try {
          const [row] = await sql`select v, pg_backend_pid() as pid from drv where id = ${id}`;
          if (row!.v !== `v${id}`) errors.push(`client ${i}: ${row!.v}`);
          pids.add(row!.pid as number);
        } catch (err) {
          errors.push(`client ${i}: ${(err as Error).message}`);
        }
      }
    }),
  );
  t.same(errors, []);
  t.equal(pids.size, 2, 'on both servers');
  t.ok((await metric(setup.relay, 'pgrelay_prepared_statement_hits_total')) - before > 100, 'executions ran on statements the server had');
});

t.test('a pipeline of prepared executions on one connection', async (t) => {
  const sql = connect(setup.relay);
  t.teardown(() => sql.end());
  const rows = await Promise.all(Array.from({ length: 60 }, (_, i) => sql`select v from drv where id = ${i + 1}`));
  t.same(
    rows.map((r) => r[0]!.v),
    Array.from({ length: 60 }, (_, i) => `v${i + 1}`),
  );
  const tx = await sql.begin((s) => Array.from({ length: 20 }, (_, i) => s`select ${i}::int as i`));
  t.same(
    tx.map((r) => r[0]!.i),
    Array.from({ length: 20 }, (_, i) => i),
  );
});

t.test('a failing Parse is the right error and the connection goes on', async (t) => {
  const sql = connect(setup.relay);
  t.teardown(() => sql.end());
  await t.rejects(sql`selec ${1}`, { code: '42601' });
  await t.rejects(sql`select * from no_such_table where x = ${1}`, { code: '42P01' });
  t.equal((await sql`select ${41}::int + 1 as n`)[0]!.n, 42);
});

t.test('its own Close when its cache is full, and the statement prepared again', async (t) => {
  // Postgres.js keeps 1000 statements per connection and closes the oldest beyond that.
  const sql = connect(setup.relay);
  t.teardown(() => sql.end());
  const first = await sql.unsafe('select 0 as n, $1::int as x', [1], { prepare: true });
  t.equal(first[0]!.n, 0);
  for (let i = 1; i <= 1010; i++) await sql.unsafe(`select ${i} as n, $1::int as x`, [i], { prepare: true });
  const names = [...setup.relay.app.clients].map((c) => c.protocol.names?.size ?? 0);
  t.ok(Math.max(...names) <= 1000, `pgrelay answered its Closes: the client holds ${Math.max(...names)} names, not 1011`);
  t.ok(Math.max(...names) >= 990, 'and kept the others');
  const again = await sql.unsafe('select 0 as n, $1::int as x', [2], { prepare: true });
  t.same([again[0]!.n, again[0]!.x], [0, 2], 'the closed statement runs again');
});

t.test('max_prepared_statements = 3: statements evicted and prepared again', async (t) => {
  const clients = Array.from({ length: 4 }, () => connect(setup.small));
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const errors: string[] = [];
  await Promise.all(
    clients.map(async (sql, i) => {
      for (let n = 0; n < 30; n++) {
        const k = (n + i) % 8;
        const r = await sql.unsafe(`select ${k} as k, $1::int as n`, [n], { prepare: true }).catch((e: Error) => e);
        if (r instanceof Error) errors.push(r.message);
        else if (r[0]!.k !== k || r[0]!.n !== n) errors.push(JSON.stringify(r[0]));
      }
    }),
  );
  t.same(errors, []);
  t.ok((await metric(setup.small, 'pgrelay_prepared_statement_evictions_total')) > 0);
});

t.test('options with TimeZone and search_path', async (t) => {
  const sql = connect(setup.relay, { options: '-c TimeZone=Europe/Lisbon -c search_path=drv_s,public' });
  const other = connect(setup.relay);
  t.teardown(() => Promise.all([sql.end(), other.end()]));
  const pids = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const [r] = await sql`select current_setting('TimeZone') as tz, (select v from where_am_i) as s, pg_backend_pid() as pid`;
    t.same([r!.tz, r!.s], ['Europe/Lisbon', 'drv_s']);
    pids.add(r!.pid as number);
    await other`select pg_sleep(0.002)`;
  }
  t.ok(pids.size >= 1);
});
