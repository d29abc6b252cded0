// The write gate with a real primary and a streaming standby: with host=standby,primary all traffic
// goes to the primary; across pause, promote, stop old primary, resume, clients go on with no error.

import t from 'tap';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const primary = await startCluster({ replication: true });
t.teardown(() => primary.destroy());
await primary.psql('create table gate_t (id serial primary key, src text)');
const standby = await primary.basebackupStandby();
t.teardown(() => standby.destroy());

const relay = await startRelay(primary, {
  settings: { defaultPoolSize: 4, queryWaitTimeoutMs: 30_000 },
  databases: { '*': { hosts: [{ host: standby.host, port: standby.port }, { host: primary.host, port: primary.port }], targetSessionAttrs: 'read-write' } },
});
t.teardown(() => relay.stop());

t.test('all traffic goes to the primary; the standby is refused by the gate', async (t) => {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  t.teardown(() => c.end());
  for (let i = 0; i < 5; i++) {
    const r = await c.query(`insert into gate_t (src) values ('before') returning pg_is_in_recovery() as rec, inet_server_port() as port`);
    t.equal(r.rows[0].rec, false);
    t.equal(r.rows[0].port, primary.port);
  }
  const db = relay.app.control.state().databases.find((d) => d.name === 'postgres');
  t.equal(db?.upstream?.port, primary.port);
  t.equal(db?.upstream?.writable, true);
  t.ok((relay.app.connector.writeGateRejections.get('postgres') ?? 0) >= 1, 'the standby was tried and rejected');
});

t.test('pause, promote the standby, stop the old primary, resume: clients continue with 0 errors', async (t) => {
  const workers = 6;
  let stop = false;
  let ok = 0;
  const errors: string[] = [];
  const ports = new Set<number>();
  const loops = Array.from({ length: workers }, async () => {
    const c = new pg.Client({ connectionString: relay.url() });
    c.on('error', (e) => errors.push(`client error: ${e.message}`));
    await c.connect();
    while (!stop) {
      try {
        const r = await c.query(`insert into gate_t (src) values ('load') returning inet_server_port() as port`);
        ports.add(r.rows[0].port);
        ok++;
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    await c.end();
  });
  await new Promise((r) => setTimeout(r, 500));
  const p = await relay.app.control.pause({ timeoutMs: 5000 });
  t.equal(p.result, 'drained');
  await standby.promote();
  await primary.stop('fast');
  relay.app.control.resume();
  await new Promise((r) => setTimeout(r, 1500));
  stop = true;
  await Promise.all(loops);
  t.same(errors, [], 'no client saw an error');
  t.ok(ok > 50, `${ok} inserts committed`);
  t.ok(ports.has(standby.port), 'after resume the writes went to the promoted standby');
  const after = await standby.psql(`select count(*) from gate_t where src = 'load'`);
  t.ok(Number(after) > 0);
  t.equal(relay.app.control.state().databases.find((d) => d.name === 'postgres')?.upstream?.port, standby.port);
});
