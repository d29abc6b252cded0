// The client session's hard cases against a scripted backend: a real pgrelay (pool size 1) in front
// of a fake PostgreSQL that answers from a script, driven by a raw client. Each case checks the
// exact messages both the client and the backend see: requests held while the only server is
// busy, a server lost mid-request, cancel (held and forwarded), and a client leaving mid-COPY,
// mid-transaction or in the middle of an unsynced pipeline.

import t, { type Test } from 'tap';
import net from 'node:net';
import { startRelay, type Relay } from '../harness/relay.js';
import { errorFields, pbe, query, sync, types, WireClient, type WireMessage } from '../harness/wire-client.js';
import {
  bindComplete,
  commandComplete,
  copyInResponse,
  dataRow,
  errorResponse,
  parseComplete,
  readyForQuery,
  startScriptedBackend,
  type ScriptedBackend,
  type Step,
} from '../harness/scripted-backend.js';
import { frame } from '../harness/frames.js';
import { serialize } from '../../src/protocol/frontend-messages.js';

async function setup(t: Test, scripts: Step[][] = []): Promise<{ backend: ScriptedBackend; relay: Relay }> {
  const backend = await startScriptedBackend({ scripts });
  const relay = await startRelay(backend, { settings: { defaultPoolSize: 1 } });
  t.teardown(async () => {
    await relay.stop();
    await backend.stop();
  });
  return { backend, relay };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A client session of the relay is waiting for a server (its requests are held). */
const someoneWaiting = (relay: Relay): boolean => [...relay.app.clients].some((c) => c.state === 'waiting');

/** The bytes of messages a client read, re-encoded as they came off the wire. */
const bytesOf = (msgs: readonly WireMessage[]): Buffer => Buffer.concat(msgs.map((m) => frame(m.type, m.body)));

/** Everything the client receives until the relay closes the connection. */
async function readUntilClosed(c: WireClient): Promise<WireMessage[]> {
  const out: WireMessage[] = [];
  for (;;) {
    try {
      out.push(await c.next(10_000));
    } catch {
      return out;
    }
  }
}

/** A CancelRequest on a connection of its own, as libpq sends it; resolves when pgrelay closes it. */
async function cancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.end(serialize.cancel(processId, secretKey));
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
}

const sqlOf = (body: Buffer): string => body.toString('utf8', 0, body.length - 1);

t.test('pipelined requests held while the only server is busy: each client gets exactly its own replies, in order', async (t) => {
  let answerA!: () => void;
  const aMayFinish = new Promise<void>((resolve) => (answerA = resolve));
  const replyA = [dataRow('for A'), commandComplete('SELECT 1'), readyForQuery('I')];
  const replyB1 = [dataRow('for B1'), commandComplete('SELECT 1'), readyForQuery('I')];
  const replyB2 = [parseComplete(), bindComplete(), dataRow('for B2'), commandComplete('SELECT 1'), readyForQuery('I')];
  const { backend, relay } = await setup(t, [
    [
      { expect: 'Q', reply: () => aMayFinish.then(() => replyA) },
      { expect: 'Q', reply: replyB1 },
      // Later, in a read of its own: the server must stay B's until this second answer.
      { expect: 'PBES', reply: () => new Promise((r) => setTimeout(() => r(replyB2), 100)) },
    ],
  ]);
  const a = await WireClient.connect(relay.port);
  const b = await WireClient.connect(relay.port);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  const conn = backend.connections[0]!;
  a.send(query('select a'));
  await conn.waitForMessages(1);

  // B pipelines a simple query and an extended-protocol request, in two writes; the pool's only
  // server is A's, so both are held.
  const bRequests = Buffer.concat([query('select b1'), pbe('select b2'), sync()]);
  b.send(query('select b1'));
  await until(() => someoneWaiting(relay), 'B waits for a server');
  await new Promise((r) => setTimeout(r, 100));
  b.send(pbe('select b2'), sync());
  await new Promise((r) => setTimeout(r, 200));
  t.equal(conn.types, 'Q', "while A's transaction runs, none of B's bytes reach the backend");
  t.same(b.pending, [], 'and B is told nothing');

  answerA();
  const gotA = await a.readUntilReady(1);
  t.same(bytesOf(gotA), Buffer.concat(replyA), "A gets exactly its reply");
  const gotB = await b.readUntilReady(2);
  t.same(bytesOf(gotB), Buffer.concat([...replyB1, ...replyB2]), "B gets exactly its two replies, in order");
  t.same(await a.readFor(200), [], 'nothing of B reaches A');

  t.equal(conn.types, 'QQPBES', 'the backend saw A, then B');
  t.equal(conn.reads.length, 2, "B's held requests reached the backend in one write");
  t.same(conn.reads[1], bRequests, 'byte for byte as B sent them');
  t.equal(sqlOf(conn.received[0]!.body), 'select a');
  t.equal(backend.connections.length, 1, 'one server served both clients');
  t.same(backend.mismatches, []);
});

t.test('a server lost mid-request in autocommit: ERROR 08006 and ReadyForQuery I, and the session goes on', async (t) => {
  const { backend, relay } = await setup(t, [[{ expect: 'Q', reply: 'close' }], [{ expect: 'Q', reply: [commandComplete('SELECT 1'), readyForQuery('I')] }]]);
  const c = await WireClient.connect(relay.port);
  t.teardown(() => c.destroy());
  c.send(query('select 1'));
  const got = await c.readUntilReady(1);
  t.equal(types(got), 'EZ', 'one error, one ReadyForQuery');
  const e = errorFields(got[0]!.body);
  t.equal(e.get('S'), 'ERROR');
  t.equal(e.get('C'), '08006');
  t.same(got[1]!.body, Buffer.from('I'), 'idle: the statement failed, nothing else was open');

  c.send(query('select 2'));
  const next = await c.readUntilReady(1);
  t.same(bytesOf(next), Buffer.concat([commandComplete('SELECT 1'), readyForQuery('I')]), 'the next request is answered');
  t.equal(backend.connections.length, 2, 'by a new server connection');
  t.equal(sqlOf(backend.connections[1]!.received[0]!.body), 'select 2');
  t.notOk(c.closed);
  t.same(backend.mismatches, []);
});

t.test('a server lost inside a transaction: FATAL 08006 and the connection closes, never I', async (t) => {
  const { backend, relay } = await setup(t, [
    [
      { expect: 'Q', reply: [commandComplete('BEGIN'), readyForQuery('T')] },
      { expect: 'Q', reply: 'close' },
    ],
  ]);
  const c = await WireClient.connect(relay.port);
  t.teardown(() => c.destroy());
  c.send(query('begin'));
  t.same(bytesOf(await c.readUntilReady(1)), Buffer.concat([commandComplete('BEGIN'), readyForQuery('T')]));
  c.send(query('insert into t values (1)'));
  const got = await readUntilClosed(c);
  t.ok(c.closed, 'the connection is closed');
  t.equal(types(got), 'E', 'one FATAL and nothing else: no ReadyForQuery');
  const e = errorFields(got[0]!.body);
  t.equal(e.get('S'), 'FATAL');
  t.equal(e.get('C'), '08006');
  t.equal(backend.connections[0]!.types, 'QQ');
  t.same(backend.mismatches, []);
});

t.test('cancel of a request still held for a server: 57014 and I, and the request never reaches the backend', async (t) => {
  let answerA!: () => void;
  const aMayFinish = new Promise<void>((resolve) => (answerA = resolve));
  const { backend, relay } = await setup(t, [
    [
      { expect: 'Q', reply: () => aMayFinish.then(() => [commandComplete('SELECT 1'), readyForQuery('I')]) },
      { expect: 'Q', reply: [dataRow('b2'), commandComplete('SELECT 1'), readyForQuery('I')] },
    ],
  ]);
  const a = await WireClient.connect(relay.port);
  const b = await WireClient.connect(relay.port);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  const conn = backend.connections[0]!;
  a.send(query('select a'));
  await conn.waitForMessages(1);
  b.send(query('select b1'));
  await until(() => someoneWaiting(relay), 'B waits for a server');

  await cancelRequest(relay.port, b.processId, b.secretKey);
  const got = await b.readUntilReady(1);
  t.equal(types(got), 'EZ');
  t.equal(errorFields(got[0]!.body).get('C'), '57014', 'query_canceled');
  t.equal(errorFields(got[0]!.body).get('S'), 'ERROR');
  t.same(got[1]!.body, Buffer.from('I'));

  answerA();
  t.equal(types(await a.readUntilReady(1)), 'CZ', 'A is answered as usual');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(conn.types, 'Q', 'the canceled request never reached the backend');
  t.same(backend.cancels, [], 'and nothing was canceled there');

  b.send(query('select b2'));
  t.equal(types(await b.readUntilReady(1)), 'DCZ', 'B goes on');
  t.same(
    conn.received.map((m) => sqlOf(m.body)),
    ['select a', 'select b2'],
    'the backend saw only what was not canceled',
  );
  t.same(backend.mismatches, []);
});

t.test("cancel of a running request reaches the backend with the backend's own key", async (t) => {
  let canceled!: () => void;
  const cancelArrived = new Promise<void>((resolve) => (canceled = resolve));
  const reply = [errorResponse('ERROR', '57014', 'canceling statement due to user request'), readyForQuery('I')];
  const { backend, relay } = await setup(t, [[{ expect: 'Q', reply: () => cancelArrived.then(() => reply) }]]);
  const c = await WireClient.connect(relay.port);
  t.teardown(() => c.destroy());
  const conn = backend.connections[0]!;
  c.send(query('select pg_sleep(60)'));
  await conn.waitForMessages(1);

  await cancelRequest(relay.port, c.processId, c.secretKey ^ 1);
  await new Promise((r) => setTimeout(r, 200));
  t.same(backend.cancels, [], 'a wrong secret key is ignored');

  await cancelRequest(relay.port, c.processId, c.secretKey);
  await backend.waitCancels(1);
  t.same(backend.cancels, [{ processId: conn.processId, secretKey: conn.secretKey }], "a CancelRequest with the backend's key, on a connection of its own");
  t.not(c.processId, conn.processId, 'the client never saw that key');
  canceled();
  t.same(bytesOf(await c.readUntilReady(1)), Buffer.concat(reply), "the client gets the backend's answer");
  t.equal(backend.connections.length, 1, 'the cancel connection is not a session');
  t.same(backend.mismatches, []);
});

t.test('a client leaving mid-COPY: the server connection is closed, not reused', async (t) => {
  const { backend, relay } = await setup(t, [[{ expect: 'Q', reply: [copyInResponse()] }], [{ expect: 'Q', reply: [commandComplete('SELECT 1'), readyForQuery('I')] }]]);
  const a = await WireClient.connect(relay.port);
  const conn = backend.connections[0]!;
  a.send(query('copy t from stdin'));
  const g = await a.next();
  t.equal(g.type, 'G', 'the client is in COPY');
  a.send(frame('d', Buffer.from('1\n')));
  await conn.waitForMessages(2);
  a.destroy();
  await conn.waitClosed();
  t.equal(conn.types, 'QdX', 'the backend got the COPY data, then Terminate, and nothing that would end the COPY');

  const b = await WireClient.connect(relay.port);
  t.teardown(() => b.destroy());
  b.send(query('select 1'));
  t.equal(types(await b.readUntilReady(1)), 'CZ');
  t.equal(backend.connections.length, 2, 'the next client got a new backend connection');
  t.equal(backend.connections[1]!.types, 'Q');
  t.same(backend.mismatches, []);
});

t.test('a client leaving mid-transaction: the backend gets exactly ROLLBACK, then serves the next client', async (t) => {
  const { backend, relay } = await setup(t, [
    [
      { expect: 'Q', reply: [commandComplete('BEGIN'), readyForQuery('T')] },
      { expect: 'Q', reply: [commandComplete('ROLLBACK'), readyForQuery('I')] },
      { expect: 'Q', reply: [dataRow('b'), commandComplete('SELECT 1'), readyForQuery('I')] },
    ],
  ]);
  const a = await WireClient.connect(relay.port);
  const conn = backend.connections[0]!;
  a.send(query('begin'));
  t.equal(types(await a.readUntilReady(1)), 'CZ');
  a.end();
  await conn.waitForMessages(2);
  t.same(conn.received[1]!.bytes, query('ROLLBACK'), 'exactly one Query: ROLLBACK');

  const b = await WireClient.connect(relay.port);
  t.teardown(() => b.destroy());
  b.send(query('select b'));
  t.same(bytesOf(await b.readUntilReady(1)), Buffer.concat([dataRow('b'), commandComplete('SELECT 1'), readyForQuery('I')]));
  t.equal(backend.connections.length, 1, 'the rolled-back server was reused');
  t.equal(conn.types, 'QQQ', 'no Terminate, no Sync: BEGIN, ROLLBACK, then the next client');
  t.equal(sqlOf(conn.received[2]!.body), 'select b');
  t.same(backend.mismatches, []);
});

t.test('a client leaving with an unsynced Parse/Bind/Execute: the backend connection is closed, never sent Sync or ROLLBACK', async (t) => {
  const { backend, relay } = await setup(t, [[], [{ expect: 'Q', reply: [commandComplete('SELECT 1'), readyForQuery('I')] }]]);
  const a = await WireClient.connect(relay.port);
  const conn = backend.connections[0]!;
  a.send(pbe('insert into t values (1)'));
  await conn.waitForMessages(3);
  a.destroy();
  await conn.waitClosed();
  t.equal(conn.types, 'PBEX', 'Terminate after the pipeline: PostgreSQL rolls the Execute back');

  const b = await WireClient.connect(relay.port);
  t.teardown(() => b.destroy());
  b.send(query('select 1'));
  t.equal(types(await b.readUntilReady(1)), 'CZ');
  t.equal(backend.connections.length, 2, 'the next client got a new backend connection');
  t.same(backend.mismatches, []);
});
