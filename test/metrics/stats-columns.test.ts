// SHOW STATS through pgrelay in front of real PostgreSQL: extended-protocol queries are counted as
// PgBouncer counts them (one per Sync), total_query_time and the avg_ columns carry real values in
// microseconds, and the per-second columns are rates over the last stats_period. The Prometheus
// counters read the same totals.

import t from 'tap';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.stop());
const relay = await startRelay(
  { host: '127.0.0.1', port: cluster.port },
  {
    settings: { adminUsers: ['admin'], statsPeriodMs: 1000 } as never,
    databases: { postgres: { hosts: [{ host: '127.0.0.1', port: cluster.port }] } },
    admin: true,
  },
);
t.teardown(() => relay.stop());

async function showStats(): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: relay.url({ user: 'admin', database: 'pgbouncer' }) });
  await c.connect();
  try {
    const r = await c.query({ text: 'SHOW STATS', rowMode: 'array' });
    const names = r.fields.map((f) => f.name);
    const row = r.rows.find((x) => x[0] === 'postgres') as string[];
    return Object.fromEntries(names.map((n, i) => [n, String(row[i])]));
  } finally {
    await c.end();
  }
}

const num = (s: Record<string, string>, k: string): number => Number(s[k]);

t.test('extended-protocol queries count, query time is measured in microseconds', async (t) => {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  const before = await showStats();
  // 5 extended-protocol queries (a parameter makes pg use Parse/Bind/Execute/Sync) and 3 simple ones.
  for (let i = 0; i < 5; i++) await c.query('select $1::int', [i]);
  for (let i = 0; i < 3; i++) await c.query('select 1');
  await c.query('select pg_sleep(0.2)');
  await c.end();
  const after = await showStats();
  const queries = num(after, 'total_query_count') - num(before, 'total_query_count');
  t.equal(queries, 9, `every Sync and every Query is one query, as in PgBouncer (counted ${queries})`);
  t.equal(num(after, 'total_xact_count') - num(before, 'total_xact_count'), 9);
  const queryTime = num(after, 'total_query_time') - num(before, 'total_query_time');
  t.ok(queryTime >= 200_000, `total_query_time grew by the 0.2 s sleep at least (${queryTime} µs)`);
  t.ok(queryTime < 10_000_000, 'and is in microseconds, not nanoseconds');
  // Transaction time is kept in whole milliseconds: allow 1 ms per transaction.
  t.ok(num(after, 'total_query_time') <= num(after, 'total_xact_time') + 1000 * num(after, 'total_xact_count'), 'a query lasts no longer than its transaction');
});

t.test('per-second columns are rates over the last stats_period; averages are per item over it', async (t) => {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  // Steady traffic across two periods of 1 s.
  const until = Date.now() + 2600;
  let n = 0;
  while (Date.now() < until) {
    await c.query('select $1::int', [n++]);
    await new Promise((r) => setTimeout(r, 5));
  }
  const s = await showStats();
  await c.end();
  t.ok(num(s, 'avg_xact_count') > 10, `avg_xact_count is transactions per second (${s['avg_xact_count']})`);
  t.ok(num(s, 'avg_xact_count') < n, 'a rate, not a total');
  t.ok(num(s, 'avg_query_count') >= num(s, 'avg_xact_count'));
  t.ok(num(s, 'avg_recv') > 0 && num(s, 'avg_sent') > 0, 'bytes per second');
  t.ok(num(s, 'avg_server_assignment_count') >= 0);
  t.ok(num(s, 'avg_xact_time') > 0 && num(s, 'avg_xact_time') < 1_000_000, `avg_xact_time in µs (${s['avg_xact_time']})`);
  t.ok(num(s, 'avg_query_time') > 0 && num(s, 'avg_query_time') <= num(s, 'avg_xact_time') + 1000, `avg_query_time in µs (${s['avg_query_time']})`);
});

t.test('Prometheus: queries, transactions, bytes and wait time per database and user', async (t) => {
  const text = await (await fetch(`${relay.adminUrl}/metrics`)).text();
  const stats = await showStats();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  t.equal(value(/^pgrelay_queries_total\{database="postgres",user="postgres"\} (\S+)$/m), num(stats, 'total_query_count'));
  t.equal(value(/^pgrelay_transactions_total\{database="postgres",user="postgres"\} (\S+)$/m), num(stats, 'total_xact_count'));
  t.equal(value(/^pgrelay_bytes_received_total\{database="postgres",user="postgres"\} (\S+)$/m), num(stats, 'total_received'));
  t.ok(value(/^pgrelay_bytes_sent_total\{database="postgres",user="postgres"\} (\S+)$/m) > 0);
  t.ok(value(/^pgrelay_query_seconds_total\{database="postgres",user="postgres"\} (\S+)$/m) >= 0.2, 'query seconds include the sleep');
  t.ok(value(/^pgrelay_client_wait_seconds_total\{database="postgres",user="postgres"\} (\S+)$/m) >= 0);
});
