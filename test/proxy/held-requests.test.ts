// HeldRequests with a recording server: the read that starts a transaction goes out as a view
// (no copy) when a server links during that read, is copied when it does not, and everything
// held is written once, in arrival order, then forgotten.

import t from 'tap';
import { HeldRequests, MAX_HELD_BYTES } from '../../src/proxy/held-requests.js';
import type { ServerConn } from '../../src/proxy/server-conn.js';

/** The two write verbs flushTo() uses, recording each call. */
class RecordingServer {
  calls: { verb: 'write' | 'writeBuffers'; buffers: Buffer[] }[] = [];
  full = false;
  write(carry: Buffer | null, chunk: Buffer, end: number): boolean {
    this.calls.push({ verb: 'write', buffers: [...(carry !== null ? [carry] : []), chunk.subarray(0, end)] });
    return !this.full;
  }
  writeBuffers(chunks: readonly Buffer[]): boolean {
    this.calls.push({ verb: 'writeBuffers', buffers: [...chunks] });
    return !this.full;
  }
  get bytes(): string {
    return Buffer.concat(this.calls.flatMap((c) => c.buffers)).toString();
  }
}

const asServer = (s: RecordingServer): ServerConn => s as unknown as ServerConn;

t.test('a view flushed during its read is written from the read buffer itself', async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  const chunk = Buffer.alloc(17);
  chunk.write('Q-request+partial'); // memory of its own, unlike Buffer.from's shared pool
  held.holdView(null, chunk, 9);
  t.notOk(held.isEmpty);
  t.ok(held.flushTo(asServer(server)));
  t.equal(server.calls.length, 1);
  t.equal(server.calls[0]!.verb, 'write');
  t.equal(server.calls[0]!.buffers[0]!.buffer, chunk.buffer, 'no copy: the bytes are the read buffer');
  t.equal(server.bytes, 'Q-request', 'only chunk[0, end)');
  t.ok(held.isEmpty, 'forgotten once written');
  held.copyView();
  t.ok(held.isEmpty, 'copyView after a flush keeps nothing');
});

t.test('a view not taken during its read is copied: the read buffer may be reused', async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  const shared = Buffer.alloc(4, 'A'); // memory of its own, unlike Buffer.from's shared pool
  const carry = Buffer.from('hdr');
  held.holdView(carry, shared, 4);
  held.copyView();
  shared.fill('Z'); // the next read lands in the same memory
  t.ok(held.flushTo(asServer(server)));
  t.equal(server.bytes, 'hdrAAAA', 'the carry, then the bytes as they were');
  t.equal(server.calls[0]!.verb, 'writeBuffers', 'carry and chunk are two copies, written in one go');
  t.not(server.calls[0]!.buffers[1]!.buffer, shared.buffer, 'a copy, not the read buffer');
});

t.test('order: copies in arrival order, then the current view; one write each', async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  held.hold(null, Buffer.from('one|xx'), 4);
  held.hold(Buffer.from('two-carry|'), Buffer.from('two|'), 4);
  held.hold(null, Buffer.from('three|'), 6);
  held.holdView(null, Buffer.from('view'), 4);
  t.ok(held.flushTo(asServer(server)));
  t.same(
    server.calls.map((c) => c.verb),
    ['writeBuffers', 'write'],
  );
  t.equal(server.bytes, 'one|two-carry|two|three|view');
  t.same(
    server.calls[0]!.buffers.map(String),
    ['one|', 'two-carry|', 'two|', 'three|'],
    'every copy in one writeBuffers call',
  );
  t.ok(held.isEmpty);
  server.calls = [];
  t.ok(held.flushTo(asServer(server)), 'a second flush has nothing to write');
  t.same(server.calls, []);
});

t.test('a single copy goes out with write(); a carry alone is held', async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  held.hold(Buffer.from('Q\0\0'), Buffer.from('ignored'), 0);
  t.notOk(held.isEmpty, 'a withheld header is held even when the chunk adds nothing');
  t.ok(held.flushTo(asServer(server)));
  t.same(server.calls, [{ verb: 'write', buffers: [Buffer.from('Q\0\0')] }]);
});

t.test("flushTo reports a full server socket", async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  server.full = true;
  held.hold(null, Buffer.from('abc'), 3);
  t.notOk(held.flushTo(asServer(server)));
  t.ok(held.isEmpty, 'written all the same: the socket buffers it');
  held.holdView(null, Buffer.from('v'), 1);
  t.notOk(held.flushTo(asServer(server)));
});

t.test('overLimit counts copies only, past MAX_HELD_BYTES; flushTo and clear reset it', async (t) => {
  const held = new HeldRequests();
  const big = Buffer.alloc(MAX_HELD_BYTES, 0x61);
  held.holdView(null, big, big.length);
  t.notOk(held.overLimit, 'a view is not pgrelay memory');
  held.copyView();
  t.notOk(held.overLimit, 'exactly MAX_HELD_BYTES is still within the limit');
  held.hold(null, Buffer.from('x'), 1);
  t.ok(held.overLimit, 'one byte more is over');
  held.flushTo(asServer(new RecordingServer()));
  t.notOk(held.overLimit);
  held.hold(null, Buffer.alloc(MAX_HELD_BYTES + 1), MAX_HELD_BYTES + 1);
  t.ok(held.overLimit);
  held.clear();
  t.notOk(held.overLimit);
  t.ok(held.isEmpty);
});

t.test('clear drops copies and the view', async (t) => {
  const held = new HeldRequests();
  const server = new RecordingServer();
  held.hold(null, Buffer.from('gone'), 4);
  held.holdView(null, Buffer.from('gone too'), 8);
  held.clear();
  t.ok(held.isEmpty);
  held.copyView();
  t.ok(held.isEmpty, 'no view left to copy');
  held.flushTo(asServer(server));
  t.same(server.calls, [], 'nothing is written after clear');
});
