// Differential test: one message script sent straight to PostgreSQL and through pgrelay; the
// replies after login must be byte-identical (pgrelay forwards, it does not re-encode).

import t from 'tap';
import net from 'node:net';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2 } });
t.teardown(() => relay.stop());
await cluster.psql('create table diff_t (id int primary key, v text)');

interface Msg {
  type: string;
  body: Buffer;
}

/**
 * Logs in with trust, sends each script step, collects messages until the expected ReadyForQuery
 * count. `between` runs after each step's replies.
 */
async function session(port: number, steps: { send: Buffer; readyCount: number }[], between?: (replies: Msg[]) => Promise<void>): Promise<Msg[][]> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  const queue: Msg[] = [];
  let notify: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) break;
      queue.push({ type: String.fromCharCode(buf[0]!), body: Buffer.from(buf.subarray(5, 1 + len)) });
      buf = buf.subarray(1 + len);
    }
    notify?.();
  });
  const readUntilReady = async (count: number): Promise<Msg[]> => {
    const out: Msg[] = [];
    let seen = 0;
    while (seen < count) {
      while (queue.length === 0) await new Promise<void>((r) => (notify = r));
      const m = queue.shift()!;
      out.push(m);
      if (m.type === 'Z') seen++;
    }
    return out;
  };
  socket.write(serialize.startup({ user: 'postgres', database: 'postgres', client_encoding: 'UTF8', DateStyle: 'ISO, MDY' }));
  await readUntilReady(1);
  const results: Msg[][] = [];
  for (const step of steps) {
    socket.write(step.send);
    results.push(await readUntilReady(step.readyCount));
    await between?.(results[results.length - 1]!);
  }
  socket.end(serialize.end());
  return results;
}

const extended = (text: string, values: string[] = []) =>
  Buffer.concat([serialize.parse({ text }), serialize.bind({ values }), serialize.describe({ type: 'P' }), serialize.execute(), serialize.sync()]);

const script = [
  { send: serialize.query('select 1 as a, null::text as b, 2.5::numeric as c'), readyCount: 1 },
  { send: serialize.query(''), readyCount: 1 },
  { send: serialize.query('select 1/0'), readyCount: 1 },
  { send: serialize.query('begin; insert into diff_t values (1, $$x$$); select * from diff_t; rollback'), readyCount: 1 },
  { send: extended('select $1::int * 2 as doubled, $2::text as t', ['21', 'héllo']), readyCount: 1 },
  { send: Buffer.concat([extended('select generate_series(1, $1::int) as n', ['100']), extended('select $1::text', ['second'])]), readyCount: 2 },
  { send: extended('select no_such_column'), readyCount: 1 },
  { send: serialize.query(`do $$ begin raise notice 'hello %', 42; end $$`), readyCount: 1 },
  { send: serialize.query("select string_agg(md5(g::text), '') from generate_series(1, 5000) g"), readyCount: 1 },
  { send: serialize.query('begin'), readyCount: 1 },
  { send: serialize.query('select broken syntax here'), readyCount: 1 },
  { send: serialize.query('rollback'), readyCount: 1 },
];

t.test('replies are identical straight and through pgrelay', async (t) => {
  const direct = await session(cluster.port, script);
  const proxied = await session(relay.port, script);
  t.equal(proxied.length, direct.length);
  for (let i = 0; i < script.length; i++) {
    const d = direct[i]!.map((m) => `${m.type}:${m.body.toString('hex')}`);
    const p = proxied[i]!.map((m) => `${m.type}:${m.body.toString('hex')}`);
    t.same(p, d, `step ${i} (${direct[i]!.map((m) => m.type).join('')})`);
  }
});

// Named prepared statements: pgrelay renames them, prepares them on whichever server the session
// gets, answers Close itself, and turns a SQL DEALLOCATE of a client's name into one the server
// answers; what the client reads is still exactly what PostgreSQL sends. After each step the
// servers are closed (RECONNECT), so every step runs on a server that has none of the statements.
const P = (name: string, text: string, types: number[] = []): Buffer => serialize.parse({ name, text, types });
const B = (statement: string, values: string[] = [], portal = ''): Buffer => serialize.bind({ statement, values, portal });
const Dp = (portal = ''): Buffer => serialize.describe({ type: 'P', name: portal });
const E = (portal = ''): Buffer => serialize.execute({ portal });
const S = (): Buffer => serialize.sync();
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);

const prepared = [
  { send: cat(P('s1', 'select $1::int + 1 as n', [23]), B('s1', ['41']), Dp(), E(), S()), readyCount: 1 },
  { send: cat(B('s1', ['1']), Dp(), E(), S()), readyCount: 1 },
  { send: cat(serialize.describe({ type: 'S', name: 's1' }), S()), readyCount: 1 },
  { send: cat(serialize.close({ type: 'S', name: 's1' }), P('s1', "select 'again' as t"), B('s1'), Dp(), E(), S()), readyCount: 1 },
  { send: cat(serialize.close({ type: 'S', name: 'never_made' }), S()), readyCount: 1 },
  { send: cat(P('s2', 'selec 1'), B('s2'), E(), S()), readyCount: 1 },
  { send: cat(P('s3', 'select 3'), B('s3'), E(), P('s4', 'select $1::text', [25]), B('s4', ['four']), E(), S(), B('s3'), E(), B('s4', ['again']), E(), S()), readyCount: 2 },
  { send: serialize.query('begin'), readyCount: 1 },
  { send: cat(B('s3', [], 'por'), E('por'), B('s4', ['in tx']), E(), S()), readyCount: 1 },
  { send: serialize.query('commit'), readyCount: 1 },
  { send: serialize.query('deallocate s3'), readyCount: 1 },
  { send: cat(P('', 'DEALLOCATE PREPARE s4'), B(''), Dp(), E(), S()), readyCount: 1 },
  { send: cat(P('s5', 'select 5'), S()), readyCount: 1 },
  { send: serialize.query('deallocate all'), readyCount: 1 },
  { send: cat(P('s5', 'select 55'), B('s5'), E(), S()), readyCount: 1 },
];

t.test('named prepared statements: replies identical straight and through pgrelay, on servers that change', async (t) => {
  const direct = await session(cluster.port, prepared);
  const before = relay.app.control.servers().map((s) => s.id);
  const proxied = await session(relay.port, prepared, async (replies) => {
    // Inside a transaction the session keeps its server (and its statements).
    if (replies[replies.length - 1]!.body[0] !== 0x49) return;
    relay.app.control.reconnect();
    await relay.app.control.waitClose();
  });
  const used = relay.app.control.servers().map((s) => s.id);
  t.notOk(used.some((id) => before.includes(id)), 'the servers of the start are gone');
  for (let i = 0; i < prepared.length; i++) {
    const d = direct[i]!.map((m) => `${m.type}:${m.body.toString('hex')}`);
    const p = proxied[i]!.map((m) => `${m.type}:${m.body.toString('hex')}`);
    t.same(p, d, `step ${i} (${direct[i]!.map((m) => m.type).join('')})`);
  }
});

/** S, V, C and M of an ErrorResponse (the fields pgrelay writes when it answers for PostgreSQL). */
function mainFields(m: Msg): string {
  const out: string[] = [];
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const end = m.body.indexOf(0, i + 1);
    if ('SVCM'.includes(String.fromCharCode(m.body[i]!))) out.push(m.body.toString('utf8', i, end));
    i = end + 1;
  }
  return out.join('|');
}

// A Parse of a live name and a Bind/Describe of an unknown one: pgrelay answers with PostgreSQL's
// severity, SQLSTATE and message (not its source file and line), at the same point, and the
// server skips the rest until Sync as PostgreSQL does.
const badNames = [
  { send: cat(P('n1', 'select 1'), S()), readyCount: 1 },
  { send: cat(P('n1', 'select 2'), B('n1'), E(), S()), readyCount: 1 },
  { send: cat(B('nope'), E(), S()), readyCount: 1 },
  { send: cat(serialize.describe({ type: 'S', name: 'nope' }), S()), readyCount: 1 },
  { send: cat(B('n1'), E(), S()), readyCount: 1 },
];

t.test('pgrelay answers a bad name with PostgreSQL\'s severity, SQLSTATE and message', async (t) => {
  const direct = await session(cluster.port, badNames);
  const proxied = await session(relay.port, badNames);
  for (let i = 0; i < badNames.length; i++) {
    const d = direct[i]!.map((m) => (m.type === 'E' ? `E:${mainFields(m)}` : `${m.type}:${m.body.toString('hex')}`));
    const p = proxied[i]!.map((m) => (m.type === 'E' ? `E:${mainFields(m)}` : `${m.type}:${m.body.toString('hex')}`));
    t.same(p, d, `step ${i} (${direct[i]!.map((m) => m.type).join('')})`);
  }
});
