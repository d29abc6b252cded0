// Pool rules with fake servers: FIFO hand-out, growth up to the pool size, reserve, release
// and reuse, lifetime/idle limits, wait timeouts, connect failures (transient and permanent).

import t from 'tap';
import { Pool } from '../../src/pool/pool.js';
import type { PoolServer, PoolWaiter, ServerFactory, ConnectionBudget, PoolSettings } from '../../src/pool/pool-contract.js';
import { WaitQueue } from '../../src/pool/wait-queue.js';
import type { PgRelayError } from '../../src/errors.js';

class FakeServer implements PoolServer {
  static next = 1;
  readonly id = FakeServer.next++;
  idleSince = 0;
  closeNeeded = false;
  generation = 0;
  closed: string | null = null;
  constructor(readonly createdAt: number) {}
  close(reason: string): void {
    this.closed = reason;
  }
}

class FakeFactory implements ServerFactory {
  pending: { resolve: (s: PoolServer) => void; reject: (e: Error) => void }[] = [];
  constructor(private readonly clock: { now: number }) {}
  connect(): Promise<PoolServer> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  succeed(): FakeServer {
    const s = new FakeServer(this.clock.now);
    this.pending.shift()!.resolve(s);
    return s;
  }
  fail(err: Error): void {
    this.pending.shift()!.reject(err);
  }
}

class Waiter implements PoolWaiter {
  waitingSince = 0;
  server: PoolServer | null = null;
  error: PgRelayError | null = null;
  onServer(s: PoolServer): void {
    this.server = s;
  }
  onWaitError(e: PgRelayError): void {
    this.error = e;
  }
}

const unlimited: ConnectionBudget = { tryTake: () => true, give: () => undefined };
const base: PoolSettings = {
  poolSize: 2,
  minPoolSize: 0,
  reservePoolSize: 0,
  reservePoolTimeoutMs: 5000,
  serverIdleTimeoutMs: 600_000,
  serverLifetimeMs: 3_600_000,
  queryWaitTimeoutMs: 1000,
  serverLoginRetryMs: 1000,
  serverLoginHedgeMs: 100,
  serverLoginParallel: 8,
};

function setup(settings: Partial<PoolSettings> = {}, budget = unlimited) {
  const clock = { now: 1_000_000 };
  const factory = new FakeFactory(clock);
  const pool = new Pool('db', 'user', { ...base, ...settings }, factory, budget, () => clock.now);
  return { clock, factory, pool };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('waiters are served FIFO and the pool never exceeds its size', async (t) => {
  const { factory, pool } = setup();
  const ws = [new Waiter(), new Waiter(), new Waiter()];
  for (const w of ws) pool.acquire(w);
  t.equal(factory.pending.length, 2, 'two connects for pool_size 2');
  t.equal(pool.waitingCount, 3);
  const s1 = factory.succeed();
  await tick();
  t.equal(ws[0]!.server, s1, 'first waiter gets the first server');
  factory.succeed();
  await tick();
  t.ok(ws[1]!.server);
  t.equal(ws[2]!.server, null);
  pool.release(s1);
  t.equal(ws[2]!.server, s1, 'a released server goes straight to the next waiter');
  t.equal(pool.serverCount, 2);
});

t.test('released servers are reused, most recent first', async (t) => {
  const { factory, pool } = setup();
  const a = new Waiter();
  pool.acquire(a);
  const s = factory.succeed();
  await tick();
  pool.release(s);
  t.equal(pool.idleCount, 1);
  const b = new Waiter();
  pool.acquire(b);
  t.equal(b.server, s, 'handed out synchronously from idle');
  t.equal(factory.pending.length, 0);
});

t.test('an unclean or close-needed server is closed, not reused', async (t) => {
  const { factory, pool } = setup();
  const a = new Waiter();
  pool.acquire(a);
  const s = factory.succeed();
  await tick();
  pool.discard(s, 'test');
  t.ok(s.closed);
  t.equal(pool.serverCount, 0);
  const b = new Waiter();
  pool.acquire(b);
  const s2 = factory.succeed();
  await tick();
  s2.closeNeeded = true;
  pool.release(s2);
  t.equal(s2.closed, 'close_needed');
});

t.test('query_wait_timeout fails the oldest waiters with a clear error', async (t) => {
  const { factory, pool, clock } = setup({ poolSize: 1, queryWaitTimeoutMs: 1000 });
  const a = new Waiter();
  const b = new Waiter();
  pool.acquire(a);
  clock.now += 500;
  pool.acquire(b);
  clock.now += 600;
  pool.sweep(clock.now);
  t.match(a.error?.message, /query_wait_timeout/);
  t.equal(b.error, null, 'the younger waiter still waits');
  t.equal(pool.waitingCount, 1);
  factory.succeed();
  await tick();
  t.ok(b.server);
});

t.test('transient connect failures are retried; waiters keep waiting', async (t) => {
  const { factory, pool, clock } = setup({ poolSize: 1 });
  const a = new Waiter();
  pool.acquire(a);
  factory.fail(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  await tick();
  t.equal(a.error, null);
  t.equal(factory.pending.length, 0, 'no immediate retry storm');
  clock.now += 300;
  pool.sweep(clock.now);
  t.equal(factory.pending.length, 1, 'janitor retries after the backoff');
  factory.succeed();
  await tick();
  t.ok(a.server);
});

t.test('a permanent login failure fails the waiters at once', async (t) => {
  const { factory, pool } = setup({ poolSize: 1 });
  const a = new Waiter();
  pool.acquire(a);
  factory.fail(Object.assign(new Error('password authentication failed'), { sqlstate: '28P01' }));
  await tick();
  t.match(a.error?.message, /password authentication failed/);
  t.equal(pool.waitingCount, 0);
});

t.test('idle timeout, lifetime and min_pool_size', async (t) => {
  const { factory, pool, clock } = setup({ poolSize: 3, minPoolSize: 1, serverIdleTimeoutMs: 1000, serverLifetimeMs: 5000 });
  pool.sweep(clock.now);
  t.equal(factory.pending.length, 1, 'min_pool_size opens a connection with no clients');
  const s1 = factory.succeed();
  await tick();
  const w = [new Waiter(), new Waiter()];
  for (const x of w) pool.acquire(x);
  const s2 = factory.succeed();
  await tick();
  pool.release(w[0]!.server!);
  pool.release(w[1]!.server!);
  t.equal(pool.idleCount, 2);
  clock.now += 1500;
  pool.sweep(clock.now);
  t.equal(pool.idleCount, 1, 'idle timeout closes down to min_pool_size');
  t.ok(s1.closed || s2.closed);
  clock.now += 5000;
  pool.sweep(clock.now);
  t.ok(s1.closed && s2.closed, 'server_lifetime closes the survivor');
  t.equal(factory.pending.length, 1, 'and min_pool_size refills');
});

t.test('reserve pool opens extra connections once a waiter waited reserve_pool_timeout', async (t) => {
  const { factory, pool, clock } = setup({ poolSize: 1, reservePoolSize: 1, reservePoolTimeoutMs: 100, queryWaitTimeoutMs: 10_000 });
  const a = new Waiter();
  const b = new Waiter();
  pool.acquire(a);
  factory.succeed();
  await tick();
  pool.acquire(b);
  t.equal(factory.pending.length, 0);
  clock.now += 150;
  pool.sweep(clock.now);
  t.equal(factory.pending.length, 1, 'reserve connection launched');
});

t.test('the connection budget caps servers across pools', async (t) => {
  let used = 0;
  const budget: ConnectionBudget = { tryTake: () => (used < 1 ? (used++, true) : false), give: () => void used-- };
  const { factory, pool } = setup({ poolSize: 5 }, budget);
  pool.acquire(new Waiter());
  pool.acquire(new Waiter());
  t.equal(factory.pending.length, 1);
});

t.test('cancelWait removes a waiter; close fails the rest', async (t) => {
  const { pool } = setup({ poolSize: 1 });
  const a = new Waiter();
  const b = new Waiter();
  pool.acquire(a);
  pool.acquire(b);
  t.ok(pool.cancelWait(a));
  t.notOk(pool.cancelWait(a));
  t.equal(pool.waitingCount, 1);
  pool.close('test');
  t.match(b.error?.message, /closed/);
  const c = new Waiter();
  pool.acquire(c);
  t.ok(c.error);
});

t.test('WaitQueue keeps FIFO order through growth and holes', async (t) => {
  const q = new WaitQueue<{ n: number }>();
  const items = Array.from({ length: 40 }, (_, n) => ({ n }));
  for (const i of items) q.push(i);
  t.ok(q.remove(items[0]!));
  t.ok(q.remove(items[5]!));
  t.equal(q.length, 38);
  const out: number[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x.n);
  t.same(out, items.map((i) => i.n).filter((n) => n !== 0 && n !== 5));
  t.equal(q.length, 0);
  t.equal(q.peek(), undefined);
});

t.test('the servers handed out are kept apart from their order: release, discard and forget each take out the right one', async (t) => {
  const { factory, pool } = setup({ poolSize: 4 });
  const ws = [new Waiter(), new Waiter(), new Waiter(), new Waiter()];
  for (const w of ws) pool.acquire(w);
  const servers = [factory.succeed(), factory.succeed(), factory.succeed(), factory.succeed()];
  await tick();
  t.same(new Set(pool.servers().active), new Set(servers), 'all four are handed out');
  pool.release(servers[1]!); // a middle one: the last takes its place
  t.equal(pool.activeCount, 3);
  t.same(new Set(pool.servers().active), new Set([servers[0], servers[2], servers[3]]));
  t.equal(pool.idleCount, 1);
  pool.discard(servers[3]!, 'test'); // the one that moved
  t.same(new Set(pool.servers().active), new Set([servers[0], servers[2]]));
  t.equal(servers[3]!.closed, 'test');
  pool.forget(servers[0]!);
  t.same(pool.servers().active, [servers[2]]);
  // Taking out a server that is not handed out changes nothing among the others.
  pool.forget(servers[0]!);
  t.same(pool.servers().active, [servers[2]], 'a second forget of the same server is a no-op');
  pool.release(servers[2]!);
  t.equal(pool.activeCount, 0);
  t.equal(pool.idleCount, 2);
  // Handed out again, they are tracked again.
  const again = [new Waiter(), new Waiter()];
  for (const w of again) pool.acquire(w);
  t.equal(pool.activeCount, 2);
  t.same(new Set(pool.servers().active), new Set([servers[1], servers[2]]));
});
