// Backpressure and held requests on real PostgreSQL: a client that stops reading a large result
// gets every byte intact once it reads again, and a large COPY reaches the server intact (every
// socket reads into one shared buffer that a queued write must never see overwritten); a client that pipelines far more than pgrelay holds while it
// waits for a server gets every answer, in order; requests held for a server still run when their
// client leaves (Terminate or EOF), as they would on PostgreSQL.

import t from 'tap';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { serialize } from '../../src/protocol/frontend-messages.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

function startupPacket(params: Record<string, string>): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0');
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(8 + body.length, 0);
  b.writeInt32BE(3 << 16, 4);
  body.copy(b, 8);
  return b;
}

/** A raw protocol client: logs in (trust), then hands out whole messages as they arrive. */
class RawClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  private constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async login(port: number): Promise<RawClient> {
    const c = new RawClient(port);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', resolve);
      c.socket.once('error', reject);
    });
    c.socket.write(startupPacket({ user: 'postgres', database: 'postgres' }));
    for (;;) {
      const m = await c.next();
      if (m.type === 'E') throw new Error(`login failed: ${m.body.toString()}`);
      if (m.type === 'Z') return c;
    }
  }

  /** The next whole message. */
  async next(): Promise<{ type: string; body: Buffer }> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= 1 + len) {
          const type = String.fromCharCode(this.buf[0]!);
          const body = this.buf.subarray(5, 1 + len);
          this.buf = this.buf.subarray(1 + len);
          return { type, body };
        }
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Reads messages up to and including the next ReadyForQuery; returns the DataRows' digest and count. */
  async result(): Promise<{ rows: number; digest: string; errors: string[] }> {
    const h = createHash('sha256');
    let rows = 0;
    const errors: string[] = [];
    for (;;) {
      const m = await this.next();
      if (m.type === 'D') {
        h.update(m.body);
        rows++;
      } else if (m.type === 'E') {
        errors.push(m.body.toString());
      } else if (m.type === 'Z') {
        return { rows, digest: h.digest('hex'), errors };
      }
    }
  }

  /** Runs `sql` and returns the first column of each row, as text. */
  async firstColumn(sql: string): Promise<string[]> {
    this.socket.write(serialize.query(sql));
    const out: string[] = [];
    for (;;) {
      const m = await this.next();
      if (m.type === 'D') out.push(m.body.subarray(6, 6 + m.body.readInt32BE(2)).toString());
      if (m.type === 'Z') return out;
    }
  }

  close(): void {
    this.socket.end(serialize.end());
  }
}

// 40 MB of rows that differ from each other, so a stale or overwritten buffer cannot go unnoticed.
const BIG = `select i, md5(i::text) || repeat(chr(65 + i % 26), 1000 + i % 3000) as v from generate_series(1, 20000) i`;

t.test('a client that stops reading a large result gets it intact', { timeout: 60_000 }, async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2 } });
  t.teardown(() => relay.stop());
  const direct = await RawClient.login(cluster.port);
  t.teardown(() => direct.close());
  direct.socket.write(serialize.query(BIG));
  const want = await direct.result();
  t.equal(want.rows, 20000);

  const slow = await RawClient.login(relay.port);
  const other = await RawClient.login(relay.port);
  t.teardown(() => {
    slow.close();
    other.close();
  });
  // Stop reading so the proxy's writes to this client queue up, then let another client use the
  // pool meanwhile (its reads go through the same code), then read everything.
  slow.socket.pause();
  slow.socket.write(serialize.query(BIG));
  await new Promise((r) => setTimeout(r, 300));
  other.socket.write(serialize.query('select 42'));
  const small = await other.result();
  t.equal(small.rows, 1, 'the other server kept working while the slow client was stalled');
  await new Promise((r) => setTimeout(r, 300));
  slow.socket.resume();
  const got = await slow.result();
  t.equal(got.rows, want.rows, 'every row arrived');
  t.equal(got.digest, want.digest, 'byte for byte what PostgreSQL sent');
  t.same(got.errors, []);

  // The server went back to the pool and still serves correctly.
  slow.socket.write(serialize.query(BIG));
  t.equal((await slow.result()).digest, want.digest, 'again, at full speed');
});

t.test('a client pipelining more than pgrelay holds while it waits gets every answer in order', { timeout: 60_000 }, async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const holder = await RawClient.login(relay.port);
  const flood = await RawClient.login(relay.port);
  t.teardown(() => {
    holder.close();
    flood.close();
  });
  holder.socket.write(serialize.query('begin'));
  await holder.result();
  // About 200 KB of queries while the only server is held by an open transaction.
  const n = 6000;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(serialize.query(`select ${i} as n, '${'x'.repeat(10)}' as pad`));
  const sent = Buffer.concat(parts);
  t.ok(sent.length > 128 * 1024, `${sent.length} bytes pipelined`);
  flood.socket.write(sent);
  await new Promise((r) => setTimeout(r, 500));
  holder.socket.write(serialize.query('commit'));
  await holder.result();
  let inOrder = true;
  for (let i = 0; i < n; i++) {
    const m = await flood.next(); // RowDescription
    if (m.type !== 'T') throw new Error(`expected RowDescription, got ${m.type}: ${m.body.toString()}`);
    const row = await flood.next();
    const value = row.body.subarray(6, 6 + row.body.readInt32BE(2)).toString();
    if (value !== String(i)) inOrder = false;
    await flood.next(); // CommandComplete
    const z = await flood.next();
    if (z.type !== 'Z') throw new Error(`expected ReadyForQuery, got ${z.type}`);
  }
  t.ok(inOrder, `${n} answers, in the order sent`);
  flood.socket.write(serialize.query('select 1'));
  t.equal((await flood.result()).rows, 1, 'the client goes on normally');
});

t.test('requests held for a server still run when the client leaves (Terminate or EOF)', { timeout: 60_000 }, async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 1 } });
  t.teardown(() => relay.stop());
  const direct = await RawClient.login(cluster.port);
  t.teardown(() => direct.close());
  direct.socket.write(serialize.query('create table if not exists held_t (tag text)'));
  await direct.result();
  const holder = await RawClient.login(relay.port);
  t.teardown(() => holder.close());
  holder.socket.write(serialize.query('begin'));
  await holder.result();

  // In one write: the INSERT, then Terminate, then FIN.
  const sameChunk = await RawClient.login(relay.port);
  sameChunk.socket.end(Buffer.concat([serialize.query(`insert into held_t values ('same chunk')`), serialize.end()]));
  // In separate writes while it waits for the server.
  const separate = await RawClient.login(relay.port);
  separate.socket.write(serialize.query(`insert into held_t values ('separate')`));
  await new Promise((r) => setTimeout(r, 200));
  separate.socket.end(serialize.end());
  // No Terminate at all: the INSERT, then only FIN.
  const abrupt = await RawClient.login(relay.port);
  abrupt.socket.write(serialize.query(`insert into held_t values ('no terminate')`));
  await new Promise((r) => setTimeout(r, 200));
  abrupt.socket.end();
  await new Promise((r) => setTimeout(r, 300));

  holder.socket.write(serialize.query('commit'));
  await holder.result();
  let rows: string[] = [];
  for (let i = 0; i < 50 && rows.length < 3; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const q = await direct.firstColumn('select tag from held_t order by tag');
    rows = q;
  }
  t.same(rows, ['no terminate', 'same chunk', 'separate'], 'every insert ran although its client had left');
  holder.socket.write(serialize.query('select 1'));
  t.equal((await holder.result()).rows, 1, 'the pool still serves');
});

/** CopyData ('d') carrying `payload`. */
function copyData(payload: Buffer): Buffer {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = 0x64;
  b.writeInt32BE(4 + payload.length, 1);
  payload.copy(b, 5);
  return b;
}

t.test('a large COPY FROM STDIN arrives byte for byte while other clients share the read buffer', { timeout: 90_000 }, async (t) => {
  const relay = await startRelay(cluster, { settings: { defaultPoolSize: 2 } });
  t.teardown(() => relay.stop());
  const direct = await RawClient.login(cluster.port);
  t.teardown(() => direct.close());
  direct.socket.write(serialize.query('drop table if exists copy_t; create table copy_t (id int, v text)'));
  await direct.result();

  // About 40 MB in 64 KB CopyData messages, written without waiting: PostgreSQL takes them more
  // slowly than they come, so pgrelay's writes to the server fill its socket and queue.
  const copier = await RawClient.login(relay.port);
  const chatty = await RawClient.login(relay.port);
  t.teardown(() => {
    copier.close();
    chatty.close();
  });
  copier.socket.write(serialize.query('copy copy_t from stdin'));
  t.equal((await copier.next()).type, 'G', 'CopyInResponse');
  const h = createHash('md5');
  let text = '';
  let rows = 0;
  for (let i = 1; i <= 100_000; i++) {
    const v = `${createHash('md5').update(String(i)).digest('hex')}${String.fromCharCode(65 + (i % 26)).repeat(300 + (i % 200))}`;
    h.update(v);
    text += `${i}\t${v}\n`;
    rows++;
    if (text.length > 60_000) {
      copier.socket.write(copyData(Buffer.from(text)));
      text = '';
    }
  }
  if (text.length > 0) copier.socket.write(copyData(Buffer.from(text)));
  copier.socket.write(Buffer.from([0x63, 0, 0, 0, 4])); // CopyDone

  // Meanwhile another client's queries are read into the same buffer, many times over.
  let answered = 0;
  let chattyErrors = 0;
  const copyDone = copier.result();
  let finished = false;
  void copyDone.then(() => (finished = true));
  while (!finished) {
    chatty.socket.write(serialize.query(`select ${answered}`));
    const r = await chatty.result();
    chattyErrors += r.errors.length;
    answered++;
  }
  const copied = await copyDone;
  t.same(copied.errors, [], 'COPY succeeded');
  t.ok(answered > 10, `the other client was served during the COPY (${answered} queries)`);
  t.equal(chattyErrors, 0, 'without an error');

  const [check] = await direct.firstColumn(`select count(*) || ' ' || md5(string_agg(v, '' order by id)) from copy_t`);
  t.equal(check, `${rows} ${h.digest('hex')}`, 'PostgreSQL holds exactly what the client sent');
});
