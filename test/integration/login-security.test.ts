// Login as an attacker sees it, against real PostgreSQL: empty auth_file secrets never log in (not
// even to the admin console), an unknown user or database cannot be told from a wrong password,
// failed logins leave no pool behind, and a client's bytes during a long login are held back by
// TCP rather than by pgrelay's memory.

import t, { type Test } from 'tap';
import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Writable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startCluster } from '../harness/pg-cluster.js';
import { App } from '../../src/app.js';
import { buildConfig, type ConfigInput } from '../../src/config/load.js';
import type { Settings } from '../../src/config/types.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { md5Response } from '../../src/auth/md5.js';
import { ScramClientExchange, SCRAM_SHA_256 } from '../../src/auth/scram-client.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

// ---- a relay whose log lines the test can read ----

interface LoggedRelay {
  app: App;
  port: number;
  logs: Array<Record<string, unknown>>;
}

async function start(t: Test, opts: { settings?: Partial<Settings>; authFile?: Record<string, string>; databases?: ConfigInput['databases']; keepLogs?: boolean } = {}): Promise<LoggedRelay> {
  let authFile: string | null = null;
  if (opts.authFile !== undefined) {
    authFile = join(mkdtempSync(join(tmpdir(), 'pgrelay-login-')), 'userlist.txt');
    writeFileSync(authFile, Object.entries(opts.authFile).map(([u, s]) => `"${u}" "${s}"\n`).join(''));
  }
  const config = buildConfig({
    settings: { listenAddr: ['127.0.0.1'], listenPort: 0, authType: 'trust', authFile, logConnections: false, logDisconnections: false, maxClientConn: 10_000, ...opts.settings },
    databases: opts.databases ?? { '*': { hosts: [{ host: cluster.host, port: cluster.port }] } },
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done): void {
      // Not kept when the test measures memory: the lines themselves would be what grows.
      if (opts.keepLogs !== false) for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const app = new App(config, { logger: pino({ level: 'info' }, sink) });
  await app.start();
  t.teardown(() => app.stop(200));
  return { app, port: app.port, logs };
}

// ---- a raw protocol client ----

interface Message {
  type: string;
  body: Buffer;
}

class Raw {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: Message[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readInt32BE(1)) {
        const len = this.buf.readInt32BE(1);
        this.queue.push({ type: String.fromCharCode(this.buf[0]!), body: Buffer.from(this.buf.subarray(5, 1 + len)) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake?.();
    });
    const end = (): void => {
      this.closed = true;
      this.wake?.();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  /** The next message, or null once the connection closed with nothing left. */
  async next(timeoutMs = 10_000): Promise<Message | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.closed) return null;
      if (Date.now() >= deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
      this.wake = null;
    }
    return this.queue.shift()!;
  }

  end(): void {
    this.socket.destroy();
  }
}

function fields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    out[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

interface LoginResult {
  /** What pgrelay sent, in order: `R<code>` for auth requests, `E`, `Z` ... */
  seen: string[];
  error: { code: string; message: string; severity: string } | null;
  raw: Raw;
}

/** A startup packet, then whatever auth pgrelay asks for, answered with `password`. */
async function login(port: number, user: string, database: string, password: string): Promise<LoginResult> {
  const raw = await Raw.connect(port);
  raw.socket.write(serialize.startup({ user, database }));
  const seen: string[] = [];
  let scram: ScramClientExchange | null = null;
  for (;;) {
    const m = await raw.next();
    if (m === null) return { seen, error: null, raw };
    if (m.type === 'R') {
      const code = m.body.readInt32BE(0);
      seen.push(`R${code}`);
      if (code === 3) raw.socket.write(serialize.password(password));
      else if (code === 5) raw.socket.write(serialize.password(md5Response(password, user, m.body.subarray(4, 8))));
      else if (code === 10) {
        scram = new ScramClientExchange({ password });
        raw.socket.write(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, scram.clientFirst()));
      } else if (code === 11) raw.socket.write(serialize.sendSCRAMClientFinalMessage(scram!.clientFinal(m.body.toString('utf8', 4))));
      continue;
    }
    seen.push(m.type);
    if (m.type === 'E') {
      const f = fields(m.body);
      raw.end();
      return { seen, error: { code: f['C']!, message: f['M']!, severity: f['S']! }, raw };
    }
    if (m.type === 'Z') return { seen, error: null, raw };
  }
}

async function query(raw: Raw, sql: string): Promise<Message[]> {
  raw.socket.write(serialize.query(sql));
  const out: Message[] = [];
  for (;;) {
    const m = await raw.next();
    if (m === null) throw new Error('connection closed');
    out.push(m);
    if (m.type === 'Z') return out;
  }
}

// ---- S1: empty secrets ----

t.test('an empty auth_file secret never logs in, not even an admin to the console', async (t) => {
  for (const authType of ['plain', 'md5', 'scram-sha-256'] as const) {
    const relay = await start(t, { settings: { authType, adminUsers: ['admin'] }, authFile: { admin: '', postgres: 'pw' } });
    for (const database of ['pgbouncer', 'postgres']) {
      const r = await login(relay.port, 'admin', database, '');
      t.same(r.error, { code: '28P01', message: 'password authentication failed for user "admin"', severity: 'FATAL' }, `${authType}, ${database}: refused`);
      t.notOk(r.seen.includes('R0'), `${authType}, ${database}: no AuthenticationOk`);
    }
    t.equal(relay.app.clients.size <= 2, true);
    t.ok(relay.logs.some((l) => l['msg'] === 'client authentication failed' && l['reason'] === 'empty_secret' && l['user'] === 'admin'), `${authType}: the log says why`);
    t.ok(relay.logs.some((l) => l['user'] === 'admin' && /empty secret/.test(String(l['msg']))), `${authType}: the empty secret was flagged at load`);
  }
});

// ---- S3: user enumeration ----

t.test('an unknown user and a wrong password look the same to the client; the log tells them apart', async (t) => {
  for (const authType of ['md5', 'scram-sha-256', 'plain'] as const) {
    const relay = await start(t, { settings: { authType, adminUsers: ['alice'] }, authFile: { alice: 'alice-secret' } });
    for (const database of ['postgres', 'pgbouncer']) {
      const wrong = await login(relay.port, 'alice', database, 'nope');
      const ghost = await login(relay.port, 'ghost', database, 'nope');
      t.same(wrong.error, { code: '28P01', message: 'password authentication failed for user "alice"', severity: 'FATAL' }, `${authType}/${database}: wrong password`);
      t.same(ghost.error, { code: '28P01', message: 'password authentication failed for user "ghost"', severity: 'FATAL' }, `${authType}/${database}: unknown user, same code and message`);
      t.same(ghost.seen, wrong.seen, `${authType}/${database}: the same exchange (${wrong.seen.join(' ')})`);
    }
    const failures = relay.logs.filter((l) => l['msg'] === 'client authentication failed');
    t.same(failures.map((l) => `${l['user']}:${l['reason']}`), ['alice:wrong_password', 'ghost:no_such_user', 'alice:wrong_password', 'ghost:no_such_user'], `${authType}: reasons logged`);
    t.ok(failures.every((l) => l['addr'] === '127.0.0.1' && typeof l['port'] === 'number'), 'with the client address');
  }
});

// ---- S4: database enumeration ----

t.test('an unknown database is named only to an authenticated client', async (t) => {
  const strict = { postgres: { hosts: [{ host: cluster.host, port: cluster.port }] } };
  const relay = await start(t, { settings: { authType: 'md5' }, authFile: { alice: 'alice-secret' }, databases: strict });
  const wrongPw = await login(relay.port, 'alice', 'nope', 'bad');
  t.same(wrongPw.seen, ['R5', 'E'], 'asked for a password first');
  t.equal(wrongPw.error?.code, '28P01');
  t.equal(wrongPw.error?.message, 'password authentication failed for user "alice"');
  const ghost = await login(relay.port, 'ghost', 'nope', 'bad');
  t.same(ghost.seen, ['R5', 'E']);
  t.equal(ghost.error?.code, '28P01');
  const right = await login(relay.port, 'alice', 'nope', 'alice-secret');
  t.same(right.error, { code: '3D000', message: 'no such database: nope', severity: 'FATAL' }, 'the right password learns the database is missing');
  t.same(right.seen, ['R5', 'E'], 'no AuthenticationOk before the refusal');
  t.equal([...relay.app.ctx.registry.all()].length, 0, 'no pool for a missing database');

  const trust = await start(t, { databases: strict });
  const r = await login(trust.port, 'alice', 'nope', '');
  t.same(r.seen, ['E'], 'trust: no password, so the check comes at once');
  t.equal(r.error?.code, '3D000');
});

// ---- D2: pools only for authenticated clients ----

t.test('thousands of failed logins with new user names leave no pool and no memory behind', async (t) => {
  const relay = await start(t, { settings: { authType: 'md5' }, authFile: { alice: 'alice-secret' }, keepLogs: false });
  const attempt = async (i: number): Promise<string | undefined> => (await login(relay.port, `intruder${i}`, 'postgres', 'x')).error?.code;
  const batch = async (from: number, n: number): Promise<void> => {
    const codes = new Set<string | undefined>();
    for (let i = from; i < from + n; i += 20) {
      for (const c of await Promise.all(Array.from({ length: Math.min(20, from + n - i) }, (_, j) => attempt(i + j)))) codes.add(c);
    }
    t.same([...codes], ['28P01'], `attempts ${from}..${from + n - 1}: all refused`);
  };
  // A refused client's socket may linger up to 2 s (close() lets its FATAL out): wait that out.
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 2500));
  await batch(0, 200); // warm up
  await settle();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = Date.now();
  await batch(200, 2000);
  const ms = Date.now() - started;
  await settle();
  gc();
  const grew = process.memoryUsage().heapUsed - heapBefore;
  t.comment(`2000 failed logins in ${ms} ms; heap grew ${(grew / 1e6).toFixed(1)} MB`);
  t.equal([...relay.app.ctx.registry.all()].length, 0, 'no pool');
  t.equal(relay.app.control.pools().length, 0, 'SHOW POOLS is empty');
  t.ok(grew < 3e6, 'heap flat (under 3 MB growth for 2000 attempts)');
});

t.test('an empty pool retires after autodb_idle_timeout without losing its counters', async (t) => {
  const relay = await start(t, { settings: { autodbIdleTimeoutMs: 300, serverIdleTimeoutMs: 200 } });
  const counter = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await relay.app.metrics.metrics())?.[1]);
  const a = await login(relay.port, 'postgres', 'postgres', '');
  t.equal(a.error, null);
  t.equal((await query(a.raw, 'select 1')).at(-1)?.type, 'Z');
  const connects = await counter('pgrelay_server_connects_total');
  const allQueries = (): number => relay.app.control.stats().reduce((n, s) => n + s.queries, 0);
  const queries = relay.app.control.stats().find((s) => s.database === 'postgres')!.queries;
  t.ok(connects >= 1 && queries >= 1);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(relay.app.control.pools().length, 1, 'a logged-in idle client keeps its pool');
  a.raw.end();
  const deadline = Date.now() + 10_000;
  while (relay.app.control.pools().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.equal(relay.app.control.pools().length, 0, 'retired once empty and idle');
  t.equal(await counter('pgrelay_server_connects_total'), connects, 'server_connects_total did not go back');
  t.equal(allQueries(), queries, 'SHOW STATS did not go back');
  // "postgres" came through `*` and has no pool left: its counters are kept under `*`.
  t.same(relay.app.control.stats().map((s) => [s.database, s.queries]), [['*', queries]]);
  // A new client gets a fresh pool and is served.
  const b = await login(relay.port, 'postgres', 'postgres', '');
  t.equal(b.error, null);
  t.same((await query(b.raw, 'select 7')).map((m) => m.type), ['T', 'D', 'C', 'Z']);
  b.raw.end();
});

// ---- D1: a client's bytes while its first login waits for a server ----

t.test('bytes pipelined during a login that waits for a server are capped by TCP, then served in order', async (t) => {
  const relay = await start(t);
  await relay.app.control.pause();
  const MB = 1 << 20;
  const N = 16;
  // Built before measuring: the client's own buffers are not pgrelay's memory.
  const queries = Array.from({ length: N }, (_, i) => serialize.query(`select ${i} as i, length('${'x'.repeat(MB - 64 - i)}') as n`));
  const raw = await Raw.connect(relay.port);
  raw.socket.write(serialize.startup({ user: 'postgres', database: 'postgres' }));
  await new Promise((r) => setTimeout(r, 200));
  const session = [...relay.app.clients][0]!;
  t.equal(session.state, 'login', 'login waits: the pool is paused and no server parameters are known');
  gc();
  const before = process.memoryUsage().arrayBuffers;

  // Write with backpressure: stop when the kernel no longer takes more.
  let sent = 0;
  const drained = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        raw.socket.off('drain', ok);
        resolve(false);
      }, ms);
      const ok = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      raw.socket.once('drain', ok);
    });
  while (sent < N) {
    const more = raw.socket.write(queries[sent++]!);
    if (!more && !(await drained(1500))) break;
  }
  await new Promise((r) => setTimeout(r, 300));
  gc();
  const held = (session as unknown as { loginBufferedBytes: number }).loginBufferedBytes;
  const grew = process.memoryUsage().arrayBuffers - before;
  t.comment(`client got ${sent} of ${N} MB into the socket; pgrelay holds ${held} bytes of it; arrayBuffers grew ${(grew / MB).toFixed(1)} MB`);
  t.ok(sent < N, 'the client is held back by TCP');
  t.ok(held <= 256 * 1024, `pgrelay holds at most a little over the 64 KB cap (${held})`);
  t.ok(grew < 4 * MB, 'memory did not grow with what the client sent');

  relay.app.control.resume();
  const writer = (async () => {
    while (sent < N) if (!raw.socket.write(queries[sent++]!)) await drained(30_000);
  })();
  const login0 = await raw.next(30_000);
  t.equal(login0?.type, 'R', 'AuthenticationOk after RESUME');
  const seen: string[] = [];
  for (let m = await raw.next(30_000); m !== null && m.type !== 'Z'; m = await raw.next(30_000)) seen.push(m.type);
  t.ok(seen.includes('K'), 'login completed');
  for (let i = 0; i < N; i++) {
    const msgs: Message[] = [];
    for (let m = await raw.next(30_000); m !== null; m = await raw.next(30_000)) {
      msgs.push(m);
      if (m.type === 'Z') break;
    }
    const row = msgs.find((m) => m.type === 'D');
    t.ok(row !== undefined, `query ${i} answered`);
    const first = row!.body.readInt32BE(2);
    const i0 = row!.body.toString('utf8', 6, 6 + first);
    const n = row!.body.toString('utf8', 6 + first + 4);
    if (i0 !== String(i) || n !== String(MB - 64 - i)) {
      t.fail(`query ${i}: got i=${i0} n=${n}`);
      break;
    }
  }
  await writer;
  t.pass('every pipelined query answered in order with its own bytes');
  raw.end();
});

// ---- a login that fails after its pool was attached ----

t.test('a client that leaves while its first login waits for a server does not hold its pool for ever', async (t) => {
  const relay = await start(t, { settings: { autodbIdleTimeoutMs: 300 } });
  await relay.app.control.pause();
  const raw = await Raw.connect(relay.port);
  raw.socket.write(serialize.startup({ user: 'postgres', database: 'postgres' }));
  await new Promise((r) => setTimeout(r, 200));
  const entry = [...relay.app.ctx.registry.all()][0]!;
  t.equal(entry.clients, 1, 'the authenticated login holds its pool while it waits');
  raw.socket.destroy();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(entry.clients, 0, 'the failed login lets go of it');
  relay.app.control.resume();
  // Nothing holds the pool now: it retires like any unused one.
  await new Promise((r) => setTimeout(r, 1500));
  t.equal([...relay.app.ctx.registry.all()].length, 0, 'the pool retired after autodb_idle_timeout');
});
