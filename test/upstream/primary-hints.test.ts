// PrimaryHints on a real primary and standby behind pgrelay: a hint does nothing when nothing is
// paused, a hint naming the primary resumes a pause once the node is verified, a hint naming a
// node that is not primary leaves the pause in force, and the leader-lock watch retires the
// servers of an upstream whose Patroni (here a stand-in REST endpoint) no longer holds the lock.

import t, { type Test } from 'tap';
import pg from 'pg';
import http from 'node:http';
import type net from 'node:net';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { Disconnect } from '../../src/errors.js';

const primary = await startCluster({ replication: true });
t.teardown(() => primary.destroy());
const standby = await primary.basebackupStandby();
t.teardown(() => standby.destroy());
const node = (c: { host: string; port: number }): string => `${c.host}:${c.port}`;

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (cond()) return true;
  return cond();
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

const serverPort = async (c: pg.Client): Promise<number> => (await c.query('select inet_server_port() as p')).rows[0].p;

async function relayOverBoth(t: Test, patroniApi: string[] = []) {
  const relay = await startRelay(primary, {
    settings: { defaultPoolSize: 2, queryWaitTimeoutMs: 60_000, pauseMaxDurationMs: 60_000 },
    databases: { postgres: { hosts: [{ host: standby.host, port: standby.port }, { host: primary.host, port: primary.port }], targetSessionAttrs: 'read-write', patroniApi } },
  });
  t.teardown(() => relay.stop());
  return relay;
}

t.test('a hint while nothing is paused changes nothing', async (t) => {
  const relay = await relayOverBoth(t);
  const c = await client(relay.url());
  t.teardown(() => c.end());
  t.equal(await serverPort(c), primary.port);
  const r = relay.app.hints.hint(node(primary));
  t.equal(r.paused, false);
  t.equal(r.verifying, false, 'nothing to verify');
  t.equal(relay.app.pause.globalState, null);
  t.equal(await serverPort(c), primary.port, 'clients go on');
});

t.test('a hint naming the primary resumes a pause once the node passes', async (t) => {
  const relay = await relayOverBoth(t);
  const c = await client(relay.url());
  t.teardown(() => c.end());
  await serverPort(c);
  t.equal((await relay.app.control.pause({ timeoutMs: 5000 })).result, 'drained');
  let answeredAt = 0;
  const held = serverPort(c).then((p) => {
    answeredAt = Date.now();
    return p;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.equal(answeredAt, 0, 'a query waits while paused');
  const hintedAt = Date.now();
  const r = relay.app.hints.hint(node(primary));
  t.equal(r.paused, true);
  t.equal(r.verifying, true);
  t.ok(r.databases.includes('postgres'), `the hint concerns database postgres (${r.databases.join(',')})`);
  t.ok(await until(() => relay.app.pause.globalState === null, 10_000), 'the pause is lifted');
  t.equal(await held, primary.port, 'the held query ran, on the primary');
  t.ok(answeredAt >= hintedAt, 'after the hint, not before');
});

t.test('a hint naming a node that is not primary leaves the pause in force', async (t) => {
  const relay = await relayOverBoth(t);
  const c = await client(relay.url());
  t.teardown(() => c.end());
  await serverPort(c);
  await relay.app.control.pause({ timeoutMs: 5000 });
  let answered = false;
  const held = serverPort(c).then((p) => {
    answered = true;
    return p;
  });
  const r = relay.app.hints.hint(node(standby));
  t.equal(r.paused, true);
  await new Promise((r) => setTimeout(r, 1500));
  t.not(relay.app.pause.globalState, null, 'still paused: the standby never passes the write gate');
  t.notOk(answered, 'the held query still waits');
  relay.app.control.resume();
  t.equal(await held, primary.port, 'RESUME releases it, to the primary');
});

t.test("the leader-lock watch retires the servers of an upstream that lost Patroni's leader lock", async (t) => {
  // Stand-ins for the two nodes' Patroni REST APIs: GET /primary is 200 only on the leader.
  const leader = { standby: false, primary: true };
  const apis = await Promise.all(
    (['standby', 'primary'] as const).map(async (name) => {
      const server = http.createServer((req, res) => {
        res.statusCode = req.url === '/primary' && leader[name] ? 200 : 503;
        res.end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.teardown(() => server.close());
      return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    }),
  );
  const relay = await relayOverBoth(t, apis);
  const c = await client(relay.url());
  t.teardown(() => c.end());
  t.equal(await serverPort(c), primary.port);
  t.equal(relay.app.connector.upstreams.get('postgres')?.port, primary.port);
  const leaderLost = () => relay.app.ctx.stats.disconnects.get(`server:${Disconnect.LeaderLost}`) ?? 0;
  relay.app.hints.watchLeaders();
  await new Promise((r) => setTimeout(r, 500));
  t.equal(leaderLost(), 0, 'the leader keeps its servers');

  leader.primary = false; // its Patroni lost the lock (split brain: PostgreSQL is still writable)
  await new Promise((r) => setTimeout(r, 300)); // past the leader check's cache
  relay.app.hints.watchLeaders();
  t.ok(await until(() => leaderLost() > 0, 5000), 'its idle servers are closed as leader_lost');
  t.equal(relay.app.connector.upstreams.get('postgres'), undefined, 'and it is no longer the upstream');
});
