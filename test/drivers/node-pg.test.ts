// node-postgres (pg) through pgrelay in transaction pooling, pool of two, eight clients: pg
// prepares every query that has a name (Parse once per connection, then Bind only), so its
// clients move between servers with their statements. Also: the same name prepared again with
// another text after a Close, many prepared executions inside one transaction, a failing Parse,
// eviction with a small max_prepared_statements, and the options startup parameter.

import t from 'tap';
import pg from 'pg';
import { metric, startDriverSetup } from './driver-harness.js';
import type { Relay } from '../harness/relay.js';

const setup = await startDriverSetup();
t.teardown(() => setup.stop());

async function connect(relay: Relay, options?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: relay.url(), ...(options !== undefined ? { options } : {}) } as pg.ClientConfig);
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

t.test('named queries across many transactions and servers', async (t) => {
  const clients = await Promise.all(Array.from({ length: 8 }, () => connect(setup.relay)));
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const pids = new Set<number>();
  const errors: string[] = [];
  await Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; n < 40; n++) {
        try {
          const r = await c.query({ name: 'by_id', text: 'select v, pg_backend_pid() as pid from drv where id = $1', values: [(i * 7 + n) % 100 + 1] });
          if (r.rows[0].v !== `v${((i * 7 + n) % 100) + 1}`) errors.push(`client ${i}: wrong row ${r.rows[0].v}`);
          pids.add(r.rows[0].pid);
          const s = await c.query({ name: `own_${i}`, text: `select ${i} as me` });
          if (s.rows[0].me !== i) errors.push(`client ${i}: got ${s.rows[0].me}`);
        } catch (err) {
          errors.push(`client ${i}: ${(err as Error).message}`);
        }
      }
    }),
  );
  t.same(errors, [], 'every execution answered right');
  t.equal(pids.size, 2, 'the clients ran on both servers');
  t.ok((await metric(setup.relay, 'pgrelay_prepared_statement_hits_total')) > 0, 'most executions found the statement prepared');
});

t.test('the same name prepared again with another text after a Close', async (t) => {
  const c = await connect(setup.relay);
  t.teardown(() => c.end());
  t.equal((await c.query({ name: 'reused', text: 'select 1 as n' })).rows[0].n, 1);
  // pg has no API for Close; its connection sends one, and pg forgets the name.
  const conn = (c as unknown as { connection: { close(m: object): void; sync(): void; parsedStatements: Record<string, string> } }).connection;
  await new Promise<void>((resolve, reject) => {
    conn.close({ type: 'S', name: 'reused' });
    conn.sync();
    (c as unknown as { connection: NodeJS.EventEmitter }).connection.once('readyForQuery', () => resolve());
    (c as unknown as { connection: NodeJS.EventEmitter }).connection.once('errorMessage', reject);
  });
  delete conn.parsedStatements['reused'];
  t.equal((await c.query({ name: 'reused', text: "select 'two' as n" })).rows[0].n, 'two');
  t.equal((await c.query({ name: 'reused', text: "select 'two' as n" })).rows[0].n, 'two', 'and it stays the new text');
});

t.test('a batch of prepared executions inside one transaction', async (t) => {
  const c = await connect(setup.relay);
  t.teardown(() => c.end());
  await c.query('begin');
  const rows = await Promise.all(Array.from({ length: 50 }, (_, i) => c.query({ name: 'batch', text: 'select v from drv where id = $1', values: [i + 1] })));
  await c.query('commit');
  t.same(
    rows.map((r) => r.rows[0].v),
    Array.from({ length: 50 }, (_, i) => `v${i + 1}`),
  );
});

t.test('a failing Parse is the right error and the connection goes on', async (t) => {
  const c = await connect(setup.relay);
  t.teardown(() => c.end());
  await t.rejects(c.query({ name: 'broken', text: 'selec 1' }), { code: '42601' });
  await t.rejects(c.query({ name: 'missing_table', text: 'select * from no_such_table' }), { code: '42P01' });
  t.equal((await c.query({ name: 'after', text: 'select 42 as n' })).rows[0].n, 42);
  t.equal((await c.query({ name: 'broken', text: 'select 43 as n' })).rows[0].n, 43, 'the failed name was left free');
});

t.test('max_prepared_statements = 3: statements evicted and prepared again', async (t) => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => connect(setup.small)));
  t.teardown(() => Promise.all(clients.map((c) => c.end())));
  const errors: string[] = [];
  await Promise.all(
    clients.map(async (c, i) => {
      for (let n = 0; n < 30; n++) {
        const k = (n + i) % 8;
        const r = await c.query({ name: `q${k}`, text: `select ${k} as k, $1::int as n`, values: [n] }).catch((e: Error) => e);
        if (r instanceof Error) errors.push(r.message);
        else if (r.rows[0].k !== k || r.rows[0].n !== n) errors.push(`client ${i}: ${JSON.stringify(r.rows[0])}`);
      }
    }),
  );
  t.same(errors, []);
  t.ok((await metric(setup.small, 'pgrelay_prepared_statement_evictions_total')) > 0, 'statements were evicted');
  const held = await clients[0]!.query(`select count(*)::int as n from pg_prepared_statements`);
  t.ok(held.rows[0].n <= 3 + 1, `a server holds about the bound (${held.rows[0].n})`);
});

t.test('options=-c TimeZone=... -c search_path=... hold in every transaction on every server', async (t) => {
  const c = await connect(setup.relay, '-c TimeZone=America/Denver -c search_path=drv_s,public');
  const others = await Promise.all(Array.from({ length: 3 }, () => connect(setup.relay)));
  t.teardown(() => Promise.all([c, ...others].map((x) => x.end())));
  const pids = new Set<number>();
  for (let i = 0; i < 20; i++) {
    await Promise.all(others.map((o) => o.query('select pg_sleep(0.002)')));
    const r = await c.query('select current_setting($1) as tz, (select v from where_am_i) as s, pg_backend_pid() as pid', ['TimeZone']);
    t.equal(r.rows[0].tz, 'America/Denver');
    t.equal(r.rows[0].s, 'drv_s');
    pids.add(r.rows[0].pid);
    const o = await others[i % 3]!.query('show timezone');
    t.not(o.rows[0].TimeZone, 'America/Denver', "the others never get this client's settings");
  }
  t.equal(pids.size, 2, 'on both servers');
});
