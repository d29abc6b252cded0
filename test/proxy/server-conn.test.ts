// ServerConn against a scripted backend on a loopback socket: a server that pgrelay paused because
// its client's socket was full must read again once that client's link ends, or the next client
// linked to it would wait forever for its answer. And a server closed while its client was inside a
// message must not be written anything after it (PostgreSQL would read it as the message's rest).

import t, { type Test } from 'tap';
import net from 'node:net';
import { ServerConn } from '../../src/proxy/server-conn.js';
import type { ServerClient } from '../../src/proxy/server-client.js';
import { ReadSlot } from '../../src/proxy/read-slot.js';
import { TxStatus } from '../../src/protocol/message-types.js';

const CommandComplete = Buffer.from([0x43, 0, 0, 0, 13, ...Buffer.from('SELECT 1\0')]);
const ReadyForQueryIdle = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
const reply = Buffer.concat([CommandComplete, ReadyForQueryIdle]);

/** A client that has sent one request; `full` makes every forward report a full socket. */
function client(id: number, full: boolean): ServerClient & { got: Buffer[]; released: boolean } {
  return {
    id,
    protocol: { outstanding: 1, unsynced: false, atBoundary: true, txStatus: 0x49 },
    transactionPooling: true,
    got: [],
    released: false,
    forwardFromServer(carry, chunk, from, end) {
      this.got.push(Buffer.from(chunk.subarray(from, end)));
      return !full;
    },
    sendToClient(buf) {
      this.got.push(Buffer.from(buf));
      return !full;
    },
    setParam() {},
    onReleased() {
      this.released = true;
    },
    onServerLost() {},
    resumeReading() {},
  };
}

async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

/** A ServerConn on a loopback socket whose other end (`backend`) plays PostgreSQL. */
async function connected(t: Test): Promise<{ server: ServerConn; backend: net.Socket; releases: boolean[] }> {
  let backend!: net.Socket;
  const listener = net.createServer();
  const accepted = new Promise<void>((resolve) => {
    listener.once('connection', (s: net.Socket) => {
      backend = s;
      resolve();
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const reader = new ReadSlot();
  const socket = net.connect({ host: '127.0.0.1', port, onread: reader.onread });
  await Promise.all([accepted, new Promise<void>((resolve) => socket.once('connect', () => resolve()))]);
  t.teardown(() => {
    socket.destroy();
    backend.destroy();
    listener.close();
  });
  const releases: boolean[] = [];
  const server = new ServerConn(
    { host: '127.0.0.1', port },
    socket,
    { socket, reader, params: new Map(), processId: 1, secretKey: 2, txStatus: TxStatus.Idle },
    1 << 20,
    { release: () => releases.push(true), discard: () => releases.push(false), onClosed: () => {}, cleanupTimeoutMs: () => 0 },
  );
  return { server, backend, releases };
}

t.test('the backpressure pause ends with the link: the next client is answered', async (t) => {
  const { server, backend, releases } = await connected(t);
  // The answer that ends the first client's transaction arrives while its socket is full.
  const slow = client(1, true);
  server.link(slow);
  backend.write(reply);
  t.ok(await until(() => slow.released), 'ReadyForQuery released the server');
  t.same(releases, [true], 'back to the pool as clean');
  t.same(Buffer.concat(slow.got), reply, 'the first client was given the whole answer');

  const next = client(2, false);
  server.link(next);
  backend.write(reply);
  t.ok(await until(() => next.released), 'the next client linked to the server gets its answer');
  t.same(Buffer.concat(next.got), reply, 'all of it');
});

t.test('a server closed after a client left inside a message gets no Terminate: its bytes would complete that message', async (t) => {
  for (const atBoundary of [true, false]) {
    const { server, backend } = await connected(t);
    const received: Buffer[] = [];
    backend.on('data', (d: Buffer) => received.push(d));
    const ended = new Promise<void>((resolve) => backend.once('end', () => resolve()));
    const c = client(1, false);
    server.link({ ...c, protocol: { ...c.protocol, atBoundary } });
    // An Execute of the unnamed portal; without its last 4 bytes (the row limit) when the client
    // left inside it.
    const execute = Buffer.from([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0]);
    const sent = atBoundary ? execute : execute.subarray(0, 6);
    server.write(null, sent, sent.length);
    server.unlink();
    server.discard('test');
    await ended;
    const wire = Buffer.concat(received);
    if (atBoundary) t.same(wire, Buffer.concat([execute, Buffer.from([0x58, 0, 0, 0, 4])]), 'between messages: the bytes, then a Terminate');
    else t.same(wire, sent, 'inside a message: the bytes, then only the end of the stream');
  }
});
