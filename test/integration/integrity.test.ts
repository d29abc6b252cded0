// Transaction boundaries under faults, on real PostgreSQL through pgrelay with a pool of one, so
// that every client lands on the server the previous one left: a server goes back to the pool only
// at a true protocol boundary, nothing a client abandoned is ever committed, and a client whose
// transaction was lost is never told it is idle.

import t, { type Test } from 'tap';
import { startCluster, type PgCluster } from '../harness/pg-cluster.js';
import { startRelay, type Relay } from '../harness/relay.js';
import type { Settings } from '../../src/config/types.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { WireClient, errorFields, flush, lastStatus, parse, pbe, query, sync, types } from '../harness/wire-client.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql('create table marks (v text)');

const count = async (v: string): Promise<number> => Number(await cluster.psql(`select count(*) from marks where v = '${v}'`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function relayOf(t: Test, settings: Partial<Settings> = {}): Promise<Relay> {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 8000, ...settings } });
  t.teardown(() => relay.stop());
  return relay;
}

/** A client that must find the server clean: its reply is exactly one result and an idle ReadyForQuery. */
async function probeClean(t: Test, relay: Relay, sql: string, login = {}): Promise<string> {
  const c = await WireClient.connect(relay.port, login);
  t.teardown(() => c.destroy());
  c.send(query(sql));
  const reply = await c.readUntilReady(1, 6000);
  t.equal(types(reply), 'TDCZ', `only its own reply (${types(reply)})`);
  t.equal(lastStatus(reply), 'I');
  const row = reply.find((m) => m.type === 'D')!;
  return row.body.toString('utf8', 6, 6 + row.body.readInt32BE(2));
}

/** Waits until PostgreSQL accepts connections again (after a crash restart). */
async function recovered(pg: PgCluster): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await pg.psql('select 1');
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error('PostgreSQL did not recover');
}

t.test('B1: abandoned Parse/Bind/Execute without Sync is never committed by the next client', async (t) => {
  const relay = await relayOf(t);
  for (const withFlush of [false, true]) {
    const a = await WireClient.connect(relay.port);
    const mark = `b1-${withFlush ? 'flush' : 'noflush'}`;
    a.send(pbe(`insert into marks values ('${mark}')`), ...(withFlush ? [flush()] : []));
    if (withFlush) t.equal(types([await a.next(), await a.next(), await a.next()]), '12C', 'Flush brings the replies');
    else await sleep(100);
    a.destroy();
    await sleep(100);
    t.equal(await probeClean(t, relay, `select count(*) from marks where v = '${mark}'`), '0', `${mark}: the next client does not commit it`);
    t.equal(await count(mark), 0, `${mark}: nothing committed`);
  }
  // A named statement left behind the same way does not survive on the server.
  const a = await WireClient.connect(relay.port);
  a.send(parse('select 1', 'left_behind'), flush());
  t.equal((await a.next()).type, '1');
  a.destroy();
  await sleep(100);
  t.equal(await probeClean(t, relay, `select count(*) from pg_prepared_statements`), '0', 'no prepared statement left behind');
});

t.test('B1: a client that leaves inside a COMMIT\'s Execute: nothing pgrelay writes afterwards completes that message', async (t) => {
  // PostgreSQL reads a message by its length: bytes written after a client's partial Execute are
  // the rest of that Execute. Here the missing bytes are its row limit; a Terminate sent on the
  // way out would supply them, and the COMMIT would run and commit the insert before it.
  for (const mark of ['b1-partial-commit', 'b1-partial-commit-tracked']) {
    const relay = await relayOf(t, mark.endsWith('tracked') ? {} : { maxPreparedStatements: 0 });
    const a = await WireClient.connect(relay.port);
    const partialExecute = Buffer.from([0x45, 0, 0, 0, 9, 0]); // 'E', length 9, portal "": 4 bytes short
    a.send(pbe(`insert into marks values ('${mark}')`), parse('commit'), serialize.bind(), partialExecute);
    await sleep(100);
    a.destroy();
    await sleep(200);
    t.equal(await count(mark), 0, `${mark}: the insert of the abandoned pipeline is not committed`);
    t.equal(await probeClean(t, relay, 'select 1'), '1', `${mark}: the pool serves the next client`);
  }
});

t.test('B1: twenty abandoned inserts through a pool of ten commit nothing', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 10 });
  await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const a = await WireClient.connect(relay.port);
      a.send(pbe(`insert into marks values ('b1-many')`), flush());
      await a.next();
      a.destroy();
      void i;
    }),
  );
  await sleep(200);
  const clients = await Promise.all(Array.from({ length: 10 }, () => WireClient.connect(relay.port)));
  for (const c of clients) c.send(query('select 1'));
  for (const c of clients) {
    t.equal(types(await c.readUntilReady(1, 6000)), 'TDCZ');
    c.end();
  }
  t.equal(await count('b1-many'), 0);
});

t.test('B3: BEGIN, a failing Parse with no Sync, then leaving: the pool is not lost', async (t) => {
  const relay = await relayOf(t);
  for (let i = 0; i < 3; i++) {
    const a = await WireClient.connect(relay.port);
    a.send(query('begin'));
    t.equal(lastStatus(await a.readUntilReady()), 'T');
    a.send(parse('select from where'), flush());
    t.equal((await a.next()).type, 'E', 'the Parse fails');
    a.destroy();
  }
  await sleep(100);
  const started = Date.now();
  t.equal(await probeClean(t, relay, 'select 42'), '42');
  t.ok(Date.now() - started < 3000, `served in ${Date.now() - started} ms`);
});

t.test('B4: a failing Parse with no Sync, then leaving: the next client is answered', async (t) => {
  const relay = await relayOf(t);
  for (const login of [{}, { params: { application_name: 'needs-a-replay' } }]) {
    const a = await WireClient.connect(relay.port);
    a.send(parse('select from where'));
    await sleep(100);
    a.destroy();
    await sleep(100);
    t.equal(await probeClean(t, relay, 'select 7', login), '7', `next client ${JSON.stringify(login)} answered`);
  }
  await sleep(100);
  t.same([...relay.app.clients].map((c) => c.state), ['idle', 'idle'], 'only the two probe clients remain, both idle');
});

t.test('B5: a server is not released in the middle of a pipeline', async (t) => {
  const relay = await relayOf(t);
  const a = await WireClient.connect(relay.port);
  a.send(pbe(`insert into marks values ('b5-1')`), sync(), pbe(`insert into marks values ('b5-2')`));
  t.equal(types(await a.readUntilReady()), '12CZ', 'first batch answered');
  // Another client arrives while batch 2 waits for its Sync: it must wait, and see only its own reply.
  const b = await WireClient.connect(relay.port);
  t.teardown(() => b.destroy());
  b.send(query(`select count(*) from marks where v = 'b5-2'`));
  t.same(await b.readFor(1300), [], 'the other client waits for the server');
  a.send(sync());
  const rest = await a.readUntilReady();
  t.equal(types(rest), '12CZ', 'batch 2 answered to the client that sent it');
  t.equal(lastStatus(rest), 'I');
  const reply = await b.readUntilReady(1, 6000);
  t.equal(types(reply), 'TDCZ', `the other client gets only its own reply (${types(reply)})`);
  t.equal(await count('b5-2'), 1, 'batch 2 committed by its own Sync');
  a.end();

  // The same pipeline whose second Sync never comes: batch 2 is not committed by anyone.
  const c = await WireClient.connect(relay.port);
  c.send(pbe(`insert into marks values ('b5-3')`), sync(), pbe(`insert into marks values ('b5-4')`), flush());
  t.equal(types(await c.readUntilReady()), '12CZ');
  t.equal(types([await c.next(), await c.next(), await c.next()]), '12C');
  c.destroy();
  await sleep(100);
  t.equal(await probeClean(t, relay, `select count(*) from marks where v = 'b5-4'`), '0');
  t.equal(await count('b5-3'), 1);
  t.equal(await count('b5-4'), 0);
});

/** The backend a client's current transaction runs on. */
async function backendPid(c: WireClient): Promise<number> {
  c.send(query('select pg_backend_pid()'));
  const reply = await c.readUntilReady();
  const row = reply.find((m) => m.type === 'D')!;
  return Number(row.body.toString('utf8', 6, 6 + row.body.readInt32BE(2)));
}

for (const protocol of ['simple', 'extended'] as const) {
  t.test(`B2 (${protocol}): a server lost inside BEGIN closes the client with a FATAL, never 'I'`, async (t) => {
    const relay = await relayOf(t, { defaultPoolSize: 2 });
    const a = await WireClient.connect(relay.port);
    a.send(query('begin'));
    t.equal(lastStatus(await a.readUntilReady()), 'T');
    a.send(query(`insert into marks values ('b2-${protocol}-1')`));
    t.equal(lastStatus(await a.readUntilReady()), 'T');
    const pid = await backendPid(a);
    if (protocol === 'simple') a.send(query('select pg_sleep(3)'));
    else a.send(pbe('select pg_sleep(3)'), sync());
    await sleep(300);
    process.kill(pid, 'SIGKILL');
    const seen = [];
    for (;;) {
      const m = await a.next(10_000).catch(() => null);
      if (m === null) break;
      seen.push(m);
    }
    t.notOk(seen.some((m) => m.type === 'Z'), `no ReadyForQuery after the loss (${types(seen)})`);
    const fatal = seen.find((m) => m.type === 'E');
    t.ok(fatal, 'an error is sent');
    t.equal(errorFields(fatal!.body).get('V'), 'FATAL');
    t.equal(errorFields(fatal!.body).get('C'), '08006');
    t.ok(a.closed, 'the connection is closed');
    // What psql would send next never runs in autocommit.
    await recovered(cluster);
    t.equal(await count(`b2-${protocol}-1`), 0, 'part 1 rolled back with the backend');
  });
}

t.test('B2: a server lost during an autocommit statement: ERROR, idle, and the session goes on', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 2 });
  const a = await WireClient.connect(relay.port);
  t.teardown(() => a.destroy());
  const pid = await backendPid(a);
  a.send(query('select pg_sleep(3)'));
  await sleep(300);
  process.kill(pid, 'SIGKILL');
  const reply = await a.readUntilReady(1, 10_000);
  t.equal(types(reply), 'EZ');
  t.equal(errorFields(reply[0]!.body).get('C'), '08006');
  t.equal(lastStatus(reply), 'I', 'no transaction was open: the client may go on');
  await recovered(cluster);
  a.send(query('select 5'));
  const next = await a.readUntilReady(1, 10_000);
  t.equal(types(next), 'TDCZ', 'the next transaction runs on a new server');
});

t.test('a session setting the server refuses costs one server connection, and the client learns why', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 4 });
  const a = await WireClient.connect(relay.port, { params: { client_encoding: 'nonsense' } });
  a.send(query('select 1'));
  const reply = await a.readFor(3000);
  const err = reply.find((m) => m.type === 'E');
  t.ok(err, `an error (${types(reply)})`);
  t.equal(errorFields(err!.body).get('V'), 'FATAL');
  t.equal(errorFields(err!.body).get('C'), '22023', 'the server’s own SQLSTATE: invalid_parameter_value');
  t.ok(a.closed, 'the client is closed');
  const pool = [...relay.app.ctx.registry.pools()][0]!;
  t.equal(pool.stats.serverConnects, 1, 'one server connection, not one per retry');
  t.equal(await probeClean(t, relay, 'select 8'), '8', 'the server that refused it serves the next client');
  t.equal(pool.stats.serverConnects, 1);
});
