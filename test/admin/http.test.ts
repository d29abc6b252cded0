// The HTTP admin API against a fake Control (calls recorded, results canned), through inject():
// routes, bearer token, status codes and JSON errors naming their field; one test on a real port.

import t from 'tap';
import { Writable } from 'node:stream';
import net from 'node:net';
import { pino } from 'pino';
import { buildAdminServer, checkAdminBinding } from '../../src/admin/http.js';
import { isLoopback } from '../../src/admin/http-auth.js';
import { AdminError, type Control, type PauseResult, type ResumeResult, type PrimaryHintResult, type StateSnapshot } from '../../src/control/contract.js';
import { Metrics } from '../../src/metrics/metrics.js';

const TOKEN = 's3cret-token';

interface Call {
  verb: string;
  args: unknown;
}

function pauseResult(result: PauseResult['result'], database: string | null = null): PauseResult {
  return {
    result,
    database,
    drainMs: 12,
    serversLeft: result === 'timeout' ? 1 : 0,
    inTransaction: result === 'timeout' ? [{ client: 7, user: 'alice', database: 'app', addr: '10.1.1.1', port: 41000, idleMs: 900 }] : [],
    autoResumeAt: '2024-01-01T00:01:00.000Z',
  };
}

const STATE: StateSnapshot = {
  paused: false, pausedSince: null, autoResumeAt: null, waitingClients: 0, shuttingDown: false,
  databases: [{ name: 'app', paused: false, pausedSince: null, autoResumeAt: null, waitingClients: 0, upstream: null, targetSessionAttrs: 'read-write', gate: 'read-write' }],
};

class FakeControl implements Control {
  calls: Call[] = [];
  pauseOutcome: PauseResult['result'] = 'drained';
  isReady = true;
  fail: Error | null = null;

  private check(database: string | undefined): void {
    if (this.fail !== null) throw this.fail;
    if (database !== undefined && database !== 'app') throw new AdminError('PGRELAY_NO_SUCH_DATABASE', `no such database: ${database}`, 404);
  }

  async pause(opts?: { database?: string; timeoutMs?: number; node?: string }): Promise<PauseResult> {
    this.calls.push({ verb: 'pause', args: opts });
    this.check(opts?.database);
    return pauseResult(this.pauseOutcome, opts?.database ?? null);
  }
  primaryHint(opts: { node: string; role?: string }): PrimaryHintResult {
    this.calls.push({ verb: 'primaryHint', args: opts });
    return { node: opts.node, databases: ['app'], paused: true, verifying: true };
  }
  resume(opts?: { database?: string }): ResumeResult {
    this.calls.push({ verb: 'resume', args: opts });
    this.check(opts?.database);
    return { database: opts?.database ?? null, wasPaused: true, pausedMs: 1500, waitingClients: 3 };
  }
  reconnect(database?: string): number {
    this.calls.push({ verb: 'reconnect', args: database });
    this.check(database);
    return 4;
  }
  async waitClose(): Promise<void> {}
  kill(): number {
    return 0;
  }
  reload(): void {}
  shutdown(): void {}
  state(): StateSnapshot {
    if (this.fail !== null) throw this.fail;
    return STATE;
  }
  pools() {
    return [{ database: 'app', user: 'alice', poolMode: 'transaction', clActive: 1, clWaiting: 0, clIdle: 2, svActive: 1, svIdle: 1, svLogin: 0, maxWaitMs: 0, paused: false }];
  }
  clients() {
    return [];
  }
  servers() {
    return [];
  }
  databases() {
    return [];
  }
  stats() {
    return [{ database: 'app', serverAssignments: 1, transactions: 2, queries: 3, bytesReceived: 4, bytesSent: 5, transactionTimeUs: 6, queryTimeUs: 5, waitTimeUs: 7, waits: 8 }];
  }
  config() {
    return [];
  }
  users() {
    return [];
  }
  version(): string {
    return 'pgrelay 0.0.0-test';
  }
  ready(): boolean {
    return this.isReady;
  }
}

function metricsFor(control: Control): Metrics {
  return new Metrics({
    control,
    counters: () => ({
      clientsAccepted: 1, clientsRejected: 0, transactions: 42, queries: 0, bytesFromClients: 0, bytesToClients: 0, cancelsForwarded: 0,
      cancelsIgnored: 0, serverConnects: 0, serverConnectFailures: 0, disconnects: new Map(), autoResumes: 0, writeGateRejections: new Map(),
    }),
    poolTraffic: () => [
      { database: 'app', user: 'alice', stats: { assignments: 0, transactions: 42, queries: 0, bytesReceived: 0, bytesSent: 0, transactionTimeUs: 0, queryTimeUs: 0, waitTimeUs: 0, waits: 0 } },
    ],
  });
}

function setup(t: { teardown(fn: () => unknown): void }, opts: { token?: string | null; metrics?: boolean } = {}) {
  const control = new FakeControl();
  const app = buildAdminServer({ control, metrics: opts.metrics === false ? null : metricsFor(control), token: opts.token ?? null });
  t.teardown(() => app.close());
  return { control, app };
}

function errorOf(body: string): { code: string; message: string; field?: string } {
  return (JSON.parse(body) as { error: { code: string; message: string; field?: string } }).error;
}

t.test('POST /v1/pause: query string, JSON body, form body; 200 with the PauseResult', async (t) => {
  const { control, app } = setup(t);
  let res = await app.inject({ method: 'POST', url: '/v1/pause?database=app&timeout_ms=5000&node=10.0.0.5:5432' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json/);
  t.same(res.json(), pauseResult('drained', 'app'));
  t.same(control.calls.at(-1), { verb: 'pause', args: { database: 'app', timeoutMs: 5000, node: '10.0.0.5:5432', by: 'hook (node 10.0.0.5:5432) via http 127.0.0.1' } });

  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: { database: 'app', timeout_ms: 0, node: '[::1]:5433' } });
  t.equal(res.statusCode, 200);
  t.same(control.calls.at(-1), { verb: 'pause', args: { database: 'app', timeoutMs: 0, node: '[::1]:5433', by: 'hook (node [::1]:5433) via http 127.0.0.1' } });

  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: 'database=app&timeout_ms=10', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.equal(res.statusCode, 200, 'curl -d');
  t.same(control.calls.at(-1), { verb: 'pause', args: { database: 'app', timeoutMs: 10, by: 'http 127.0.0.1' } });

  res = await app.inject({ method: 'POST', url: '/v1/pause' });
  t.equal(res.statusCode, 200, 'no body, no query: every database');
  t.same(control.calls.at(-1), { verb: 'pause', args: { by: 'http 127.0.0.1' } });

  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: '', headers: { 'content-type': 'application/json' } });
  t.equal(res.statusCode, 200, 'an empty JSON body is no body');

  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: { database: null } });
  t.equal(res.statusCode, 200, 'JSON null means not given');
  t.same(control.calls.at(-1), { verb: 'pause', args: { by: 'http 127.0.0.1' } });
});

t.test('POST /v1/pause: resumed and ignored are 200, timeout is 504 listing the clients in a transaction', async (t) => {
  const { control, app } = setup(t);
  for (const outcome of ['resumed', 'ignored'] as const) {
    control.pauseOutcome = outcome;
    const res = await app.inject({ method: 'POST', url: '/v1/pause' });
    t.equal(res.statusCode, 200, outcome);
    t.equal(res.json().result, outcome);
  }
  control.pauseOutcome = 'timeout';
  const res = await app.inject({ method: 'POST', url: '/v1/pause?timeout_ms=100' });
  t.equal(res.statusCode, 504);
  t.same(res.json(), pauseResult('timeout'));
  t.equal(res.json().inTransaction[0].client, 7);
});

t.test('POST /v1/resume and /v1/reconnect', async (t) => {
  const { control, app } = setup(t);
  let res = await app.inject({ method: 'POST', url: '/v1/resume', payload: { database: 'app' } });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { database: 'app', wasPaused: true, pausedMs: 1500, waitingClients: 3 });
  t.same(control.calls.at(-1), { verb: 'resume', args: { database: 'app', by: 'http 127.0.0.1' } });

  res = await app.inject({ method: 'POST', url: '/v1/resume' });
  t.same(control.calls.at(-1), { verb: 'resume', args: { by: 'http 127.0.0.1' } });
  t.equal(res.json().database, null);

  res = await app.inject({ method: 'POST', url: '/v1/reconnect?database=app' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), { database: 'app', servers: 4 });
  t.same(control.calls.at(-1), { verb: 'reconnect', args: 'app' });

  res = await app.inject({ method: 'POST', url: '/v1/reconnect' });
  t.same(res.json(), { database: null, servers: 4 });
  t.same(control.calls.at(-1), { verb: 'reconnect', args: undefined });
});

t.test('GET snapshots: lists wrapped in items, state as is', async (t) => {
  const { control, app } = setup(t);
  t.same((await app.inject('/v1/state')).json(), STATE);
  t.same((await app.inject('/v1/pools')).json(), { items: control.pools() });
  t.same((await app.inject('/v1/clients')).json(), { items: [] });
  t.same((await app.inject('/v1/servers')).json(), { items: [] });
  t.same((await app.inject('/v1/databases')).json(), { items: [] });
  t.same((await app.inject('/v1/stats')).json(), { items: control.stats() });
  t.same(control.calls, [], 'reads call no verb');
});

t.test('health: live always, ready follows control.ready()', async (t) => {
  const { control, app } = setup(t);
  let res = await app.inject('/health/live');
  t.equal(res.statusCode, 200);
  t.same(res.json(), { status: 'ok' });
  res = await app.inject('/health/ready');
  t.equal(res.statusCode, 200);
  control.isReady = false;
  res = await app.inject('/health/ready');
  t.equal(res.statusCode, 503);
  t.equal(errorOf(res.body).code, 'PGRELAY_NOT_READY');
  t.equal((await app.inject('/health/live')).statusCode, 200, 'still live');
});

t.test('GET /metrics: Prometheus text with its content type; 404 JSON when disabled', async (t) => {
  const { app } = setup(t);
  const res = await app.inject('/metrics');
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(res.body, /^pgrelay_transactions_total\{database="app",user="alice"\} 42$/m);
  t.match(res.body, '# TYPE pgrelay_clients gauge');

  const off = setup(t, { metrics: false }).app;
  const res2 = await off.inject('/metrics');
  t.equal(res2.statusCode, 404);
  t.same(errorOf(res2.body), { code: 'PGRELAY_NOT_FOUND', message: 'metrics are disabled' });
});

t.test('bearer token: required on the API, not on health and metrics', async (t) => {
  const { control, app } = setup(t, { token: TOKEN });
  for (const [method, url] of [['POST', '/v1/pause'], ['POST', '/v1/resume'], ['POST', '/v1/reconnect'], ['GET', '/v1/state'], ['GET', '/v1/pools'], ['GET', '/v1/stats']] as const) {
    const res = await app.inject({ method, url });
    t.equal(res.statusCode, 401, `${method} ${url} without a token`);
    t.equal(errorOf(res.body).code, 'PGRELAY_UNAUTHORIZED');
    t.equal(res.headers['www-authenticate'], 'Bearer realm="pgrelay"');
  }
  t.same(control.calls, [], 'no verb ran');

  for (const authorization of [`Bearer wrong`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ', '']) {
    const res = await app.inject({ method: 'POST', url: '/v1/pause', headers: { authorization } });
    t.equal(res.statusCode, 401, `refused: ${JSON.stringify(authorization)}`);
  }
  t.same(control.calls, []);

  let res = await app.inject({ method: 'POST', url: '/v1/pause', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.statusCode, 200, 'right token');
  res = await app.inject({ method: 'GET', url: '/v1/state', headers: { authorization: `bearer ${TOKEN}` } });
  t.equal(res.statusCode, 200, 'scheme is case-insensitive');

  t.equal((await app.inject('/health/live')).statusCode, 200);
  t.equal((await app.inject('/health/ready')).statusCode, 200);
  t.equal((await app.inject('/metrics')).statusCode, 200);

  res = await app.inject('/v1/nope');
  t.equal(res.statusCode, 401, 'unknown routes need the token too');
  res = await app.inject({ url: '/v1/nope', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.statusCode, 404);
});

t.test('an empty token means no token', async (t) => {
  const { app } = setup(t, { token: '' });
  t.equal((await app.inject('/v1/state')).statusCode, 200);
});

t.test('400 names the field', async (t) => {
  const { control, app } = setup(t);
  const cases: Array<[string, string | object | undefined, string, RegExp]> = [
    ['/v1/pause?timeout_ms=abc', undefined, 'timeout_ms', /non-negative integer/],
    ['/v1/pause?timeout_ms=-1', undefined, 'timeout_ms', /non-negative integer/],
    ['/v1/pause?timeout_ms=1.5', undefined, 'timeout_ms', /non-negative integer/],
    ['/v1/pause?timeout_ms=99999999999', undefined, 'timeout_ms', /at most 2147483647/],
    ['/v1/pause', { timeout_ms: 1.5 }, 'timeout_ms', /non-negative integer/],
    ['/v1/pause', { timeout_ms: true }, 'timeout_ms', /non-negative integer/],
    ['/v1/pause', { database: 5 }, 'database', /must be a string/],
    ['/v1/pause', { database: ['a'] }, 'database', /must be a string/],
    ['/v1/pause', { database: '' }, 'database', /must not be empty/],
    ['/v1/pause', { node: 'db1' }, 'node', /host:port/],
    ['/v1/pause', { node: 'db1:99999' }, 'node', /host:port/],
    ['/v1/pause', { timeoutMs: 10 }, 'timeoutMs', /unknown field "timeoutMs" in the body; expected database, timeout_ms, node/],
    ['/v1/pause?force=1', undefined, 'force', /unknown field "force" in the query string/],
    ['/v1/pause?database=a&database=b', undefined, 'database', /more than once/],
    ['/v1/pause?database=app', { database: 'app' }, 'database', /both the query string and the body/],
    ['/v1/pause', [1, 2], 'body', /JSON object/],
    ['/v1/pause', '"app"', 'body', /JSON object/],
    ['/v1/resume', { database: 1 }, 'database', /must be a string/],
    ['/v1/resume', { timeout_ms: 1 }, 'timeout_ms', /unknown field/],
    ['/v1/reconnect?db=app', undefined, 'db', /unknown field/],
  ];
  for (const [url, payload, field, message] of cases) {
    const res = await app.inject({
      method: 'POST',
      url,
      ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json' } }),
    });
    const name = `${url} ${JSON.stringify(payload) ?? ''}`;
    t.equal(res.statusCode, 400, name);
    const err = errorOf(res.body);
    t.equal(err.code, 'PGRELAY_BAD_REQUEST', name);
    t.equal(err.field, field, name);
    t.match(err.message, message, name);
  }
  t.same(control.calls, [], 'control was never called with bad input');

  let res = await app.inject({ method: 'POST', url: '/v1/pause', payload: '{"database":', headers: { 'content-type': 'application/json' } });
  t.same(errorOf(res.body), { code: 'PGRELAY_BAD_REQUEST', message: 'the body is not valid JSON', field: 'body' });
  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: 'database=a&database=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.equal(errorOf(res.body).field, 'database');
});

t.test('other client errors are JSON too: media type, body size', async (t) => {
  const { app } = setup(t);
  let res = await app.inject({ method: 'POST', url: '/v1/pause', payload: '<pause/>', headers: { 'content-type': 'application/xml' } });
  t.equal(res.statusCode, 415);
  t.equal(errorOf(res.body).code, 'PGRELAY_UNSUPPORTED_MEDIA_TYPE');
  res = await app.inject({ method: 'POST', url: '/v1/pause', payload: JSON.stringify({ database: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } });
  t.equal(res.statusCode, 413);
  t.equal(errorOf(res.body).code, 'PGRELAY_PAYLOAD_TOO_LARGE');
});

t.test('AdminError from control keeps its status and code', async (t) => {
  const { app } = setup(t);
  let res = await app.inject({ method: 'POST', url: '/v1/pause?database=nope' });
  t.equal(res.statusCode, 404);
  t.same(errorOf(res.body), { code: 'PGRELAY_NO_SUCH_DATABASE', message: 'no such database: nope' });
  res = await app.inject({ method: 'POST', url: '/v1/resume', payload: { database: 'nope' } });
  t.equal(res.statusCode, 404);
  res = await app.inject({ method: 'POST', url: '/v1/reconnect?database=nope' });
  t.equal(res.statusCode, 404);
  t.equal(errorOf(res.body).code, 'PGRELAY_NO_SUCH_DATABASE');
});

t.test('unknown route 404, wrong method 405 with Allow, both JSON', async (t) => {
  const { app } = setup(t);
  let res = await app.inject('/v2/state');
  t.equal(res.statusCode, 404);
  t.equal(errorOf(res.body).code, 'PGRELAY_NOT_FOUND');
  t.match(res.headers['content-type'], /^application\/json/);
  res = await app.inject({ method: 'GET', url: '/v1/pause' });
  t.equal(res.statusCode, 405);
  t.equal(errorOf(res.body).code, 'PGRELAY_METHOD_NOT_ALLOWED');
  t.equal(res.headers.allow, 'POST');
  res = await app.inject({ method: 'DELETE', url: '/v1/state?x=1' });
  t.equal(res.statusCode, 405);
  t.equal(res.headers.allow, 'GET, HEAD');
  res = await app.inject({ method: 'GET', url: '/%E0%A4%A' });
  t.equal(res.statusCode, 400, 'a malformed URL');
  t.equal(errorOf(res.body).code, 'PGRELAY_BAD_REQUEST');
});

t.test('unexpected errors: 500 PGRELAY_INTERNAL, no stack, logged', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const control = new FakeControl();
  const app = buildAdminServer({ control, metrics: null, token: null, logger: pino({ level: 'info' }, sink) });
  t.teardown(() => app.close());
  control.fail = new Error('pool registry exploded at /secret/path');
  for (const req of [{ method: 'POST' as const, url: '/v1/pause' }, { method: 'GET' as const, url: '/v1/state' }]) {
    const res = await app.inject(req);
    t.equal(res.statusCode, 500);
    t.same(JSON.parse(res.body), { error: { code: 'PGRELAY_INTERNAL', message: 'internal error; see the pgrelay log' } });
    t.notMatch(res.body, /exploded|secret|at /);
  }
  t.match(lines.join(''), /pool registry exploded/, 'the cause is in the log');

  control.fail = null;
  lines.length = 0;
  await app.inject({ method: 'POST', url: '/v1/pause?database=app', remoteAddress: '10.9.9.9' });
  const logged = JSON.parse(lines.find((l) => l.includes('admin api: pause'))!) as Record<string, unknown>;
  t.match(logged, { component: 'admin-http', database: 'app', from: '10.9.9.9', result: 'drained' }, 'verbs log who asked and the outcome');
  await app.inject('/health/live');
  t.equal(lines.length, 1, 'probes are not logged');
});

t.test('a real port: listen on 127.0.0.1:0, fetch, close', async (t) => {
  const control = new FakeControl();
  const app = buildAdminServer({ control, metrics: metricsFor(control), token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  t.ok(port > 0);
  const base = `http://127.0.0.1:${port}`;

  let res = await fetch(`${base}/v1/pause?database=app&timeout_ms=250`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(res.status, 200);
  t.equal(((await res.json()) as PauseResult).result, 'drained');
  t.same(control.calls, [{ verb: 'pause', args: { database: 'app', timeoutMs: 250, by: 'http 127.0.0.1' } }]);

  res = await fetch(`${base}/v1/resume`, { method: 'POST', body: JSON.stringify({ database: 'app' }), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
  t.equal(res.status, 200);
  t.equal(((await res.json()) as ResumeResult).wasPaused, true);

  res = await fetch(`${base}/v1/state`);
  t.equal(res.status, 401);
  await res.arrayBuffer();

  res = await fetch(`${base}/metrics`);
  t.equal(res.status, 200);
  t.match(await res.text(), 'pgrelay_transactions_total{database="app",user="alice"} 42');
});

t.test('checkAdminBinding: loopback is fine without a token, anything else needs one', async (t) => {
  for (const addr of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', '127.0.0.1, ::1']) {
    t.doesNotThrow(() => checkAdminBinding(addr, null), addr);
    t.ok(isLoopback(addr), addr);
  }
  for (const addr of ['0.0.0.0', '*', '', '::', '10.0.0.5', '128.0.0.1', 'db.internal', 'localhost.evil.com', '127.0.0.1,0.0.0.0', '::2']) {
    t.throws(() => checkAdminBinding(addr, null), /not a loopback address and no admin token is set/, JSON.stringify(addr));
    t.throws(() => checkAdminBinding(addr, ''), /no admin token/, `${JSON.stringify(addr)} with an empty token`);
    t.doesNotThrow(() => checkAdminBinding(addr, TOKEN), `${JSON.stringify(addr)} with a token`);
  }
});

t.test('POST /v1/primary-hint needs a node and answers 202', async (t) => {
  const control = new FakeControl();
  const app = buildAdminServer({ control, metrics: null, token: null, logger: false });
  t.teardown(() => app.close());
  const ok = await app.inject({ method: 'POST', url: '/v1/primary-hint?node=10.0.0.7:5432&role=master' });
  t.equal(ok.statusCode, 202);
  t.same(ok.json(), { node: '10.0.0.7:5432', databases: ['app'], paused: true, verifying: true });
  const missing = await app.inject({ method: 'POST', url: '/v1/primary-hint' });
  t.equal(missing.statusCode, 400);
  t.equal(missing.json().error.field, 'node');
});

/** Sends raw bytes to the admin port and reads until the server closes: status line, headers, body. */
function rawExchange(port: number, request: string | Buffer): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    // The server may reset the connection after answering while we are still sending.
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = (split < 0 ? text : text.slice(0, split)).split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: split < 0 ? '' : text.slice(split + 4) });
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(String(request).slice(0, 60))}`)));
  });
}

t.test('every error the admin port sends has the documented shape, node-level ones included', async (t) => {
  const control = new FakeControl();
  const app = buildAdminServer({ control, metrics: null, token: null, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;
  const expectError = (name: string, r: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): void => {
    t.equal(r.status, status, `${name}: status`);
    t.match(r.headers['content-type'] ?? '', /^application\/json/, `${name}: JSON content type`);
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(r.body);
    } catch {
      parsed = r.body;
    }
    t.match(parsed, { error: { code, message: String } }, `${name}: {"error":{"code","message"}}, got ${r.body}`);
    t.same(Object.keys(parsed as object), ['error'], `${name}: nothing beside "error"`);
  };

  expectError('a malformed request line', await rawExchange(port, 'GARBAGE\r\n\r\n'), 400, 'PGRELAY_BAD_REQUEST');
  expectError('a bad HTTP version', await rawExchange(port, 'GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n'), 400, 'PGRELAY_BAD_REQUEST');
  expectError('a header without a colon', await rawExchange(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nno-colon-here\r\n\r\n'), 400, 'PGRELAY_BAD_REQUEST');
  expectError(
    'both Content-Length and Transfer-Encoding',
    await rawExchange(port, 'POST /v1/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}'),
    400,
    'PGRELAY_BAD_REQUEST',
  );
  expectError(
    'headers over the limit',
    await rawExchange(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`),
    431,
    'PGRELAY_HEADERS_TOO_LARGE',
  );
  expectError(
    'an Expect header other than 100-continue',
    await rawExchange(port, 'POST /v1/resume HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
    417,
    'PGRELAY_EXPECTATION_FAILED',
  );
  const badJson = '{"database":';
  expectError(
    'malformed JSON',
    await rawExchange(port, `POST /v1/pause HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${badJson.length}\r\nConnection: close\r\n\r\n${badJson}`),
    400,
    'PGRELAY_BAD_REQUEST',
  );
  expectError(
    'a request followed by bytes that start no request',
    await rawExchange(port, 'POST /v1/pause HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{}'),
    400,
    'PGRELAY_BAD_REQUEST',
  );
  expectError('an unknown route', await rawExchange(port, 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404, 'PGRELAY_NOT_FOUND');
  expectError('a wrong method', await rawExchange(port, 'PUT /v1/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'), 405, 'PGRELAY_METHOD_NOT_ALLOWED');
  expectError('a malformed URL', await rawExchange(port, 'GET /%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400, 'PGRELAY_BAD_REQUEST');
  expectError(
    'an unsupported media type',
    await rawExchange(port, 'POST /v1/pause HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 8\r\nConnection: close\r\n\r\n<pause/>'),
    415,
    'PGRELAY_UNSUPPORTED_MEDIA_TYPE',
  );
  t.same(control.calls, [], 'no verb ran');

  const live = await rawExchange(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.equal(live.status, 200, 'the port still answers afterwards');
});
