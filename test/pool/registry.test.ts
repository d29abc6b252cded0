// The pool registry with fake servers and the sweep's clock: pools attached by clients, retired
// once empty and unused for autodb_idle_timeout, counters that survive retirement, and login
// parameters borrowed from a sibling pool in constant time.

import t from 'tap';
import { PoolRegistry, type PoolEntry } from '../../src/pool/registry.js';
import type { PoolServer, PoolWaiter, ServerFactory } from '../../src/pool/pool-contract.js';
import { buildConfig } from '../../src/config/load.js';
import type { Settings } from '../../src/config/types.js';

class FakeServer implements PoolServer {
  static next = 1;
  readonly id = FakeServer.next++;
  readonly createdAt = Date.now();
  idleSince = 0;
  closeNeeded = false;
  generation = 0;
  closed: string | null = null;
  close(reason: string): void {
    this.closed = reason;
  }
}

class FakeFactory implements ServerFactory {
  readonly pending: Array<(s: PoolServer) => void> = [];
  connect(): Promise<PoolServer> {
    return new Promise((resolve) => this.pending.push(resolve));
  }
}

class Waiter implements PoolWaiter {
  waitingSince = 0;
  server: PoolServer | null = null;
  onServer(s: PoolServer): void {
    this.server = s;
  }
  onWaitError(): void {}
}

const HOUR = 3_600_000;

function registry(settings: Partial<Settings> = {}): { reg: PoolRegistry; factory: FakeFactory } {
  const factory = new FakeFactory();
  const config = buildConfig({ settings, databases: { '*': { hosts: [{ host: '127.0.0.1', port: 1 }] }, app: { hosts: [{ host: '127.0.0.1', port: 2 }] } } });
  return { reg: new PoolRegistry(config, factory), factory };
}

const keys = (reg: PoolRegistry): string[] => [...reg.all()].map((e) => e.pool.key).sort();

t.test('autodb_idle_timeout defaults to an hour, as in PgBouncer', async (t) => {
  t.equal(buildConfig().settings.autodbIdleTimeoutMs, HOUR);
});

t.test('an empty pool is retired once unused for autodb_idle_timeout; an attached client keeps it', async (t) => {
  const { reg } = registry();
  const t0 = 1_000_000;
  const a = reg.attach('app', 'alice')!;
  const b = reg.attach('app', 'bob')!;
  t.equal(a.clients, 1);
  t.same(keys(reg), ['app/alice', 'app/bob']);
  reg.detach(b);
  reg.sweep(t0);
  reg.sweep(t0 + HOUR - 1);
  t.same(keys(reg), ['app/alice', 'app/bob'], 'not before the timeout');
  reg.sweep(t0 + HOUR);
  t.same(keys(reg), ['app/alice'], 'bob: no client, no server, idle an hour: retired');
  reg.sweep(t0 + 10 * HOUR);
  t.same(keys(reg), ['app/alice'], 'an attached (logged-in, idle) client keeps its pool');
  reg.detach(a);
  reg.sweep(t0 + 10 * HOUR + 1);
  t.same(keys(reg), ['app/alice'], 'the hour counts from when it became empty');
  reg.sweep(t0 + 11 * HOUR + 1);
  t.same(keys(reg), []);
  // Coming back creates a fresh pool.
  const again = reg.attach('app', 'alice')!;
  t.not(again, a);
  t.equal(again.clients, 1);
  t.equal(reg.entryOf(a.pool), undefined, 'the retired pool is forgotten');
});

t.test('use in between restarts the idle clock', async (t) => {
  const { reg } = registry();
  const e = reg.attach('app', 'alice')!;
  reg.detach(e);
  reg.sweep(0);
  reg.attach('app', 'alice');
  reg.sweep(HOUR / 2);
  reg.detach(e);
  reg.sweep(HOUR);
  t.same(keys(reg), ['app/alice'], 'in use at HOUR/2, so the hour starts again at the first sweep that finds it empty');
  reg.sweep(2 * HOUR - 1);
  t.same(keys(reg), ['app/alice']);
  reg.sweep(2 * HOUR);
  t.same(keys(reg), []);
});

t.test('a pool with servers or waiters is not retired', async (t) => {
  const { reg, factory } = registry({ serverIdleTimeoutMs: 0 });
  const e = reg.attach('app', 'alice')!;
  const w = new Waiter();
  e.pool.acquire(w);
  reg.detach(e);
  reg.sweep(0);
  reg.sweep(2 * HOUR);
  t.same(keys(reg), ['app/alice'], 'a waiter (a connect in flight)');
  factory.pending.shift()!(new FakeServer());
  await new Promise((r) => setImmediate(r));
  t.ok(w.server !== null);
  e.pool.release(w.server!);
  reg.sweep(4 * HOUR);
  t.same(keys(reg), ['app/alice'], 'an idle server (server_idle_timeout 0 keeps it)');
  e.pool.forget(e.pool.servers().idle[0]!);
  reg.sweep(5 * HOUR);
  reg.sweep(6 * HOUR);
  t.same(keys(reg), []);
});

t.test('autodb_idle_timeout 0 never retires', async (t) => {
  const { reg } = registry({ autodbIdleTimeoutMs: 0 });
  reg.detach(reg.attach('app', 'alice')!);
  reg.sweep(0);
  reg.sweep(1000 * HOUR);
  t.same(keys(reg), ['app/alice']);
});

t.test('counters of retired pools stay in the totals', async (t) => {
  const { reg } = registry();
  const total = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const { database, stats } of reg.poolStats()) out[database] = (out[database] ?? 0) + stats.serverConnects + stats.queries;
    return out;
  };
  const a = reg.attach('app', 'alice')!;
  const b = reg.attach('app', 'bob')!;
  const c = reg.attach('other', 'carol')!;
  a.pool.stats.serverConnects = 3;
  b.pool.stats.queries = 40;
  c.pool.stats.queries = 500;
  t.same(total(), { app: 43, other: 500 });
  for (const e of [a, b, c]) reg.detach(e);
  reg.sweep(0);
  reg.sweep(HOUR);
  t.same(keys(reg), []);
  // "other" came through `*` and has no pool left: its row joins the one for `*` (bounded memory).
  t.same(total(), { app: 43, '*': 500 }, 'folded into per-database totals');
  const a2 = reg.attach('app', 'alice')!;
  a2.pool.stats.serverConnects = 1;
  t.same(total(), { app: 44, '*': 500 });
  // While a database still has a pool, its retired pools' counters keep its own row.
  const c2 = reg.attach('other', 'carol')!;
  const d2 = reg.attach('other', 'dave')!;
  c2.pool.stats.queries = 7;
  reg.detach(c2);
  reg.sweep(2 * HOUR);
  reg.sweep(3 * HOUR);
  t.same(keys(reg), ['app/alice', 'other/dave']);
  t.same(total(), { app: 44, other: 7, '*': 500 });
  t.equal(d2.clients, 1);
});

t.test('a new pool borrows login parameters from a sibling, without the user-specific ones', async (t) => {
  const { reg } = registry();
  const a = reg.attach('app', 'alice')!;
  t.equal(a.loginParams, null, 'nothing known yet');
  a.loginParams = new Map([['server_version', '16.1'], ['session_authorization', 'alice'], ['is_superuser', 'off']]);
  const b = reg.attach('app', 'bob')!;
  t.same([...b.loginParams!], [['server_version', '16.1']]);
  const o = reg.attach('other', 'carol')!;
  t.same([...o.loginParams!], [['server_version', '16.1']], 'any database will do when none of its own is known');
  o.loginParams = new Map([['server_version', '17.0']]);
  t.same([...reg.attach('other', 'dave')!.loginParams!], [['server_version', '17.0']], 'the same database first');
  t.same([...reg.attach('app', 'erin')!.loginParams!], [['server_version', '16.1']]);
  // Still known after the pools that learned them retire.
  for (const e of [...reg.all()]) while (e.clients > 0) reg.detach(e);
  reg.sweep(0);
  reg.sweep(HOUR);
  t.same(keys(reg), []);
  t.same([...reg.attach('app', 'frank')!.loginParams!], [['server_version', '16.1']]);
});

t.test('a reload that changes a database forgets its login parameters', async (t) => {
  const { reg } = registry();
  const a = reg.attach('app', 'alice')!;
  a.loginParams = new Map([['server_version', '16.1']]);
  reg.reload(buildConfig({ databases: { '*': { hosts: [{ host: '127.0.0.1', port: 1 }] }, app: { hosts: [{ host: '127.0.0.1', port: 3 }] } } }));
  t.equal(a.loginParams, null);
  t.equal(reg.attach('app', 'bob')!.loginParams, null, 'not borrowed from the old definition');
});

t.test('creating many pools stays linear (login parameters are not searched for)', async (t) => {
  const { reg } = registry();
  const params = new Map([['server_version', '16.1'], ['server_encoding', 'UTF8'], ['client_encoding', 'UTF8'], ['DateStyle', 'ISO, MDY'], ['TimeZone', 'UTC']]);
  const started = performance.now();
  let e: PoolEntry | undefined;
  for (let i = 0; i < 5000; i++) {
    e = reg.attach('app', `user${i}`)!;
    e.loginParams = params;
  }
  const ms = performance.now() - started;
  t.equal([...reg.all()].length, 5000);
  t.ok(ms < 2000, `5000 pools in ${ms.toFixed(0)} ms`);
});
