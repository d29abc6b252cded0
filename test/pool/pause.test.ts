// PauseController with fake pools and an injected clock: PAUSE completes when the paused pools
// hold no server (or at its drain deadline, naming who is still in a transaction), RESUME
// completes a draining PAUSE, global and per-database pauses compose, and forgotten pauses
// auto-resume at pause_max_duration.

import t from 'tap';
import { PauseController, type PauseEvent } from '../../src/pool/pause.js';
import type { Pool } from '../../src/pool/pool.js';
import type { InTransactionClient, PauseResult } from '../../src/control/contract.js';

/** What the controller reads of a pool: its database, its counts, and the pause/resume verbs. */
class FakePool {
  paused = false;
  serverCount = 0;
  waitingCount = 0;
  constructor(readonly database: string) {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

const T0 = 1_700_000_000_000;

function setup(opts: { drainMs?: number; maxMs?: number; inTx?: InTransactionClient[] } = {}) {
  const clock = { now: T0 };
  const pools: FakePool[] = [new FakePool('a'), new FakePool('b')];
  const askedInTx: (string | null)[] = [];
  const limits = { pauseDrainTimeoutMs: opts.drainMs ?? 60_000, pauseMaxDurationMs: opts.maxMs ?? 0 };
  const pause = new PauseController(
    {
      pools: () => pools as unknown as Pool[],
      inTransaction: (db) => {
        askedInTx.push(db);
        return opts.inTx ?? [];
      },
    },
    () => limits,
    () => clock.now,
  );
  const events: PauseEvent[] = [];
  pause.observe((e) => events.push(e));
  /** Sets a pool's server count and tells the controller, as the registry does. */
  const setServers = (pool: FakePool, n: number): void => {
    pool.serverCount = n;
    pause.onServersChanged();
  };
  return { clock, pools, pause, events, askedInTx, limits, setServers };
}

/** Whether a promise has settled, without waiting for it. */
async function settled<T>(p: Promise<T>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

t.test('PAUSE with no server open completes at once, drained', async (t) => {
  const { pause, pools, events } = setup({ maxMs: 600_000 });
  const r = await pause.pause(null);
  t.same(r, { result: 'drained', database: null, drainMs: 0, serversLeft: 0, inTransaction: [], autoResumeAt: new Date(T0 + 600_000).toISOString() });
  t.ok(pools.every((p) => p.paused), 'every pool stops handing out servers');
  t.same(
    events.map((e) => e.kind),
    ['pause', 'drain'],
  );
});

t.test('PAUSE completes when the last server of the paused pools is gone', async (t) => {
  const { pause, pools, clock, setServers, events } = setup();
  const [a, b] = pools as [FakePool, FakePool];
  setServers(a, 2);
  setServers(b, 1);
  const pausing = pause.pause(null);
  t.notOk(await settled(pausing), 'servers still open: draining');
  clock.now += 700;
  setServers(a, 0);
  t.notOk(await settled(pausing), 'one pool still has a server');
  clock.now += 300;
  setServers(b, 0);
  const r = await pausing;
  t.equal(r.result, 'drained');
  t.equal(r.drainMs, 1000, 'measured on the injected clock');
  t.equal(r.serversLeft, 0);
  t.same(events[1], { kind: 'drain', database: null, result: 'drained', drainMs: 1000, serversLeft: 0, inTransaction: 0 });
});

t.test('the drain deadline: timeout, the servers left, and the clients still in a transaction', async (t) => {
  const who: InTransactionClient = { client: 7, user: 'u', database: 'a', addr: '127.0.0.1', port: 5555, idleMs: 1200 };
  const { pause, pools, clock, setServers, askedInTx } = setup({ inTx: [who] });
  const [a] = pools as [FakePool];
  setServers(a, 2);
  const pausing = pause.pause('a', 30);
  clock.now += 5000;
  // The deadline timer is unref'ed (it must not hold the process open): keep the loop alive past it.
  await new Promise((r) => setTimeout(r, 100));
  const r = await pausing;
  t.equal(r.result, 'timeout');
  t.equal(r.database, 'a');
  t.equal(r.drainMs, 5000);
  t.equal(r.serversLeft, 2);
  t.same(r.inTransaction, [who]);
  t.same(askedInTx, ['a'], 'asked about the paused database only');
  t.ok(a.paused, 'a deadline does not lift the pause');
  t.ok(pause.isPaused('a'));
});

t.test('a per-database pause drains that database only', async (t) => {
  const { pause, pools, setServers } = setup();
  const [a, b] = pools as [FakePool, FakePool];
  setServers(a, 1);
  setServers(b, 3);
  const pausing = pause.pause('a');
  t.ok(a.paused);
  t.notOk(b.paused, 'other databases keep serving');
  t.ok(pause.isPaused('a'));
  t.notOk(pause.isPaused('b'));
  t.same(pause.pausedDatabases(), ['a']);
  t.equal(pause.globalState, null);
  setServers(a, 0);
  t.equal((await pausing).result, 'drained', "b's servers do not hold a's pause");
});

t.test('RESUME completes a draining PAUSE and reports the waiting clients', async (t) => {
  const { pause, pools, clock, setServers, events } = setup();
  const [a, b] = pools as [FakePool, FakePool];
  setServers(a, 1);
  a.waitingCount = 4;
  b.waitingCount = 2;
  const pausing = pause.pause(null);
  clock.now += 250;
  const resumed = pause.resume(null);
  t.same(resumed, { database: null, wasPaused: true, pausedMs: 250, waitingClients: 6 });
  const r: PauseResult = await pausing;
  t.equal(r.result, 'resumed');
  t.ok(pools.every((p) => !p.paused));
  t.same(events.at(-1), { kind: 'resume', database: null, pausedMs: 250, waitingClients: 6, auto: false });
  t.same(pause.resume(null), { database: null, wasPaused: false, pausedMs: 0, waitingClients: 6 }, 'RESUME when not paused: nothing to lift');
  t.equal(events.filter((e) => e.kind === 'resume').length, 1, 'and no event');
});

t.test('global and per-database pauses compose', async (t) => {
  const { pause, pools, clock, setServers } = setup();
  const [a, b] = pools as [FakePool, FakePool];
  setServers(a, 1);
  const aPause = pause.pause('a');
  clock.now += 100;
  void pause.pause(null);
  t.ok(a.paused && b.paused);
  pause.resume('a');
  t.ok(a.paused, "a's own pause lifted, the global one still holds it");
  t.ok(pause.isPaused('a'));
  t.notOk(await settled(aPause), "a PAUSE of 'a' does not complete while 'a' is still paused");
  void pause.pause('b');
  clock.now += 50;
  const r = pause.resume(null);
  t.ok(r.wasPaused);
  t.equal(r.pausedMs, 50, "measured from the global pause's own start");
  t.ok(!a.paused && !b.paused, 'a global RESUME lifts every pause, per-database ones included');
  t.same(pause.pausedDatabases(), []);
  t.equal((await aPause).result, 'resumed');
});

t.test('PAUSE is idempotent: a second one keeps the first start and auto-resume time', async (t) => {
  const { pause, clock, events } = setup({ maxMs: 10_000 });
  await pause.pause(null);
  clock.now += 4000;
  await pause.pause(null);
  t.equal(pause.globalState?.since, T0, 'the first start');
  t.equal(pause.globalState?.autoResumeAt, T0 + 10_000, 'the first auto-resume time');
  t.equal(events.filter((e) => e.kind === 'pause').length, 1, 'one pause event');
  t.equal(pause.resume(null).pausedMs, 4000, 'paused since the first PAUSE');
});

t.test('auto-resume at pause_max_duration, global and per database', async (t) => {
  const { pause, pools, clock, events, limits } = setup({ maxMs: 60_000 });
  const [a, b] = pools as [FakePool, FakePool];
  await pause.pause(null);
  clock.now += 10_000;
  await pause.pause('b');
  clock.now = T0 + 59_999;
  pause.sweep(clock.now);
  t.ok(a.paused, 'not yet');
  clock.now = T0 + 60_000;
  pause.sweep(clock.now);
  t.equal(pause.globalState, null, 'the global pause is lifted');
  t.notOk(a.paused);
  t.equal(pause.autoResumes, 1);
  t.same(events.at(-1), { kind: 'resume', database: null, pausedMs: 60_000, waitingClients: 0, auto: true });
  t.notOk(b.paused, "a global resume lifts b's pause as well");

  limits.pauseMaxDurationMs = 0;
  await pause.pause('a');
  t.equal(pause.stateOf('a')?.autoResumeAt, null, 'pause_max_duration 0: no auto-resume');
  clock.now += 10 * 365 * 24 * 3600_000;
  pause.sweep(clock.now);
  t.ok(a.paused, 'still paused years later');

  limits.pauseMaxDurationMs = 1000;
  pause.resume('a');
  await pause.pause('a');
  clock.now += 1000;
  pause.sweep(clock.now);
  t.notOk(pause.isPaused('a'), 'a per-database pause auto-resumes too');
  t.equal(pause.autoResumes, 2);
});

t.test('a pool created during a pause starts paused', async (t) => {
  const { pause } = setup();
  await pause.pause('c');
  const c = new FakePool('c');
  const d = new FakePool('d');
  d.paused = true;
  pause.onPoolCreated(c as unknown as Pool);
  pause.onPoolCreated(d as unknown as Pool);
  t.ok(c.paused);
  t.notOk(d.paused, 'a pool of a database not paused serves');
});

t.test('close resolves every PAUSE still draining', async (t) => {
  const { pause, pools, setServers } = setup();
  setServers(pools[0]!, 1);
  const p1 = pause.pause(null);
  const p2 = pause.pause('a');
  pause.close();
  t.equal((await p1).result, 'resumed');
  t.equal((await p2).result, 'resumed');
});
