// The forwarding path's socket I/O on real loopback sockets: accepted sockets read into the one
// shared buffer (no 'data' events, EOF still ends them), and writeView() never lets a queued
// write see the shared buffer change: what the kernel does not take is copied, in order.

import t from 'tap';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { connectOnread, handleOf, readIntoShared, writeView, READ_BUFFER_SIZE } from '../../src/proxy/socket-io.js';

/** A listening server and a connected client; `accepted` is the server side of the connection. */
async function pair(onAccept: (s: net.Socket) => void = () => {}): Promise<{ client: net.Socket; accepted: net.Socket; close(): void }> {
  let accepted!: net.Socket;
  const server = net.createServer();
  const gotOne = new Promise<void>((resolve) => {
    server.once('connection', (s: net.Socket) => {
      accepted = s;
      onAccept(s);
      resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await Promise.all([gotOne, new Promise<void>((resolve) => client.once('connect', resolve))]);
  return {
    client,
    accepted,
    close: () => {
      client.destroy();
      accepted.destroy();
      server.close();
    },
  };
}

/** Everything `socket` receives until the peer's FIN. */
function receiveAll(socket: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  socket.on('data', (b: Buffer) => parts.push(b));
  return new Promise((resolve) => socket.once('end', () => resolve(Buffer.concat(parts))));
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Resumes a paused socket and resolves with what it reads once `want` bytes have arrived. */
function receive(socket: net.Socket, want: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve) => {
    const got: Buffer[] = [];
    let total = 0;
    socket.on('data', (d: Buffer) => {
      got.push(d);
      total += d.length;
      if (total >= want) resolve(Buffer.concat(got));
    });
    socket.resume();
  });
}

t.test('accepted sockets read into one shared buffer, and EOF still closes them', async (t) => {
  const seen: { text: string; buffer: ArrayBufferLike; socket: net.Socket }[] = [];
  function onRead(this: net.Socket, chunk: Buffer, len: number): void {
    seen.push({ text: chunk.toString('utf8', 0, len), buffer: chunk.buffer, socket: this });
  }
  const a = await pair((s) => t.ok(readIntoShared(s, onRead), 'shared buffer in use on this node'));
  const b = await pair((s) => readIntoShared(s, onRead));
  t.teardown(() => {
    a.close();
    b.close();
  });
  let dataEvents = 0;
  a.accepted.on('data', () => dataEvents++);
  a.client.write('hello');
  await new Promise((r) => setTimeout(r, 50));
  b.client.write('world');
  await new Promise((r) => setTimeout(r, 50));
  t.same(
    seen.map((s) => s.text),
    ['hello', 'world'],
  );
  t.equal(seen[0]!.socket, a.accepted, 'the callback runs with the socket as this');
  t.equal(seen[1]!.socket, b.accepted);
  t.equal(seen[0]!.buffer, seen[1]!.buffer, 'both sockets read into the same memory');
  t.equal(seen[0]!.buffer.byteLength, READ_BUFFER_SIZE);
  t.equal(dataEvents, 0, 'no data events');
  const closed = new Promise<void>((resolve) => a.accepted.once('close', () => resolve()));
  a.client.end();
  await closed;
  t.pass('the peer closing ends the socket');
});

t.test('connectOnread: a client socket reads into the same shared buffer', async (t) => {
  const server = net.createServer((s) => s.end('from server'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const chunks: Buffer[] = [];
  const socket = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    onread: connectOnread((chunk, len) => chunks.push(Buffer.from(chunk.subarray(0, len)))),
  });
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  t.equal(Buffer.concat(chunks).toString(), 'from server');
});

t.test('writeView: a write the kernel cannot take whole is copied, so the source may change at once', async (t) => {
  const p = await pair();
  t.teardown(() => p.close());
  // The peer does not read yet, so the send and receive buffers fill and the kernel takes only
  // part of the data; the rest must be queued as a copy.
  p.accepted.pause();
  const CHUNK = 64 * 1024;
  const source = Buffer.alloc(CHUNK);
  const expected: Buffer[] = [];
  const write = (i: number): boolean => {
    source.fill(i % 251);
    expected.push(Buffer.from(source));
    return writeView(p.client, source, 0, CHUNK);
  };
  // Until the kernel's buffers are full (their size depends on the machine's autotuning; 64 MB is
  // far more than they take), then a few more that can only be queued behind the first copy.
  let fullAt = -1;
  for (let i = 0; i < 1024 && fullAt < 0; i++) if (!write(i)) fullAt = i;
  for (let i = 0; i < 4; i++) write(1024 + i);
  // Overwrite the source: nothing queued may reference it.
  source.fill(0xee);
  t.ok(fullAt >= 0, `backpressure reported (first at write ${fullAt})`);
  t.ok(p.client.writableLength > 0, 'the rest is queued on the stream');
  const got = await receive(p.accepted, expected.length * CHUNK);
  t.equal(sha(got), sha(Buffer.concat(expected)), 'every byte arrives, in order, as written');
  await new Promise<void>((resolve) => (p.client.writableLength === 0 ? resolve() : p.client.once('drain', () => resolve())));
  t.equal(p.client.writableLength, 0, 'drained');
  // With nothing queued, a write goes to the kernel whole and returns true.
  t.equal(writeView(p.client, Buffer.from('tail'), 0, 4), true);
  t.equal(p.client.writableLength, 0, 'nothing queued for a write the kernel took');
});

t.test('writeView: empty ranges, closed sockets and a peer that is gone', async (t) => {
  const p = await pair();
  t.equal(writeView(p.client, Buffer.from('x'), 1, 1), true, 'nothing to write');
  // The peer resets the connection and the client writes before the event loop runs again:
  // the write meets the reset, which ends in an error on the socket, not a throw.
  const errored = new Promise<Error>((resolve) => p.client.once('error', resolve));
  const big = Buffer.alloc(256 * 1024, 1);
  p.accepted.resetAndDestroy();
  t.equal(writeView(p.client, big, 0, big.length), false, 'the write fails');
  t.ok(p.client.destroyed, 'and destroys the socket');
  const err = await errored;
  t.match((err as NodeJS.ErrnoException).code, /EPIPE|ECONNRESET/, 'the socket reports the write error');
  t.equal(writeView(p.client, big, 0, 10), false, 'a destroyed socket takes nothing');
  p.close();
  const ended = await pair();
  ended.client.end();
  t.equal(writeView(ended.client, big, 0, 10), false, 'an ended socket takes nothing');
  ended.close();
});

t.test('writeView: nothing is written after the socket was ended, by end() or (at the peer\'s FIN) by node', async (t) => {
  // Ended with a last message: the message arrives, then the FIN; a write after end() does not
  // slip in before the FIN (node sends it on a later tick).
  const p = await pair();
  t.teardown(() => p.close());
  const received = receiveAll(p.accepted);
  p.client.end(Buffer.from('last'));
  t.notOk(p.client.writable, 'not writable from the moment end() is called');
  t.equal(writeView(p.client, Buffer.from('after'), 0, 5), false, 'a write after end() is refused');
  t.equal((await received).toString(), 'last', 'the peer got the last message and nothing after it');

  // The peer ends its side: node ends ours right after (no half-open sockets), and writeView
  // stops with it, as node's own write does.
  const q = await pair();
  t.teardown(() => q.close());
  q.client.resume();
  const peerEnded = new Promise<void>((resolve) => q.client.once('end', () => resolve()));
  q.accepted.end();
  await peerEnded;
  t.notOk(q.client.writable, 'node ended this side at the peer\'s FIN');
  t.equal(writeView(q.client, Buffer.from('late'), 0, 4), false, 'nothing more is written to it');

  // A socket that allows half-open connections keeps writing after the peer's FIN.
  const h = await pair();
  t.teardown(() => h.close());
  h.client.allowHalfOpen = true;
  h.client.resume();
  const halfEnded = new Promise<void>((resolve) => h.client.once('end', () => resolve()));
  const got = receiveAll(h.accepted);
  h.accepted.end();
  await halfEnded;
  t.ok(h.client.writable, 'half-open: still writable');
  t.equal(writeView(h.client, Buffer.from('reply'), 0, 5), true, 'a write goes out');
  h.client.end();
  t.equal((await got).toString(), 'reply', 'and arrives');
});

t.test('writeView: after a small write the kernel could not take whole, small and big ones queue behind it, in order, and end in a drain', async (t) => {
  const p = await pair();
  t.teardown(() => p.close());
  p.accepted.pause();
  // Small writes, each straight to the kernel, until one is not taken whole.
  const SMALL = 1000;
  const source = Buffer.alloc(64 * 1024);
  const expected: Buffer[] = [];
  const write = (i: number, size: number): boolean => {
    source.fill(i % 251, 0, size);
    expected.push(Buffer.from(source.subarray(0, size)));
    return writeView(p.client, source, 0, size);
  };
  let fullAt = -1;
  for (let i = 0; i < 200_000 && fullAt < 0; i++) if (!write(i, SMALL)) fullAt = i;
  t.ok(fullAt >= 0, `backpressure reported (first at write ${fullAt})`);
  const drained = new Promise<void>((resolve) => p.client.once('drain', () => resolve()));
  // More small and big writes while the first one's rest is still pending: all must queue behind it.
  t.equal(write(1_000_001, SMALL), false, 'a small write queues behind the pending rest');
  t.equal(write(1_000_002, 32 * 1024), false, 'a big write queues behind it too');
  t.equal(write(1_000_003, 10), false);
  // Overwrite the source: nothing queued may reference it.
  source.fill(0xee);
  const want = expected.reduce((n, b) => n + b.length, 0);
  const got = await receive(p.accepted, want);
  t.equal(got.length, want, 'every byte arrives');
  t.equal(sha(got), sha(Buffer.concat(expected)), 'in the order written');
  await drained;
  t.pass('the socket says drain once everything is written');
  t.equal(writeView(p.client, Buffer.from('tail'), 0, 4), true, 'then a small write is taken at once');
});

t.test('writeView: a small write to a peer that is gone destroys the socket with the write error', async (t) => {
  const p = await pair();
  const errored = new Promise<Error>((resolve) => p.client.once('error', resolve));
  p.accepted.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 50));
  // The reset may not have reached the socket's reading side yet: keep writing until a write fails.
  let failed = false;
  for (let i = 0; i < 100 && !failed; i++) failed = !writeView(p.client, Buffer.from('x'.repeat(100)), 0, 100);
  t.ok(failed, 'a write fails');
  const err = await errored;
  t.match((err as NodeJS.ErrnoException).code, /EPIPE|ECONNRESET/, 'the socket reports the write error');
  t.ok(p.client.destroyed);
  p.close();
});

t.test('handleOf: the handle node keeps for the socket, null from the moment it is destroyed', async (t) => {
  const p = await pair((s) => readIntoShared(s, () => {}));
  t.teardown(() => p.close());
  const internal = (s: net.Socket): unknown => (s as unknown as { _handle: unknown })._handle;
  t.not(handleOf(p.client), null, 'a connected socket has one');
  t.equal(handleOf(p.client), internal(p.client), 'the same object as _handle (connected)');
  t.equal(handleOf(p.accepted), internal(p.accepted), 'the same object as _handle (accepted)');
  p.client.destroy();
  t.equal(handleOf(p.client), null, 'null right after destroy(), before any event');
});
