// Hedged server logins with fake servers: while clients wait, a new attempt starts about every
// server_login_hedge_interval (jittered) without waiting for the earlier ones; the first that succeeds wins;
// failures are retried at the same cadence; attempts in flight stay under server_login_parallel.

import t from 'tap';
import { Pool } from '../../src/pool/pool.js';
import type { PoolServer, PoolWaiter, ServerFactory, ConnectionBudget, PoolSettings } from '../../src/pool/pool-contract.js';
import type { PgRelayError } from '../../src/errors.js';

class FakeServer implements PoolServer {
  static next = 1;
  readonly id = FakeServer.next++;
  idleSince = 0;
  closeNeeded = false;
  generation = 0;
  closed: string | null = null;
  readonly createdAt = Date.now();
  close(reason: string): void {
    this.closed = reason;
  }
}

/** Records when each attempt started; the test settles them. */
class FakeFactory implements ServerFactory {
  readonly started: number[] = [];
  readonly pending: { resolve: (s: PoolServer) => void; reject: (e: Error) => void; at: number }[] = [];
  /** Fail every new attempt at once with this error (null: leave it pending). */
  failWith: Error | null = null;
  connect(): Promise<PoolServer> {
    const at = Date.now();
    this.started.push(at);
    return new Promise((resolve, reject) => {
      if (this.failWith !== null) reject(this.failWith);
      else this.pending.push({ resolve, reject, at });
    });
  }
  succeed(i: number): FakeServer {
    const s = new FakeServer();
    this.pending.splice(i, 1)[0]!.resolve(s);
    return s;
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
const HEDGE_MS = 100;
const base: PoolSettings = {
  poolSize: 4,
  minPoolSize: 0,
  reservePoolSize: 0,
  reservePoolTimeoutMs: 5000,
  serverIdleTimeoutMs: 600_000,
  serverLifetimeMs: 3_600_000,
  queryWaitTimeoutMs: 60_000,
  serverLoginRetryMs: 15_000,
  serverLoginHedgeMs: HEDGE_MS,
  serverLoginParallel: 3,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(settings: Partial<PoolSettings> = {}) {
  const factory = new FakeFactory();
  const pool = new Pool('db', 'user', { ...base, ...settings }, factory, unlimited);
  t.teardown(() => pool.close('test'));
  return { factory, pool };
}

t.test('a slow login does not hold the queue: another attempt starts and the first to succeed serves the client', async (t) => {
  const { factory, pool } = setup();
  const w = new Waiter();
  pool.acquire(w);
  t.equal(factory.started.length, 1, 'one attempt for one waiter');
  await sleep(HEDGE_MS * 2.5);
  t.ok(factory.started.length >= 2, `another attempt started while the first hangs (${factory.started.length} started)`);
  const second = factory.succeed(1);
  await sleep(1);
  t.equal(w.server, second, 'the waiter got the attempt that finished first');
  const late = factory.succeed(0);
  await sleep(1);
  t.equal(pool.idleCount + pool.activeCount, 2, 'a late success within the pool size is kept');
  t.equal(late.closed, null);
});

t.test('a late success beyond the pool size is closed', async (t) => {
  const { factory, pool } = setup({ poolSize: 1 });
  const w = new Waiter();
  pool.acquire(w);
  await sleep(HEDGE_MS * 1.6);
  t.ok(factory.started.length >= 2, `hedged (${factory.started.length} started)`);
  factory.succeed(factory.pending.length - 1);
  await sleep(1);
  t.ok(w.server);
  const late = factory.succeed(0);
  await sleep(1);
  t.equal(late.closed, 'pool_full', 'the loser is closed');
  t.equal(pool.idleCount + pool.activeCount, 1, 'the pool keeps its size');
});

t.test('attempts in flight stay under server_login_parallel', async (t) => {
  const { factory, pool } = setup({ serverLoginParallel: 3, poolSize: 10 });
  pool.acquire(new Waiter());
  await sleep(HEDGE_MS * 8);
  t.equal(factory.pending.length, 3, `${factory.pending.length} in flight after ${HEDGE_MS * 8} ms`);
  t.equal(pool.connectingCount, 3);
});

t.test('failed logins are retried every hedge interval while clients wait, not with a growing backoff', async (t) => {
  const { factory, pool } = setup();
  factory.failWith = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
  const w = new Waiter();
  pool.acquire(w);
  await sleep(HEDGE_MS * 8 + 50);
  const gaps = factory.started.slice(1).map((at, i) => at - factory.started[i]!);
  t.ok(factory.started.length >= 7, `${factory.started.length} attempts in ${HEDGE_MS * 8} ms`);
  // Jittered 0.5-1.5 times the interval (a growing backoff would reach 250 ms and stay there).
  t.ok(Math.max(...gaps) <= HEDGE_MS * 1.5 + 60, `gaps ${gaps.join(', ')} ms all within the jittered hedge interval`);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  t.ok(mean <= HEDGE_MS + 30, `about one every ${Math.round(mean)} ms`);
  factory.failWith = null;
  // The next attempt starts within the jittered interval (up to 1.5 times it).
  for (let waited = 0; factory.pending.length === 0 && waited < HEDGE_MS * 5; waited += 10) await sleep(10);
  t.ok(factory.pending.length > 0, 'another attempt started once logins stopped failing');
  factory.succeed(0);
  await sleep(1);
  t.ok(w.server, 'served once a login works');
  t.equal(w.error, null);
});

t.test('after a resume one login probes the upstream first; the rest follow once it has passed', async (t) => {
  const { factory, pool } = setup({ poolSize: 10 });
  pool.pause();
  const ws = [new Waiter(), new Waiter(), new Waiter(), new Waiter()];
  for (const w of ws) pool.acquire(w);
  pool.resume();
  t.equal(factory.started.length, 1, 'one probing attempt, not one per waiter');
  factory.succeed(0);
  await sleep(1);
  t.ok(ws[0]!.server, 'the first waiter is served by it');
  t.equal(factory.pending.length, 3, 'then the other waiters get their logins in parallel');
});

t.test('with server_login_hedge_interval = 0 there is one attempt at a time', async (t) => {
  const { factory, pool } = setup({ serverLoginHedgeMs: 0 });
  pool.acquire(new Waiter());
  await sleep(300);
  t.equal(factory.started.length, 1);
});
