// Using what the hook says, with a real primary and standby behind a stand-in Service: a hint
// naming the new primary is confirmed on that node's own address, and clients are released as
// soon as a login through the Service passes the write gate (a held login does not delay it);
// while a before_stop pause is in force pgrelay probes by itself and resumes with no hint at all.

import t from 'tap';
import pg from 'pg';
import { startCluster, type PgCluster } from '../harness/pg-cluster.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { ServiceProxy } from '../harness/service-proxy.js';

/** What the helpers need of a test. */
type Scope = { teardown(fn: () => unknown): void };

async function pair(t: Scope): Promise<{ primary: PgCluster; standby: PgCluster }> {
  const primary = await startCluster({ replication: true });
  t.teardown(() => primary.destroy());
  const standby = await primary.basebackupStandby();
  t.teardown(() => standby.destroy());
  return { primary, standby };
}

/** A client whose next query is held; resolves with the time its answer arrived (or Infinity). */
async function heldQuery(t: Scope, relay: Relay, timeoutMs = 15_000): Promise<{ answered: Promise<number>; client: pg.Client }> {
  const client = new pg.Client({ connectionString: relay.url() });
  client.on('error', () => undefined);
  await client.connect();
  t.teardown(() => client.end().catch(() => undefined));
  const answered = Promise.race([
    client.query("select pg_is_in_recovery() as rec, current_setting('port') as port").then(() => Date.now(), () => Infinity),
    new Promise<number>((r) => setTimeout(() => r(Infinity), timeoutMs).unref()),
  ]);
  return { answered, client };
}

async function warm(relay: Relay): Promise<void> {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  await c.query('select 1');
  await c.end();
}

/**
 * pgrelay behind a stand-in Service that routes to `primary`, warmed up, with a before_stop pause
 * for that node in force (drained).
 */
async function pausedBehindService(t: Scope & { equal(a: unknown, b: unknown): void }, primary: PgCluster): Promise<{ service: ServiceProxy; relay: Relay }> {
  const service = await ServiceProxy.start({ host: '127.0.0.1', port: primary.port });
  t.teardown(() => service.stop());
  const relay = await startRelay(primary, { admin: true, settings: { queryWaitTimeoutMs: 30_000, pauseMaxDurationMs: 60_000 }, databases: { '*': { hosts: [{ host: '127.0.0.1', port: service.port }] } } });
  t.teardown(() => relay.stop());
  await warm(relay);
  t.equal((await relay.app.control.pause({ node: `127.0.0.1:${primary.port}`, timeoutMs: 3000 })).result, 'drained');
  return { service, relay };
}

const isSettled = (p: Promise<number>): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 0))]);

t.test('hint with a Service: confirmed on the node, released through the Service, not held by one slow login', async (t) => {
  const { primary, standby } = await pair(t);
  const { service, relay } = await pausedBehindService(t, primary);
  const { answered } = await heldQuery(t, relay);
  // The old primary stops; the Service still routes to it and holds the connections (a router
  // retrying a stopped node). The standby is promoted and the hook names it.
  service.routeTo('hold');
  await primary.stop('fast');
  await standby.promote();
  relay.app.control.primaryHint({ node: `127.0.0.1:${standby.port}`, role: 'primary' });
  await new Promise((r) => setTimeout(r, 800));
  t.notOk(await isSettled(answered), 'still held while no login through the Service can pass');
  t.ok(relay.app.control.state().paused, 'still paused: the node is confirmed, the Service is not there yet');
  const routedAt = Date.now();
  service.routeTo({ host: '127.0.0.1', port: standby.port });
  const at = await answered;
  t.ok(at - routedAt < 400, `released ${at - routedAt} ms after the Service routed to the new primary`);
  for (const s of relay.app.control.servers()) t.equal(s.port, service.port, `server ${s.id} goes through the Service, not around it`);
});

t.test('restart of the primary behind a Service, no hint: pgrelay resumes by itself', async (t) => {
  const primary = await startCluster();
  t.teardown(() => primary.destroy());
  const { relay } = await pausedBehindService(t, primary);
  const { answered } = await heldQuery(t, relay);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(await isSettled(answered), 'held while the node still runs (before_stop comes before the stop)');
  await primary.stop('fast');
  await new Promise((r) => setTimeout(r, 300));
  await primary.start();
  const upAt = Date.now();
  const at = await answered;
  t.ok(at - upAt < 500, `resumed ${at - upAt} ms after the node accepted connections again`);
});

t.test('behind a Service the release logins start in pairs', async (t) => {
  // A router that balances new connections in turn gives two connections opened together two
  // different nodes; single logins can fall into step with another client's and always get the
  // old node's turn. Here the Service holds every login while the node is down, and the times at
  // which pgrelay's release logins reach it show whether they come in pairs.
  const primary = await startCluster();
  t.teardown(() => primary.destroy());
  const { service, relay } = await pausedBehindService(t, primary);
  const { answered } = await heldQuery(t, relay);
  service.routeTo('hold');
  await primary.stop('fast');
  // pgrelay sees the node refuse on its own address, then logs in through the Service.
  await new Promise((r) => setTimeout(r, 700));
  const times = service.arrivals.slice(-Math.min(service.arrivals.length, 40));
  const paired = times.filter((at, i) => (i > 0 && at - times[i - 1]! < 3) || (i + 1 < times.length && times[i + 1]! - at < 3)).length;
  t.ok(times.length >= 8, `${times.length} release logins reached the Service`);
  t.ok(paired >= times.length * 0.7, `${paired} of ${times.length} came with a partner within 3 ms`);
  service.routeTo({ host: '127.0.0.1', port: primary.port });
  await primary.start();
  t.ok((await answered) !== Infinity, 'and the held query is answered once the node is back');
});

t.test('switchover with direct hosts, no hint: pgrelay finds the new primary by itself', async (t) => {
  const { primary, standby } = await pair(t);
  const relay = await startRelay(primary, {
    admin: true,
    settings: { queryWaitTimeoutMs: 30_000, pauseMaxDurationMs: 60_000 },
    databases: { '*': { hosts: [{ host: '127.0.0.1', port: primary.port }, { host: '127.0.0.1', port: standby.port }] } },
  });
  t.teardown(() => relay.stop());
  await warm(relay);
  t.equal((await relay.app.control.pause({ node: `127.0.0.1:${primary.port}`, timeoutMs: 3000 })).result, 'drained');
  const { answered } = await heldQuery(t, relay);
  await primary.stop('fast');
  await standby.promote();
  const upAt = Date.now();
  const at = await answered;
  t.ok(at - upAt < 500, `resumed ${at - upAt} ms after the standby was promoted`);
});

t.test('switchover behind a Service, no hint: a writable login through the Service resumes', async (t) => {
  const { primary, standby } = await pair(t);
  const { service, relay } = await pausedBehindService(t, primary);
  const { answered } = await heldQuery(t, relay);
  await primary.stop('fast');
  service.routeTo('refuse');
  await standby.promote();
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(await isSettled(answered), 'held while the Service routes nowhere');
  const routedAt = Date.now();
  service.routeTo({ host: '127.0.0.1', port: standby.port });
  const at = await answered;
  t.ok(at - routedAt < 400, `resumed ${at - routedAt} ms after the Service routed to the new primary`);
});

t.test('a hint that arrives before the promotion does not drop the database from the pause', async (t) => {
  const { primary, standby } = await pair(t);
  const relay = await startRelay(primary, {
    admin: true,
    settings: { queryWaitTimeoutMs: 30_000, pauseMaxDurationMs: 60_000 },
    databases: { '*': { hosts: [{ host: '127.0.0.1', port: primary.port }, { host: '127.0.0.1', port: standby.port }] } },
  });
  t.teardown(() => relay.stop());
  await warm(relay);
  t.equal((await relay.app.control.pause({ node: `127.0.0.1:${primary.port}`, timeoutMs: 3000 })).result, 'drained');
  const { answered } = await heldQuery(t, relay);
  await primary.stop('fast');
  // The hook names the standby early (its callback fired before it accepts writes).
  relay.app.control.primaryHint({ node: `127.0.0.1:${standby.port}`, role: 'primary' });
  await new Promise((r) => setTimeout(r, 400));
  t.notOk(await isSettled(answered), 'held: the hinted node is still read-only');
  t.ok(relay.app.control.state().databases.find((d) => d.name === 'postgres')?.paused, 'the database is still held by the pause');
  await standby.promote();
  const upAt = Date.now();
  const at = await answered;
  t.ok(at - upAt < 500, `resumed ${at - upAt} ms after the promotion`);
});

t.test("two clusters' hooks pause at once: each search releases its own databases, and the pause ends", async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  const relay = await startRelay(a.primary, {
    admin: true,
    settings: { queryWaitTimeoutMs: 30_000, pauseMaxDurationMs: 60_000 },
    databases: {
      one: { dbname: 'postgres', hosts: [{ host: '127.0.0.1', port: a.primary.port }, { host: '127.0.0.1', port: a.standby.port }] },
      two: { dbname: 'postgres', hosts: [{ host: '127.0.0.1', port: b.primary.port }, { host: '127.0.0.1', port: b.standby.port }] },
    },
  });
  t.teardown(() => relay.stop());
  const clients: pg.Client[] = [];
  for (const database of ['one', 'two']) {
    const c = new pg.Client({ connectionString: relay.url({ database }) });
    c.on('error', () => undefined);
    await c.connect();
    await c.query('select 1');
    t.teardown(() => c.end().catch(() => undefined));
    clients.push(c);
  }
  t.equal((await relay.app.control.pause({ node: `127.0.0.1:${a.primary.port}`, timeoutMs: 3000 })).result, 'drained');
  t.equal((await relay.app.control.pause({ node: `127.0.0.1:${b.primary.port}`, timeoutMs: 3000 })).result, 'drained');
  const [one, two] = clients.map((c) => Promise.race([c.query('select 1').then(() => Date.now(), () => Infinity), new Promise<number>((r) => setTimeout(() => r(Infinity), 15_000).unref())]));
  // Cluster b fails over first: only its database is released; a's node has not even stopped.
  await b.primary.stop('fast');
  await b.standby.promote();
  const bUp = Date.now();
  t.ok((await two!) - bUp < 1000, `two resumed ${(await two!) - bUp} ms after its promotion`);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(await isSettled(one!), 'one is still held: its node is still the primary, about to stop');
  t.ok(relay.app.control.state().databases.find((d) => d.name === 'one')?.paused, 'one is still paused');
  await a.primary.stop('fast');
  await a.standby.promote();
  const aUp = Date.now();
  t.ok((await one!) - aUp < 1000, `one resumed ${(await one!) - aUp} ms after its promotion`);
  t.notOk(relay.app.control.state().paused, 'the pause has ended');
});
