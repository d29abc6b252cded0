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

/** Logs in with trust, sends each script step, collects messages until the expected ReadyForQuery count. */
async function session(port: number, steps: { send: Buffer; readyCount: number }[]): Promise<Msg[][]> {
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
