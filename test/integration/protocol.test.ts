// Protocol through pgrelay on real PostgreSQL with the pg client: simple and extended queries,
// pipelining, COPY both ways, NOTIFY, big rows, cancel, FunctionCall-free basics, startup rules.

import t from 'tap';
import pg from 'pg';
import net from 'node:net';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { serialize } from '../../src/protocol/frontend-messages.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const relay = await startRelay(cluster, { settings: { defaultPoolSize: 4, maxPacketSize: 4 * 1024 * 1024 } });
t.teardown(() => relay.stop());

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  return c;
}

t.test('simple and extended queries', async (t) => {
  const c = await client();
  t.teardown(() => c.end());
  const r1 = await c.query('select 1 as one, $$hi$$ as s');
  t.same(r1.rows, [{ one: 1, s: 'hi' }]);
  const r2 = await c.query('select $1::int + $2::int as sum', [2, 3]);
  t.same(r2.rows, [{ sum: 5 }]);
  await t.rejects(c.query('select * from no_such_table'), { code: '42P01' });
  const r3 = await c.query('select 42 as after_error');
  t.equal(r3.rows[0].after_error, 42, 'connection usable after an error');
});

t.test('pipelined extended queries (many Parse/Bind/Execute/Sync before reading)', async (t) => {
  const c = await client();
  t.teardown(() => c.end());
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => c.query('select $1::int as n', [i])));
  t.same(results.map((r) => r.rows[0].n), Array.from({ length: 50 }, (_, i) => i));
});

t.test('raw pipeline: several Syncs in one write', async (t) => {
  // pg serializes queries one at a time; send a real pipeline by hand.
  const c = await client();
  t.teardown(() => c.end());

  const conn = (c as unknown as { connection: { stream: net.Socket } }).connection;
  const parts: Buffer[] = [];
  for (let i = 0; i < 5; i++) {
    parts.push(serialize.parse({ text: `select ${i}` }), serialize.bind(), serialize.execute(), serialize.sync());
  }
  const reply = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let zs = 0;
    conn.stream.removeAllListeners('data');
    conn.stream.on('data', (d: Buffer) => {
      chunks.push(d);
      for (let i = 0; i < d.length; i++) if (d[i] === 0x5a && d[i + 1] === 0 && d[i + 4] === 5) zs++;
      if (zs >= 5) resolve(Buffer.concat(chunks));
    });
    conn.stream.write(Buffer.concat(parts));
  });
  t.ok(reply.length > 0, 'five ReadyForQuery received for five Syncs');
  conn.stream.destroy();
});

t.test('COPY FROM STDIN and TO STDOUT', async (t) => {
  const c = await client();
  t.teardown(() => c.end());
  await c.query('create table if not exists copy_t (id int, v text)');
  await c.query('truncate copy_t');
  // COPY through the simple protocol by hand with pg's connection: use COPY ... FROM STDIN via a query stream.
  const rows = Array.from({ length: 2000 }, (_, i) => `${i}\tvalue-${i}\n`).join('');
  await copyIn(c, 'copy copy_t from stdin', Buffer.from(rows));
  const count = await c.query('select count(*)::int as n from copy_t');
  t.equal(count.rows[0].n, 2000);
  const out = await copyOut(c, 'copy (select * from copy_t order by id) to stdout');
  t.equal(out.toString(), rows);
});

t.test('NOTIFY reaches a listening session client', async (t) => {
  // LISTEN needs session pooling; a transaction-pooled client only hears notices while linked.
  const sessionRelay = await startRelay(cluster, { settings: { poolMode: 'session' } });
  t.teardown(() => sessionRelay.stop());
  const listener = new pg.Client({ connectionString: sessionRelay.url() });
  await listener.connect();
  t.teardown(() => listener.end());
  await listener.query('listen chan');
  const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
  const c = await client();
  t.teardown(() => c.end());
  await c.query(`notify chan, 'hello'`);
  t.equal(await got, 'hello');
});

t.test('rows larger than one read and larger than 1 MB', async (t) => {
  const c = await client();
  t.teardown(() => c.end());
  const r = await c.query(`select repeat('x', 3 * 1024 * 1024) as big`);
  t.equal(r.rows[0].big.length, 3 * 1024 * 1024);
  const big = 'y'.repeat(2 * 1024 * 1024);
  const r2 = await c.query('select length($1::text) as n', [big]);
  t.equal(r2.rows[0].n, big.length, 'a 2 MB Bind goes upstream');
});

t.test('a message over max_packet_size is refused with a clear error', async (t) => {
  const c = await client();
  const ended = new Promise<void>((resolve) => c.on('error', () => resolve()));
  const big = 'z'.repeat(5 * 1024 * 1024);
  await t.rejects(c.query('select length($1::text)', [big]), /max_packet_size/);
  await ended.catch(() => undefined);
});

t.test('cancel reaches the server running the query', async (t) => {
  const c = await client();
  t.teardown(() => c.end());
  const started = Date.now();
  const running = c.query('select pg_sleep(10)').then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  await new Promise((r) => setTimeout(r, 300));
  const canceller = new pg.Client({ connectionString: relay.url() });
  await canceller.connect();
  // pg sends CancelRequest with the key pgrelay gave the client.
  const pgc = c as unknown as { processID: number; secretKey: number };
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(relay.port, '127.0.0.1', () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(pgc.processID, 8);
      b.writeInt32BE(pgc.secretKey, 12);
      s.end(b);
    });
    s.on('close', () => resolve());
    s.on('error', reject);
  });
  await canceller.end();
  t.equal((await running)?.code, '57014', 'the query was canceled');
  t.ok(Date.now() - started < 5000, 'canceled well before the sleep ended');
  const r = await c.query('select 1 as ok');
  t.equal(r.rows[0].ok, 1);
});

t.test('a cancel with a wrong key is ignored safely', async (t) => {
  await new Promise<void>((resolve) => {
    const s = net.connect(relay.port, '127.0.0.1', () => {
      const b = Buffer.alloc(16);
      b.writeInt32BE(16, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(12345, 8);
      b.writeInt32BE(678, 12);
      s.end(b);
    });
    s.on('close', () => resolve());
  });
  const c = await client();
  t.teardown(() => c.end());
  t.equal((await c.query('select 1 as n')).rows[0].n, 1);
});

t.test('SSLRequest is answered N, then plaintext startup works', async (t) => {
  const answer = await rawExchange(relay.port, sslRequest(), 1);
  t.equal(answer.toString(), 'N');
});

t.test('a newer protocol minor version gets NegotiateProtocolVersion', async (t) => {
  const reply = await rawExchange(relay.port, startupPacket(3, 2, { user: 'postgres', database: 'postgres', '_pq_.compression': 'on' }), 1, 'Z');
  t.equal(String.fromCharCode(reply[0]!), 'v', 'first message is NegotiateProtocolVersion');
  t.equal(reply.readInt32BE(5), (3 << 16) | 0, 'newest minor we support is 0');
  t.equal(reply.readInt32BE(9), 1, 'one option not recognized');
  t.ok(reply.includes(Buffer.from('_pq_.compression\0')));
});

t.test('options are honoured; a switch pgrelay cannot honour is refused by name', async (t) => {
  const c = new pg.Client({ connectionString: relay.url(), options: '-c work_mem=64MB' } as pg.ClientConfig);
  await c.connect();
  t.equal((await c.query('show work_mem')).rows[0].work_mem, '64MB');
  await c.end();
  const bad = new pg.Client({ connectionString: relay.url(), options: '-d 5' } as pg.ClientConfig);
  await t.rejects(bad.connect(), /unsupported switch in startup parameter "options": -d/);
  const ok = new pg.Client({ connectionString: relay.url() });
  // extra_float_digits is in ignore_startup_parameters, as in the runbook
  (ok as unknown as { connectionParameters: { options?: string } }).connectionParameters.options = undefined;
  await ok.connect();
  await ok.end();
});

t.test('unknown database gets 3D000', async (t) => {
  const strict = await startRelay(cluster, { databases: { postgres: { hosts: [{ host: cluster.host, port: cluster.port }] } } });
  t.teardown(() => strict.stop());
  const c = new pg.Client({ connectionString: strict.url({ database: 'nope' }) });
  await t.rejects(c.connect(), { code: '3D000' });
});

// ---- helpers ----

async function copyIn(c: pg.Client, sql: string, data: Buffer): Promise<void> {
  const conn = (c as unknown as { connection: { stream: net.Socket } }).connection;

  const stream = conn.stream;
  await new Promise<void>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.includes(Buffer.from('G'))) {
        /* wait for Z below */
      }
      if (all.length >= 6 && all[all.length - 6] === 0x5a) {
        stream.removeListener('data', onData);
        stream.on('data', saved);
        if (all.includes(Buffer.from([0x45, 0, 0]))) reject(new Error('copy failed: ' + all.toString()));
        else resolve();
      }
    };
    const saved = stream.listeners('data')[0] as (d: Buffer) => void;
    stream.removeAllListeners('data');
    stream.on('data', onData);
    stream.write(serialize.query(sql));
    // 64 KB CopyData chunks, then CopyDone.
    for (let i = 0; i < data.length; i += 65536) stream.write(serialize.copyData(data.subarray(i, i + 65536)));
    stream.write(serialize.copyDone());
  });
}

async function copyOut(c: pg.Client, sql: string): Promise<Buffer> {
  const conn = (c as unknown as { connection: { stream: net.Socket } }).connection;

  const stream = conn.stream;
  const saved = stream.listeners('data')[0] as (d: Buffer) => void;
  stream.removeAllListeners('data');
  const raw = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= 6 && all[all.length - 6] === 0x5a) resolve(all);
    });
    stream.write(serialize.query(sql));
  });
  stream.removeAllListeners('data');
  stream.on('data', saved);
  const out: Buffer[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const type = raw[pos]!;
    const len = raw.readInt32BE(pos + 1);
    if (type === 0x64) out.push(raw.subarray(pos + 5, pos + 1 + len));
    pos += 1 + len;
  }
  return Buffer.concat(out);
}

function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(80877103, 4);
  return b;
}

function startupPacket(major: number, minor: number, params: Record<string, string>): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0');
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(8 + body.length, 0);
  b.writeInt32BE((major << 16) | minor, 4);
  body.copy(b, 8);
  return b;
}

/** Sends bytes, collects the reply until `minBytes` arrived (or a message of type `until`). */
function rawExchange(port: number, data: Buffer, minBytes: number, until?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    const timer = setTimeout(() => {
      s.destroy();
      resolve(Buffer.concat(chunks));
    }, 3000);
    s.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= minBytes && (until === undefined || all.includes(Buffer.from(until + '\0\0\0\x05')))) {
        clearTimeout(timer);
        s.destroy();
        resolve(all);
      }
    });
    s.on('error', reject);
  });
}
