// The Prometheus exposition from a fake source: each metric with its labels and values, counters
// read at scrape time with `counter` TYPE lines, histogram buckets, default process metrics.
// Per-pool traffic, configuration gauges and label bounds: labels.test.ts.

import t from 'tap';
import { Metrics, type MetricsSource, type ProxyCounters } from '../../src/metrics/metrics.js';
import { buildPoolView } from '../../src/metrics/pool-view.js';
import { cappedEntries, MAX_LABEL_VALUES } from '../../src/metrics/scraped-counter.js';
import type { ClientSnapshot, PoolSnapshot, ServerSnapshot, StateSnapshot } from '../../src/control/contract.js';

function pool(database: string, user: string): PoolSnapshot {
  return { database, user, poolMode: 'transaction', clActive: 0, clWaiting: 0, clIdle: 0, svActive: 0, svIdle: 0, svLogin: 0, maxWaitMs: 0, paused: false };
}

function client(id: number, database: string, user: string, state: string, waitMs = 0): ClientSnapshot {
  return {
    id, user, database, state, addr: '127.0.0.1', port: 40000 + id, localAddr: '127.0.0.1', localPort: 6432,
    connectTime: '2024-01-01T00:00:00.000Z', requestTime: '2024-01-01T00:00:00.000Z', waitMs, server: null, applicationName: '',
  };
}

function server(id: number, database: string, user: string, state: string): ServerSnapshot {
  return {
    id, user, database, state, addr: '10.0.0.5', port: 5432, localPort: 50000 + id, connectTime: '2024-01-01T00:00:00.000Z',
    requestTime: '2024-01-01T00:00:00.000Z', closeNeeded: false, client: null, remotePid: 100 + id, applicationName: '', writable: true,
  };
}

function stateSnapshot(globalPaused: boolean, databases: Array<[string, boolean]>): StateSnapshot {
  return {
    paused: globalPaused, pausedSince: null, autoResumeAt: null, waitingClients: 0, shuttingDown: false,
    databases: databases.map(([name, paused]) => ({ name, paused, pausedSince: null, autoResumeAt: null, waitingClients: 0, upstream: null, targetSessionAttrs: 'any', gate: 'any' })),
  };
}

interface Fake {
  source: MetricsSource;
  counters: { -readonly [K in keyof ProxyCounters]: ProxyCounters[K] };
  calls: { clients: number };
  snap: { pools: PoolSnapshot[]; clients: ClientSnapshot[]; servers: ServerSnapshot[]; state: StateSnapshot };
}

function fake(): Fake {
  const snap = {
    pools: [pool('app', 'alice'), pool('app', 'bob'), pool('reports', 'alice')],
    clients: [
      client(1, 'app', 'alice', 'active'),
      client(2, 'app', 'alice', 'active'),
      client(3, 'app', 'alice', 'waiting', 1500),
      client(4, 'app', 'alice', 'waiting', 250),
      client(5, 'app', 'bob', 'idle'),
      client(6, 'reports', 'alice', 'login'),
    ],
    servers: [server(1, 'app', 'alice', 'active'), server(2, 'app', 'alice', 'active'), server(3, 'app', 'bob', 'idle'), server(4, 'reports', 'alice', 'login')],
    state: stateSnapshot(false, [['app', true], ['reports', false]]),
  };
  const counters = {
    clientsAccepted: 10, clientsRejected: 2, transactions: 123, queries: 456, bytesFromClients: 7890, bytesToClients: 98765,
    cancelsForwarded: 3, cancelsIgnored: 1, serverConnects: 7, serverConnectFailures: 4,
    disconnects: new Map([['client:client_closed', 5], ['server:server_lost', 1]]),
    autoResumes: 1, writeGateRejections: new Map([['app', 2]]),
  };
  const calls = { clients: 0 };
  const source: MetricsSource = {
    control: {
      pools: () => snap.pools,
      clients: () => {
        calls.clients++;
        return snap.clients;
      },
      servers: () => snap.servers,
      state: () => snap.state,
      stats: () => [],
      databases: () => [],
      config: () => [],
    },
    counters: () => counters,
    poolTraffic: () => [],
  };
  return { source, counters, calls, snap };
}

/** The sample lines of one metric family: `name{labels} value`. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

t.test('pool gauges: clients and servers by pool and state, waiting and oldest wait', async (t) => {
  const f = fake();
  const text = await new Metrics(f.source).metrics();
  t.match(text, '# TYPE pgrelay_clients gauge');
  t.same(samples(text, 'pgrelay_clients').sort(), [
    'pgrelay_clients{database="app",user="alice",state="active"} 2',
    'pgrelay_clients{database="app",user="alice",state="idle"} 0',
    'pgrelay_clients{database="app",user="alice",state="waiting"} 2',
    'pgrelay_clients{database="app",user="bob",state="active"} 0',
    'pgrelay_clients{database="app",user="bob",state="idle"} 1',
    'pgrelay_clients{database="app",user="bob",state="waiting"} 0',
    'pgrelay_clients{database="reports",user="alice",state="active"} 0',
    'pgrelay_clients{database="reports",user="alice",state="idle"} 0',
    'pgrelay_clients{database="reports",user="alice",state="login"} 1',
    'pgrelay_clients{database="reports",user="alice",state="waiting"} 0',
  ]);
  t.same(samples(text, 'pgrelay_servers').sort(), [
    'pgrelay_servers{database="app",user="alice",state="active"} 2',
    'pgrelay_servers{database="app",user="alice",state="idle"} 0',
    'pgrelay_servers{database="app",user="alice",state="login"} 0',
    'pgrelay_servers{database="app",user="bob",state="active"} 0',
    'pgrelay_servers{database="app",user="bob",state="idle"} 1',
    'pgrelay_servers{database="app",user="bob",state="login"} 0',
    'pgrelay_servers{database="reports",user="alice",state="active"} 0',
    'pgrelay_servers{database="reports",user="alice",state="idle"} 0',
    'pgrelay_servers{database="reports",user="alice",state="login"} 1',
  ]);
  t.same(samples(text, 'pgrelay_clients_waiting').sort(), [
    'pgrelay_clients_waiting{database="app",user="alice"} 2',
    'pgrelay_clients_waiting{database="app",user="bob"} 0',
    'pgrelay_clients_waiting{database="reports",user="alice"} 0',
  ]);
  t.same(samples(text, 'pgrelay_client_oldest_wait_seconds').sort(), [
    'pgrelay_client_oldest_wait_seconds{database="app",user="alice"} 1.5',
    'pgrelay_client_oldest_wait_seconds{database="app",user="bob"} 0',
    'pgrelay_client_oldest_wait_seconds{database="reports",user="alice"} 0',
  ]);
  t.equal(f.calls.clients, 1, 'one clients() snapshot per scrape, shared by the gauges');
});

t.test('gauges follow the snapshots from one scrape to the next', async (t) => {
  const f = fake();
  const m = new Metrics(f.source);
  await m.metrics();
  f.snap.pools = [pool('app', 'alice')];
  f.snap.clients = [client(1, 'app', 'alice', 'idle')];
  f.snap.servers = [];
  f.snap.state = stateSnapshot(true, [['app', false]]);
  const text = await m.metrics();
  t.equal(f.calls.clients, 2);
  t.same(samples(text, 'pgrelay_clients').sort(), [
    'pgrelay_clients{database="app",user="alice",state="active"} 0',
    'pgrelay_clients{database="app",user="alice",state="idle"} 1',
    'pgrelay_clients{database="app",user="alice",state="waiting"} 0',
  ], 'pools that are gone leave no series behind');
  t.same(samples(text, 'pgrelay_paused').sort(), ['pgrelay_paused{database="*"} 1', 'pgrelay_paused{database="app"} 0']);
});

t.test('paused gauge: 1/0 per database, plus database="*" for the global pause', async (t) => {
  const f = fake();
  f.snap.state = stateSnapshot(false, [['app', true], ['reports', false], ['*', false]]);
  const text = await new Metrics(f.source).metrics();
  t.match(text, '# TYPE pgrelay_paused gauge');
  t.same(samples(text, 'pgrelay_paused').sort(), [
    'pgrelay_paused{database="*"} 0',
    'pgrelay_paused{database="app"} 1',
    'pgrelay_paused{database="reports"} 0',
  ], 'the fallback [databases] entry "*" does not overwrite the global pause');
});

t.test('counters are read from the plain fields at scrape time and typed counter', async (t) => {
  const f = fake();
  const m = new Metrics(f.source);
  let text = await m.metrics();
  const expected: Array<[string, string]> = [
    ['pgrelay_clients_accepted_total', 'pgrelay_clients_accepted_total 10'],
    ['pgrelay_clients_rejected_total', 'pgrelay_clients_rejected_total 2'],
    ['pgrelay_server_connects_total', 'pgrelay_server_connects_total 7'],
    ['pgrelay_server_connect_failures_total', 'pgrelay_server_connect_failures_total 4'],
    ['pgrelay_auto_resumes_total', 'pgrelay_auto_resumes_total 1'],
  ];
  for (const [name, line] of expected) {
    t.match(text, `# TYPE ${name} counter`, `${name} is a counter`);
    t.same(samples(text, name), [line], name);
  }
  t.match(text, '# TYPE pgrelay_disconnects_total counter');
  t.same(samples(text, 'pgrelay_disconnects_total'), [
    'pgrelay_disconnects_total{side="client",reason="client_closed"} 5',
    'pgrelay_disconnects_total{side="server",reason="server_lost"} 1',
  ]);
  t.same(samples(text, 'pgrelay_write_gate_rejections_total'), ['pgrelay_write_gate_rejections_total{database="app"} 2']);
  t.same(samples(text, 'pgrelay_cancel_requests_total'), [
    'pgrelay_cancel_requests_total{result="forwarded"} 3',
    'pgrelay_cancel_requests_total{result="ignored"} 1',
  ]);

  // The hot path bumps its fields; the next scrape shows the new totals (not their sum with the old).
  f.counters.clientsAccepted = 13;
  f.counters.disconnects = new Map([['client:client_closed', 6], ['server:server_lost', 1], ['server:shutdown', 2]]);
  f.counters.writeGateRejections = new Map([['app', 2], ['reports', 1]]);
  text = await m.metrics();
  t.same(samples(text, 'pgrelay_clients_accepted_total'), ['pgrelay_clients_accepted_total 13']);
  t.same(samples(text, 'pgrelay_disconnects_total'), [
    'pgrelay_disconnects_total{side="client",reason="client_closed"} 6',
    'pgrelay_disconnects_total{side="server",reason="server_lost"} 1',
    'pgrelay_disconnects_total{side="server",reason="shutdown"} 2',
  ]);
  t.same(samples(text, 'pgrelay_write_gate_rejections_total'), [
    'pgrelay_write_gate_rejections_total{database="app"} 2',
    'pgrelay_write_gate_rejections_total{database="reports"} 1',
  ]);
});

t.test('empty label maps expose the family with no samples', async (t) => {
  const f = fake();
  f.counters.disconnects = new Map();
  f.counters.writeGateRejections = new Map();
  const text = await new Metrics(f.source).metrics();
  t.match(text, '# TYPE pgrelay_disconnects_total counter');
  t.same(samples(text, 'pgrelay_disconnects_total'), []);
});

t.test('histograms: wait, drain and paused time show buckets, sum and count', async (t) => {
  const m = new Metrics(fake().source);
  m.observeWait(0.003, 'app');
  m.observeWait(2, 'app');
  m.observeDrain(1.2, 'drained');
  m.observeDrain(30, 'timeout');
  m.observePaused(7);
  const text = await m.metrics();

  t.match(text, '# TYPE pgrelay_client_wait_seconds histogram');
  t.ok(text.includes('pgrelay_client_wait_seconds_bucket{le="0.001",database="app"} 0'));
  t.ok(text.includes('pgrelay_client_wait_seconds_bucket{le="0.005",database="app"} 1'));
  t.ok(text.includes('pgrelay_client_wait_seconds_bucket{le="2.5",database="app"} 2'));
  t.ok(text.includes('pgrelay_client_wait_seconds_bucket{le="+Inf",database="app"} 2'));
  t.ok(text.includes('pgrelay_client_wait_seconds_sum{database="app"} 2.003'));
  t.ok(text.includes('pgrelay_client_wait_seconds_count{database="app"} 2'));

  t.match(text, '# TYPE pgrelay_pause_drain_seconds histogram');
  t.ok(text.includes('pgrelay_pause_drain_seconds_bucket{le="1",result="drained"} 0'));
  t.ok(text.includes('pgrelay_pause_drain_seconds_bucket{le="2.5",result="drained"} 1'));
  t.ok(text.includes('pgrelay_pause_drain_seconds_bucket{le="30",result="timeout"} 1'));
  t.ok(text.includes('pgrelay_pause_drain_seconds_count{result="timeout"} 1'));

  t.match(text, '# TYPE pgrelay_pause_duration_seconds histogram');
  t.ok(text.includes('pgrelay_pause_duration_seconds_bucket{le="5"} 0'));
  t.ok(text.includes('pgrelay_pause_duration_seconds_bucket{le="10"} 1'));
  t.ok(text.includes('pgrelay_pause_duration_seconds_sum 7'));
});

t.test('default process metrics on the same registry, under their standard names; content type', async (t) => {
  const m = new Metrics(fake().source);
  const text = await m.metrics();
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.match(text, `# TYPE ${name} `, name);
  }
  t.match(m.contentType, /^text\/plain; version=0\.0\.4/);
});

t.test('instances are independent (own registry each)', async (t) => {
  const a = new Metrics(fake().source);
  const b = new Metrics(fake().source);
  a.observePaused(1);
  t.ok((await a.metrics()).includes('pgrelay_pause_duration_seconds_count 1'));
  t.ok((await b.metrics()).includes('pgrelay_pause_duration_seconds_count 0'));
});

t.test('a snapshot that throws fails the scrape, and the next scrape recovers', async (t) => {
  const f = fake();
  const m = new Metrics(f.source);
  const clients = f.source.control.clients;
  (f.source.control as { clients: typeof clients }).clients = () => {
    throw new Error('boom');
  };
  await t.rejects(m.metrics(), /boom/);
  (f.source.control as { clients: typeof clients }).clients = clients;
  t.match(await m.metrics(), 'pgrelay_clients{database="app",user="alice",state="active"} 2');
});

t.test('buildPoolView: counts without prom-client', async (t) => {
  const view = buildPoolView({
    pools: () => [pool('app', 'alice')],
    clients: () => [client(1, 'app', 'alice', 'waiting', 10), client(2, 'other', 'eve', 'active')],
    servers: () => [],
    state: () => stateSnapshot(true, []),
  });
  const app = view.pools.get('app\u0000alice');
  t.equal(app?.waiting, 1);
  t.equal(app?.oldestWaitSeconds, 0.01);
  t.equal(view.pools.get('other\u0000eve')?.clients.get('active'), 1, 'a client of a pool not listed still counts');
  t.same([...view.paused], [['*', true]]);
});

t.test('cappedEntries: bounded label values, overflow summed under "other"', async (t) => {
  const many = Array.from({ length: MAX_LABEL_VALUES + 3 }, (_, i) => [`reason ${i}`, 1] as const);
  const capped = cappedEntries(many);
  t.equal(capped.length, MAX_LABEL_VALUES + 1);
  t.same(capped.at(-1), ['other', 3]);
  t.same(cappedEntries([['a', 1], ['other', 2]]), [['a', 1], ['other', 2]], 'a literal "other" joins the overflow');
  t.same(cappedEntries([]), []);
});
