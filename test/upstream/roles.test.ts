// Per-database roles with a real primary and a streaming standby: a database behind one replica
// address without target_session_attrs is served; a PAUSE or hint for the primary never holds a
// database that points at the replica; repeated write-gate rejections are logged once per change
// of state, with a count.

import t from 'tap';
import pg from 'pg';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { ServiceProxy } from '../harness/service-proxy.js';
import { App } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';

const primary = await startCluster({ replication: true });
t.teardown(() => primary.destroy());
const standby = await primary.basebackupStandby();
t.teardown(() => standby.destroy());
const primaryNode = `127.0.0.1:${primary.port}`;

async function query(url: string, sql: string, timeoutMs: number): Promise<{ rows?: Record<string, unknown>[]; error?: string; ms: number }> {
  const started = Date.now();
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await Promise.race([
      c.query(sql),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    return { rows: r.rows, ms: Date.now() - started };
  } catch (e) {
    return { error: (e as Error).message, ms: Date.now() - started };
  } finally {
    void c.end().catch(() => undefined);
  }
}

t.test('a database behind one replica address, without target_session_attrs, is served', async (t) => {
  const relay = await startRelay(primary, {
    settings: { queryWaitTimeoutMs: 3000 },
    databases: { reporting: { hosts: [{ host: '127.0.0.1', port: standby.port }], dbname: 'postgres' } },
  });
  t.teardown(() => relay.stop());
  const r = await query(relay.url({ database: 'reporting' }), 'select pg_is_in_recovery() as rec', 5000);
  t.equal(r.error, undefined, 'no error');
  t.same(r.rows, [{ rec: true }], 'served by the standby');
  t.ok(r.ms < 2000, `answered in ${r.ms} ms`);
  const gate = relay.app.control.state().databases.find((d) => d.name === 'reporting')?.gate;
  t.ok(gate === 'learning' || gate === 'any', `every server is used while it learns, then it is a read-only pool (gate ${gate})`);
});

t.test('a PAUSE for the primary node does not hold a database on the replica', async (t) => {
  const relay = await startRelay(primary, {
    admin: true,
    settings: { queryWaitTimeoutMs: 10_000 },
    databases: {
      app: { hosts: [{ host: '127.0.0.1', port: primary.port }], dbname: 'postgres' },
      reporting: { hosts: [{ host: '127.0.0.1', port: standby.port }], dbname: 'postgres', targetSessionAttrs: 'read-only' },
    },
  });
  t.teardown(() => relay.stop());
  t.same((await query(relay.url({ database: 'app' }), 'select 1 as x', 5000)).rows, [{ x: 1 }]);
  t.same((await query(relay.url({ database: 'reporting' }), 'select 1 as x', 5000)).rows, [{ x: 1 }]);
  const p = await relay.app.control.pause({ node: primaryNode, timeoutMs: 3000 });
  t.equal(p.result, 'drained');
  const reporting = await query(relay.url({ database: 'reporting' }), 'select pg_is_in_recovery() as rec', 2000);
  t.same(reporting.rows, [{ rec: true }], `reporting is served during the pause (${reporting.error ?? reporting.ms + ' ms'})`);
  const app = await query(relay.url({ database: 'app' }), 'select 1 as x', 700);
  t.match(app.error ?? '', /no answer/, 'app is held by the pause');
  t.ok(relay.app.control.state().databases.find((d) => d.name === 'app')?.paused);
  t.notOk(relay.app.control.state().databases.find((d) => d.name === 'reporting')?.paused);
  relay.app.control.resume();
});

t.test('before_stop then on_start primary: the primary database resumes although a replica pool exists', async (t) => {
  // app reaches the primary through a Service; the hook names the node by its own address.
  const service = await ServiceProxy.start({ host: '127.0.0.1', port: primary.port });
  t.teardown(() => service.stop());
  const relay = await startRelay(primary, {
    admin: true,
    settings: { queryWaitTimeoutMs: 20_000, pauseMaxDurationMs: 60_000 },
    databases: {
      app: { hosts: [{ host: '127.0.0.1', port: service.port }], dbname: 'postgres' },
      reporting: { hosts: [{ host: '127.0.0.1', port: standby.port }], dbname: 'postgres' },
    },
  });
  t.teardown(() => relay.stop());
  t.same((await query(relay.url({ database: 'app' }), 'select 1 as x', 5000)).rows, [{ x: 1 }]);
  // A reporting client is connected and working while the hook runs.
  const reporting = query(relay.url({ database: 'reporting' }), 'select pg_sleep(0.2), 1 as x', 15_000);
  await new Promise((r) => setTimeout(r, 100));
  const p = await relay.app.control.pause({ node: primaryNode, timeoutMs: 3000 });
  t.equal(p.result, 'drained');
  const held = query(relay.url({ database: 'app' }), 'select 1 as x', 15_000);
  relay.app.control.primaryHint({ node: primaryNode, role: 'primary' });
  const r = await held;
  t.same(r.rows, [{ x: 1 }], `app resumed (${r.error ?? r.ms + ' ms'})`);
  t.ok(r.ms < 3000, `held for ${r.ms} ms`);
  t.notOk(relay.app.control.state().paused, 'nothing left paused');
  t.same((await reporting).rows, [{ pg_sleep: '', x: 1 }]);
});

t.test('a primary Service whose first login lands on a replica still ends up following the primary', async (t) => {
  // A router that has not run its checks yet sends the first login to the replica.
  const service = await ServiceProxy.start({ host: '127.0.0.1', port: standby.port });
  t.teardown(() => service.stop());
  const relay = await startRelay(primary, { settings: { queryWaitTimeoutMs: 20_000 }, databases: { app: { hosts: [{ host: '127.0.0.1', port: service.port }], dbname: 'postgres' } } });
  t.teardown(() => relay.stop());
  t.same((await query(relay.url({ database: 'app' }), 'select pg_is_in_recovery() as rec', 5000)).rows, [{ rec: true }], 'the first login got the replica');
  service.routeTo({ host: '127.0.0.1', port: primary.port });
  relay.app.control.reconnect();
  t.same((await query(relay.url({ database: 'app' }), 'select pg_is_in_recovery() as rec', 5000)).rows, [{ rec: false }], 'then the primary');
  t.equal(relay.app.control.state().databases.find((d) => d.name === 'app')?.gate, 'read-write', 'a writable server settles it: it follows the primary');
  // From now on a read-only server behind the Service is refused: the client waits for the primary.
  service.routeTo({ host: '127.0.0.1', port: standby.port });
  relay.app.control.reconnect();
  const held = query(relay.url({ database: 'app' }), 'select pg_is_in_recovery() as rec', 10_000);
  await new Promise((r) => setTimeout(r, 600));
  service.routeTo({ host: '127.0.0.1', port: primary.port });
  const r = await held;
  t.same(r.rows, [{ rec: false }], `held, then served by the primary (${r.ms} ms)`);
  t.ok(r.ms >= 500, 'not by the replica');
});

t.test('write-gate rejections are logged once per change of state, with a count', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const config = buildConfig({
    settings: { listenAddr: ['127.0.0.1'], listenPort: 0, authType: 'trust', logConnections: false, logDisconnections: false, queryWaitTimeoutMs: 30_000 },
    databases: { ro: { hosts: [{ host: '127.0.0.1', port: standby.port }], dbname: 'postgres', targetSessionAttrs: 'read-write' } },
  });
  const app = new App(config, { logger: pino({ level: 'info' }, sink) });
  await app.start();
  t.teardown(() => app.stop(200));
  const waiting = query(`postgresql://postgres@127.0.0.1:${app.port}/ro`, 'select pg_is_in_recovery() as rec', 20_000);
  await new Promise((r) => setTimeout(r, 2500));
  const rejected = lines.filter((l) => /write gate/.test(String(l['msg'])));
  const attempts = app.connector.writeGateRejections.get('ro') ?? 0;
  t.ok(attempts >= 5, `${attempts} logins were refused by the gate`);
  t.equal(rejected.length, 1, `one log line for ${attempts} rejections: ${JSON.stringify(rejected.map((l) => l['msg']))}`);
  // A change of state (the standby becomes writable) closes the episode with its count.
  await standby.promote();
  const r = await waiting;
  t.same(r.rows, [{ rec: false }], 'served once the server passes');
  const summary = lines.filter((l) => /write gate/.test(String(l['msg']))).at(-1)!;
  t.ok(Number(summary['rejections']) >= attempts, `closing line counts ${String(summary['rejections'])} rejections`);
});
