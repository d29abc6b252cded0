// Named prepared statements in transaction pooling, on real PostgreSQL through pgrelay, spoken
// message by message: each client has its own names, statements follow clients from server to
// server, pgrelay answers Close itself, errors come where PostgreSQL puts them (42P05, 26000, a
// failing Parse) with the rest of the pipeline skipped until Sync, the per-server list is bounded,
// and SQL-level DEALLOCATE ALL / DISCARD ALL / PREPARE do not break any of it.

import t, { type Test } from 'tap';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { WireClient, errorFields, lastStatus, query, sync, types, type WireMessage } from '../harness/wire-client.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import type { Settings } from '../../src/config/types.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql('create table ps_marks (v text)');

async function relayOf(t: Test, settings: Partial<Settings> = {}): Promise<Relay> {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, queryWaitTimeoutMs: 8000, ...settings } });
  t.teardown(() => relay.stop());
  return relay;
}

async function client(t: Test, relay: Relay): Promise<WireClient> {
  const c = await WireClient.connect(relay.port);
  t.teardown(() => c.destroy());
  return c;
}

const P = (name: string, text: string, types: number[] = []): Buffer => serialize.parse({ name, text, types });
const B = (statement: string, values: (string | null)[] = [], portal = ''): Buffer => serialize.bind({ statement, values, portal });
const E = (portal = ''): Buffer => serialize.execute({ portal });
const DS = (name: string): Buffer => serialize.describe({ type: 'S', name });
const CS = (name: string): Buffer => serialize.close({ type: 'S', name });
const S = sync;

async function send(c: WireClient, readies: number, ...frames: Buffer[]): Promise<WireMessage[]> {
  c.send(...frames);
  return c.readUntilReady(readies, 8000);
}

/** The text of the first column of each DataRow. */
const values = (msgs: readonly WireMessage[]): string[] =>
  msgs.filter((m) => m.type === 'D').map((m) => (m.body.readInt32BE(2) < 0 ? 'NULL' : m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2))));
const errorOf = (msgs: readonly WireMessage[]): Map<string, string> | undefined => {
  const e = msgs.find((m) => m.type === 'E');
  return e === undefined ? undefined : errorFields(e.body);
};

t.test('two clients, one server: each has its own namespace', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  const b = await client(t, relay);
  t.equal(types(await send(a, 1, P('s1', 'select 1 as a'), S())), '1Z');
  // Before tracking, this Parse reached the same server and got 42P05.
  const rb = await send(b, 1, P('s1', "select 'two' as b"), B('s1'), E(), S());
  t.equal(types(rb), '12DCZ', `b prepares its own s1 (${errorOf(rb)?.get('M') ?? ''})`);
  t.same(values(rb), ['two']);
  t.same(values(await send(a, 1, B('s1'), E(), S())), ['1'], "a's s1 is still its own");
});

t.test('a statement follows its client to another server', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 2 });
  const a = await client(t, relay);
  const holder = await client(t, relay);
  t.equal(types(await send(a, 1, P('moving', 'select pg_backend_pid()::text'), B('moving'), E(), S())), '12DCZ');
  const first = values(await send(a, 1, B('moving'), E(), S()))[0];
  // Hold that server inside a transaction so that a's next one goes to the other.
  await send(holder, 1, query('begin; select 1'));
  let moved = false;
  for (let i = 0; i < 5 && !moved; i++) {
    const r = await send(a, 1, B('moving'), E(), S());
    t.equal(types(r), '2DCZ', `Bind of a known name on whichever server (${errorOf(r)?.get('M') ?? ''})`);
    moved = values(r)[0] !== first;
  }
  await send(holder, 1, query('commit'));
  t.ok(moved, 'the client ran on a second server');
});

t.test('a second Parse of a live name is 42P05 from pgrelay, in order, and skips until Sync', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  await send(a, 1, P('dup', 'select 1'), S());
  const r = await send(a, 1, P('', "insert into ps_marks values ('dup-before')"), B(''), E(), P('dup', 'select 2'), B('dup'), E(), S());
  t.equal(types(r), '12CEZ', 'insert ran, the Parse failed, the rest was skipped');
  const err = errorOf(r)!;
  t.equal(err.get('C'), '42P05');
  t.equal(err.get('M'), 'prepared statement "dup" already exists');
  t.equal(lastStatus(r), 'I');
  t.equal(await cluster.psql(`select count(*) from ps_marks where v = 'dup-before'`), '0', 'the implicit transaction was rolled back, as PostgreSQL does');
  t.same(values(await send(a, 1, B('dup'), E(), S())), ['1'], 'the first statement is intact and the connection usable');
});

t.test('Bind or Describe of an unknown name is 26000; Close of one succeeds', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  const r = await send(a, 1, B('nope'), E(), S());
  t.equal(types(r), 'EZ');
  t.equal(errorOf(r)!.get('C'), '26000');
  t.equal(errorOf(r)!.get('M'), 'prepared statement "nope" does not exist');
  const d = await send(a, 1, DS('nope'), S());
  t.equal(types(d), 'EZ');
  t.equal(errorOf(d)!.get('C'), '26000');
  t.equal(types(await send(a, 1, CS('nope'), S())), '3Z', 'Close of an unknown name is no error');
});

t.test('Close then re-Parse of the same name with another text', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  t.same(values(await send(a, 1, P('re', 'select 1'), B('re'), E(), S())), ['1']);
  const r = await send(a, 1, CS('re'), P('re', "select 'new'"), B('re'), E(), S());
  t.equal(types(r), '312DCZ');
  t.same(values(r), ['new']);
  // in one pipeline, Close before anything else is answered: CloseComplete comes first
  t.equal(types(await send(a, 1, CS('re'), S())), '3Z');
  t.equal(types(await send(a, 1, B('re'), S())), 'EZ', 'closed: 26000');
});

t.test('a failing Parse leaves no name behind and the connection usable', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  const r = await send(a, 1, P('bad', 'selec 1'), B('bad'), E(), S());
  t.equal(types(r), 'EZ');
  t.equal(errorOf(r)!.get('C'), '42601');
  const again = await send(a, 1, B('bad'), E(), S());
  t.equal(errorOf(again)!.get('C'), '26000', 'no mapping was left');
  t.same(values(await send(a, 1, P('bad', 'select 3'), B('bad'), E(), S())), ['3'], 'the name is free');
});

t.test('Describe of a named statement', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  await send(a, 1, P('desc', 'select $1::int + 1 as n', [23]), S());
  const r = await send(a, 1, DS('desc'), S());
  t.equal(types(r), 'tTZ');
});

t.test('a pipeline of named statements across transactions and servers', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 2 });
  const clients = await Promise.all([0, 1, 2].map(() => client(t, relay)));
  await Promise.all(
    clients.map(async (c, i) => {
      for (let round = 0; round < 20; round++) {
        const frames = [P(`p${round}`, `select ${i} * 1000 + $1::int`, [23]), B(`p${round}`, [String(round)]), E(), S()];
        for (let k = 0; k < round; k += 7) frames.push(B(`p${k}`, [String(round)]), E(), S());
        const readies = 1 + Math.ceil(round / 7);
        const r = await send(c, readies, ...frames);
        t.notOk(r.some((m) => m.type === 'E'), `client ${i} round ${round}: ${errorOf(r)?.get('M') ?? 'ok'}`);
        t.equal(values(r)[0], String(i * 1000 + round));
      }
    }),
  );
});

t.test('max_prepared_statements bounds each server; evicted statements are prepared again', async (t) => {
  const relay = await relayOf(t, { maxPreparedStatements: 2 });
  const a = await client(t, relay);
  for (let i = 0; i < 5; i++) await send(a, 1, P(`e${i}`, `select ${i}`), S());
  // Each link closes what is beyond the bound first; then uses every statement again.
  for (let i = 0; i < 5; i++) t.same(values(await send(a, 1, B(`e${i}`), E(), S())), [String(i)], `e${i} after eviction`);
  const n = values(await send(a, 1, query(`select count(*) from pg_prepared_statements where name like 'pgrelay%'`)))[0];
  t.ok(Number(n) <= 3, `the server holds at most the bound plus what this transaction added (${n})`);
});

t.test("a name prepared after a Sync does not rely on another name's Parse that an error skipped", async (t) => {
  // Found by the transaction property test: n0's Parse (text X) is skipped after an error in
  // segment 1; n1 (same text X) in segment 2 must still be prepared, as PostgreSQL would.
  const relay = await relayOf(t);
  const a = await client(t, relay);
  // The error comes from execution (not folded at plan time), after Bind.
  const fails = 'select 1 / (random() * 0)::int';
  const r = await send(a, 2, P('', fails), B(''), E(), P('n0', 'select 42'), B('n0'), E(), S(), P('n1', 'select 42'), B('n1'), E(), S());
  t.equal(types(r), '12EZ12DCZ', `segment 2 runs (${errorOf(r.slice(4))?.get('M') ?? 'no error'})`);
  t.same(values(r), ['42']);
  t.same(values(await send(a, 1, B('n1'), E(), S())), ['42'], 'and n1 stays usable');
  t.equal(errorOf(await send(a, 1, B('n0'), E(), S()))?.get('C'), '26000', 'n0 was never made, as in PostgreSQL');
  // The name whose own Parse was skipped: a Bind of it in the next segment is 26000, as in PostgreSQL.
  const own = await send(a, 2, P('', fails), B(''), E(), P('n2', 'select 43'), S(), B('n2'), E(), S());
  t.equal(types(own), '12EZEZ');
  t.equal(errorOf(own.slice(4))?.get('M'), 'prepared statement "n2" does not exist');
});

t.test("pgrelay's own answers wait for the client's Sync or Flush, as PostgreSQL's replies do", async (t) => {
  // Found by the transaction property test: PostgreSQL sends nothing before a Sync, a Flush or a
  // Query; a Parse of a statement the server has must not be answered earlier through pgrelay.
  const relay = await relayOf(t);
  const a = await client(t, relay);
  await send(a, 1, P('first', 'select 91'), S());
  a.send(P('second', 'select 91'), CS('first'));
  t.same(types(await a.readFor(300)), '', 'nothing before a flush');
  a.send(serialize.flush());
  t.equal(types([await a.next(), await a.next()]), '13', 'ParseComplete and CloseComplete at the Flush');
  t.same(values(await send(a, 1, B('second'), E(), S())), ['91']);
});

t.test('a Parse of a statement the server has, in a failed transaction block, gets 25P02 as in PostgreSQL', async (t) => {
  // Found by the transaction property test: PostgreSQL refuses most Parses in a failed block.
  const relay = await relayOf(t);
  const a = await client(t, relay);
  await send(a, 1, P('known', 'select 92'), S());
  t.equal(errorOf(await send(a, 1, query('begin; select 1/0')))?.get('C'), '22012');
  const r = await send(a, 1, P('again', 'select 92'), B('again'), E(), S());
  t.equal(types(r), 'EZ');
  t.equal(errorOf(r)?.get('C'), '25P02');
  t.equal(types(await send(a, 1, query('rollback'))), 'CZ');
  t.equal(errorOf(await send(a, 1, B('again'), E(), S()))?.get('C'), '26000', 'the refused Parse made no name');
  // Pipelined behind an error in the same request, too.
  const p = await send(a, 2, query('begin'), P('', 'select 1 / (random() * 0)::int'), B(''), E(), P('third', 'select 92'), S());
  t.equal(types(p), 'CZ12EZ');
  await send(a, 1, query('rollback'));
});

t.test('an error after an inserted Parse keeps the statement; the next Bind works', async (t) => {
  const relay = await relayOf(t, { defaultPoolSize: 2 });
  const a = await client(t, relay);
  const holder = await client(t, relay);
  await send(a, 1, P('two', 'select $1::int', [23]), B('two', ['1']), E(), S());
  await send(holder, 1, query('begin'));
  // Bind with a wrong parameter count on a server that must get the Parse inserted first.
  const r = await send(a, 1, B('two', []), E(), S());
  t.equal(errorOf(r)?.get('C'), '08P01', 'the Bind failed (the inserted Parse succeeded)');
  t.same(values(await send(a, 1, B('two', ['5']), E(), S())), ['5'], 'no 42P05: pgrelay knows the statement exists');
  await send(holder, 1, query('commit'));
});

t.test('cached plan must not change result type passes through', async (t) => {
  const relay = await relayOf(t);
  await cluster.psql('create table ps_shape (a int)');
  const a = await client(t, relay);
  await send(a, 1, P('shape', 'select * from ps_shape'), B('shape'), E(), S());
  await cluster.psql('alter table ps_shape add column b int');
  const r = await send(a, 1, B('shape'), E(), S());
  t.equal(errorOf(r)?.get('C'), '0A000');
  t.equal(errorOf(r)?.get('M'), 'cached plan must not change result type');
});

t.test('DEALLOCATE ALL and DISCARD ALL from SQL drop the names and keep the bookkeeping true', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  for (const sql of ['deallocate all', 'discard all']) {
    await send(a, 1, P('gone', 'select 7'), S());
    t.same(values(await send(a, 1, B('gone'), E(), S())), ['7']);
    t.equal(types(await send(a, 1, query(sql))), 'CZ');
    t.equal(errorOf(await send(a, 1, B('gone'), E(), S()))?.get('C'), '26000', `${sql}: the client's names are gone, as in PostgreSQL`);
    t.same(values(await send(a, 1, P('gone', 'select 7'), B('gone'), E(), S())), ['7'], `${sql}: preparing again works (no 42P05 on the server)`);
    t.equal(types(await send(a, 1, CS('gone'), S())), '3Z');
  }
});

t.test("SQL DEALLOCATE of a client's own name (as psycopg evicts from its cache) answers as PostgreSQL does", async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  const b = await client(t, relay);
  // b shares the server's statement: a's DEALLOCATE must not take it away from b.
  await send(b, 1, P('shared', 'select 5'), S());
  await send(a, 1, P('_pg3_0', 'select 5'), S());
  const simple = await send(a, 1, query('DEALLOCATE _pg3_0'));
  t.equal(types(simple), 'CZ');
  t.equal(simple[0]!.body.toString('latin1', 0, simple[0]!.body.length - 1), 'DEALLOCATE');
  t.equal(errorOf(await send(a, 1, B('_pg3_0'), E(), S()))?.get('C'), '26000', 'the name is gone');
  t.same(values(await send(b, 1, B('shared'), E(), S())), ['5'], "b's statement still works");
  // psycopg 3.1 sends it through the extended protocol, with the unnamed statement.
  await send(a, 1, P('Mixed', 'select 7'), S());
  const ext2 = await send(a, 1, P('', 'DEALLOCATE PREPARE "Mixed"'), B(''), serialize.describe({ type: 'P', name: '' }), E(), S());
  t.equal(types(ext2), '12nCZ');
  t.equal(errorOf(await send(a, 1, B('Mixed'), E(), S()))?.get('C'), '26000');
  // In a failed transaction PostgreSQL refuses it (25P02) and the statement stays.
  await send(a, 1, P('kept', 'select 8'), S());
  const failed = await send(a, 1, query('begin; select 1/0'));
  t.equal(errorOf(failed)?.get('C'), '22012');
  const refused = await send(a, 1, query('deallocate kept'));
  t.equal(errorOf(refused)?.get('C'), '25P02');
  t.equal(types(await send(a, 1, query('rollback'))), 'CZ');
  t.same(values(await send(a, 1, B('kept'), E(), S())), ['8'], 'kept');
  // A name the client does not have is the server's business (26000, with the hint).
  t.equal(errorOf(await send(a, 1, query('deallocate nothing_here')))?.get('C'), '26000');
});

t.test('SQL PREPARE works inside its transaction, fails clearly after it, and never reaches another client', async (t) => {
  const relay = await relayOf(t);
  const a = await client(t, relay);
  const inside = await send(a, 1, query('begin; prepare sqlp as select 42; execute sqlp; commit'));
  t.same(values(inside), ['42']);
  const after = await send(a, 1, query('execute sqlp'));
  t.equal(errorOf(after)?.get('C'), '26000');
  t.match(errorOf(after)?.get('H') ?? '', /SQL PREPARE exists only until the end of its transaction/);
  const b = await client(t, relay);
  const seen = values(await send(b, 1, query(`select count(*) from pg_prepared_statements where from_sql`)))[0];
  t.equal(seen, '0', 'the next client finds no SQL-prepared statement on the server');
});

t.test('max_prepared_statements = 0 turns tracking off: names reach the server as sent', async (t) => {
  const relay = await relayOf(t, { maxPreparedStatements: 0 });
  const a = await client(t, relay);
  const r = await send(a, 2, P('as_sent', 'select 1'), B('as_sent'), E(), S(), query(`select name from pg_prepared_statements`));
  t.same(values(r), ['1', 'as_sent'], "the server has the client's own name");
  // and, as before tracking existed, a second client on the same server collides with it
  const b = await client(t, relay);
  t.equal(errorOf(await send(b, 1, P('as_sent', 'select 2'), S()))?.get('C'), '42P05');
});

t.test('session mode passes named statements through unchanged', async (t) => {
  const relay = await relayOf(t, { poolMode: 'session' });
  const a = await client(t, relay);
  await send(a, 1, P('sess', 'select 1'), S());
  t.same(values(await send(a, 1, query(`select name from pg_prepared_statements`))), ['sess'], 'the server has the client\'s own name');
});

t.test('SHOW CLIENTS / SHOW SERVERS prepared_statements and the /metrics counters', async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1, adminUsers: ['postgres'], maxPreparedStatements: 2 }, admin: true });
  t.teardown(() => relay.stop());
  const a = await client(t, relay);
  for (let i = 0; i < 3; i++) await send(a, 1, P(`m${i}`, `select ${i} as metric_probe`), S());
  // Each link of the server first closes what is beyond the bound: m0 goes and is prepared
  // again for this Bind (3 on the server until the next link), then m1 goes.
  await send(a, 1, B('m0'), E(), S());
  await send(a, 1, B('m0'), E(), S());
  const console = await WireClient.connect(relay.port, { database: 'pgbouncer' });
  t.teardown(() => console.destroy());
  const column = async (what: string): Promise<string[]> => {
    const r = await send(console, 1, query(`show ${what}`));
    const desc = r.find((m) => m.type === 'T')!.body;
    // the column index of prepared_statements in the RowDescription
    const n = desc.readInt16BE(0);
    let pos = 2;
    let index = -1;
    for (let i = 0; i < n; i++) {
      const end = desc.indexOf(0, pos);
      if (desc.toString('utf8', pos, end) === 'prepared_statements') index = i;
      pos = end + 1 + 18;
    }
    return r.filter((m) => m.type === 'D').map((m) => {
      let p = 2;
      for (let i = 0; i < index; i++) p += 4 + Math.max(0, m.body.readInt32BE(p));
      return m.body.toString('utf8', p + 4, p + 4 + m.body.readInt32BE(p));
    });
  };
  t.same(await column('servers'), ['2'], 'the server holds the bound after eviction');
  t.ok((await column('clients')).includes('3'), 'the client has its three names');
  const metrics = await (await fetch(`${relay.adminUrl!}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
  t.ok(value('pgrelay_prepared_statement_prepares_total') >= 4, 'three prepares and one after eviction');
  t.ok(value('pgrelay_prepared_statement_evictions_total') >= 1);
  t.ok(value('pgrelay_prepared_statement_hits_total') >= 0);
});
