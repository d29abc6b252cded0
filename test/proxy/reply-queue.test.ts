// The reply queue of prepared-statement tracking: a ring that grows without losing order, entries
// put in front (eviction Closes), the skip-until-Sync rule after an error (Query and FunctionCall
// entries dropped and counted), Syncs a COPY ignores, and steps undone newest first so that a name
// reused in one pipeline comes back to what it was.

import t from 'tap';
import { Expect, ReplyQueue, StatementStep, type ClientName, type NameTable } from '../../src/proxy/reply-queue.js';
import { ServerStatements } from '../../src/proxy/statement-lru.js';
import { internStatement, registeredStatements, releaseStatement, variantOf } from '../../src/proxy/statement-registry.js';

function drain(q: ReplyQueue): number[] {
  const out: number[] = [];
  while (q.length > 0) {
    out.push(q.headKind);
    q.shift();
  }
  return out;
}

t.test('a ring that grows keeps the order, with entries put in front', async (t) => {
  const q = new ReplyQueue();
  const want: number[] = [];
  for (let i = 0; i < 40; i++) {
    const kind = (i % 8) + 1;
    q.push(kind as Expect);
    want.push(kind);
    if (i % 5 === 0) {
      q.shift();
      want.shift();
    }
  }
  q.unshift(Expect.Evict);
  q.unshift(Expect.Evict);
  t.same(drain(q), [Expect.Evict, Expect.Evict, ...want]);
  t.equal(q.pushed, 42);
});

t.test('failHead drops everything until the next Sync and counts the requests that will get no answer', async (t) => {
  const q = new ReplyQueue();
  for (const k of [Expect.Bind, Expect.Execute, Expect.Query, Expect.Parse, Expect.FunctionCall, Expect.Sync, Expect.Parse]) q.push(k);
  t.equal(q.failHead(), 2, 'the Query and the FunctionCall behind the error are skipped by the server');
  t.same(drain(q), [Expect.Sync, Expect.Parse]);
  t.notOk(q.skipUntilSync, 'a Sync was queued: nothing later is skipped');
  q.push(Expect.Bind);
  q.failHead();
  t.ok(q.skipUntilSync, 'no Sync queued: what comes next is skipped until the client sends one');
});

t.test('Syncs queued behind a COPY Execute are dropped', async (t) => {
  const q = new ReplyQueue();
  for (const k of [Expect.Execute, Expect.Sync, Expect.Sync, Expect.Parse, Expect.Sync]) q.push(k);
  t.equal(q.dropSyncsAfterHead(), 2);
  t.same(drain(q), [Expect.Execute, Expect.Parse, Expect.Sync]);
});

class Names implements NameTable {
  map = new Map<string, ClientName>();
  // As ClientStatements does: a name holds a reference to its statement.
  forget(e: ClientName): void {
    if (this.map.get(e.name) !== e) return;
    this.map.delete(e.name);
    releaseStatement(e.statement);
  }
  restore(e: ClientName): void {
    const now = this.map.get(e.name);
    if (now !== undefined) releaseStatement(now.statement);
    this.map.set(e.name, e);
  }
}

t.test('undo runs newest first: Close then Parse of one name, both skipped, leave the old statement', async (t) => {
  const before = registeredStatements();
  const names = new Names();
  const server = new ServerStatements();
  const oldText = Buffer.from('select 1\0\0\0');
  const newText = Buffer.from('select 2\0\0\0');
  const old: ClientName = { name: 's', bytes: Buffer.from('s'), statement: internStatement(oldText, 0, oldText.length), seq: 0 };
  names.map.set('s', old);
  const q = new ReplyQueue();
  q.push(Expect.Execute); // the frame that fails
  const close = new StatementStep(names, null);
  names.map.delete('s');
  close.removed = old;
  q.push(Expect.Close, close);
  const fresh: ClientName = { name: 's', bytes: Buffer.from('s'), statement: internStatement(newText, 0, newText.length), seq: 2 };
  names.map.set('s', fresh);
  const parse = new StatementStep(names, fresh.statement);
  parse.added = fresh;
  server.add(fresh.statement, 1, fresh);
  parse.server = server;
  parse.lruAdded = fresh.statement;
  q.push(Expect.Parse, parse);
  q.push(Expect.Sync);
  q.failHead();
  t.equal(names.map.get('s'), old, 'the name maps to the statement PostgreSQL still has');
  t.notOk(server.has(fresh.statement), 'the server never prepared the new text');
  t.equal(fresh.statement.refs, 0, 'nothing holds the new statement any more');
  t.equal(registeredStatements(), before + 1, 'the registry forgot it; the old one lives on');
});

t.test('eviction undone puts the statement back; committed, it lets go', async (t) => {
  const server = new ServerStatements();
  const texts = ['select 11', 'select 12', 'select 13'].map((s) => Buffer.from(`${s}\0\0\0`));
  const stmts = texts.map((b) => internStatement(b, 0, b.length));
  for (const s of stmts) server.add(s, 0, null);
  const victims = server.evict(1);
  t.same(victims, stmts.slice(0, 2), 'least recently used first');
  t.equal(server.size, 1);
  const undone = new StatementStep(null, null);
  undone.evicted = victims[0]!;
  undone.server = server;
  undone.undo();
  t.ok(server.has(victims[0]!), 'the Close never ran: the server still has it');
  const done = new StatementStep(null, null);
  done.evicted = victims[1]!;
  done.server = server;
  done.commit();
  t.notOk(server.has(victims[1]!));
  t.equal(victims[1]!.refs, 1, 'only its creator holds it now');
});

t.test('a statement still being prepared is usable only in its Sync segment, or by the name its Parse makes', async (t) => {
  const server = new ServerStatements();
  const text = Buffer.from('select 77\0\0\0');
  const s = internStatement(text, 0, text.length);
  const maker = { name: 'n0' };
  const other = { name: 'n1' };
  server.add(s, 4, maker);
  t.ok(server.usable(s, 4, other), 'same segment: skipped together with the Parse if it fails');
  t.ok(server.usable(s, 5, maker), "the name the Parse makes: if it fails, the name does not exist either");
  t.notOk(server.usable(s, 5, other), 'another name after the Sync cannot rely on it');
  server.confirm(s);
  t.ok(server.usable(s, 5, other), 'once answered, anyone may');
  const injected = internStatement(Buffer.from('select 78\0\0\0'), 0, 12);
  server.add(injected, 2, null);
  t.notOk(server.usable(injected, 3, maker), 'a Parse put before a Bind makes no name: only its segment relies on it');
  const v = variantOf(s, 1);
  t.not(v.name, s.name, 'a variant has a server-side name of its own');
  t.same(v.spec, s.spec, 'and the same text and types');
  t.equal(variantOf(s, 1), v, 'asked again, the same variant');
});
