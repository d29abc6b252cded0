// The exposition's label sets are bounded and stable: disconnects by side and a catalogue code,
// per-database and per-user traffic counters, configuration gauges for saturation ratios, a
// build_info, and Node's standard process_* / nodejs_* names without a prefix.

import t from 'tap';
import { Metrics, type MetricsSource } from '../../src/metrics/metrics.js';
import { MAX_LABEL_VALUES } from '../../src/metrics/scraped-counter.js';
import { VERSION } from '../../src/version.js';
import type { PoolTraffic } from '../../src/metrics/metrics.js';

function traffic(over: Partial<PoolTraffic> = {}): PoolTraffic {
  return { assignments: 0, transactions: 0, queries: 0, bytesReceived: 0, bytesSent: 0, transactionTimeUs: 0, queryTimeUs: 0, waitTimeUs: 0, waits: 0, ...over };
}

function source(over: Partial<MetricsSource> = {}): MetricsSource {
  return {
    control: {
      pools: () => [],
      clients: () => [],
      servers: () => [],
      state: () => ({ paused: false, pausedSince: null, autoResumeAt: null, waitingClients: 0, shuttingDown: false, databases: [] }),
      stats: () => [],
      databases: () => [],
      config: () => [{ key: 'max_client_conn', value: '1000', default: '100', changeable: true }],
    },
    counters: () => ({
      clientsAccepted: 0, clientsRejected: 0, transactions: 0, queries: 0, bytesFromClients: 0, bytesToClients: 0,
      cancelsForwarded: 0, cancelsIgnored: 0, serverConnects: 0, serverConnectFailures: 0,
      disconnects: new Map([['client:client_closed', 5], ['server:server_lost', 1], ['client:08P01', 2]]),
      autoResumes: 0, writeGateRejections: new Map(),
    }),
    poolTraffic: () => [
      { database: 'app', user: 'alice', stats: traffic({ transactions: 7, queries: 9, bytesReceived: 100, bytesSent: 2000, waitTimeUs: 1_500_000, waits: 3, queryTimeUs: 250_000, transactionTimeUs: 400_000, assignments: 7 }) },
      { database: 'app', user: 'bob', stats: traffic({ transactions: 1, queries: 1 }) },
      // A retired pool's counters keep adding to the database's total.
      { database: 'app', stats: traffic({ transactions: 2, queries: 2 }) },
    ],
    ...over,
  };
}

function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).sort();
}

t.test('disconnects_total: side and a stable reason code, never free text', async (t) => {
  const text = await new Metrics(source()).metrics();
  t.same(samples(text, 'pgrelay_disconnects_total'), [
    'pgrelay_disconnects_total{side="client",reason="08P01"} 2',
    'pgrelay_disconnects_total{side="client",reason="client_closed"} 5',
    'pgrelay_disconnects_total{side="server",reason="server_lost"} 1',
  ]);
});

t.test('transactions, queries, bytes and wait time per database and user', async (t) => {
  const text = await new Metrics(source()).metrics();
  t.same(samples(text, 'pgrelay_transactions_total'), [
    'pgrelay_transactions_total{database="app",user="(retired)"} 2',
    'pgrelay_transactions_total{database="app",user="alice"} 7',
    'pgrelay_transactions_total{database="app",user="bob"} 1',
  ]);
  t.same(samples(text, 'pgrelay_queries_total').length, 3);
  t.match(text, 'pgrelay_bytes_received_total{database="app",user="alice"} 100');
  t.match(text, 'pgrelay_bytes_sent_total{database="app",user="alice"} 2000');
  t.match(text, 'pgrelay_client_wait_seconds_total{database="app",user="alice"} 1.5');
  t.match(text, 'pgrelay_client_waits_total{database="app",user="alice"} 3');
  t.match(text, 'pgrelay_query_seconds_total{database="app",user="alice"} 0.25');
  t.match(text, 'pgrelay_transaction_seconds_total{database="app",user="alice"} 0.4');
  t.match(text, 'pgrelay_server_assignments_total{database="app",user="alice"} 7');
  t.match(text, '# TYPE pgrelay_transactions_total counter');
});

t.test('label sets are bounded: past the cap, pools share one "other" series', async (t) => {
  const many = Array.from({ length: MAX_LABEL_VALUES + 5 }, (_, i) => ({ database: `db${i}`, user: 'u', stats: traffic({ transactions: 1 }) }));
  const text = await new Metrics(source({ poolTraffic: () => many })).metrics();
  const series = samples(text, 'pgrelay_transactions_total');
  t.equal(series.length, MAX_LABEL_VALUES + 1);
  t.ok(series.includes('pgrelay_transactions_total{database="other",user="other"} 5'));
});

t.test('configuration gauges and build_info, for saturation ratios', async (t) => {
  const dbs = [{ name: 'app', hosts: 'db', ports: '5432', dbname: 'app', forceUser: '', poolSize: 20, minPoolSize: 0, reservePoolSize: 5, serverLifetimeS: 3600, poolMode: 'transaction', maxConnections: 50, currentConnections: 3, currentClientConnections: 9, paused: false, targetSessionAttrs: 'read-write' }];
  const clients = Array.from({ length: 4 }, () => ({}));
  const base = source();
  const text = await new Metrics(source({ control: { ...base.control, databases: () => dbs as never, clients: () => clients as never } })).metrics();
  t.same(samples(text, 'pgrelay_max_client_connections'), ['pgrelay_max_client_connections 1000']);
  t.same(samples(text, 'pgrelay_client_connections'), ['pgrelay_client_connections 4']);
  t.same(samples(text, 'pgrelay_database_pool_size'), ['pgrelay_database_pool_size{database="app"} 20']);
  t.same(samples(text, 'pgrelay_database_reserve_pool_size'), ['pgrelay_database_reserve_pool_size{database="app"} 5']);
  t.same(samples(text, 'pgrelay_database_max_connections'), ['pgrelay_database_max_connections{database="app"} 50']);
  t.same(samples(text, 'pgrelay_build_info'), [`pgrelay_build_info{version="${VERSION}",node_version="${process.version}"} 1`]);
});

t.test("Node's standard process_* and nodejs_* names, unprefixed", async (t) => {
  const text = await new Metrics(source()).metrics();
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  t.notMatch(text, /pgrelay_process_|pgrelay_nodejs_/);
});
