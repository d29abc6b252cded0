// The login packet buffer fed one stream split at every byte offset (and byte by byte): the same
// packets come out whole and in order, the rest drains unchanged, bad lengths are refused before
// the body arrives, and many appends cost linear time (no copy of everything per append).

import t from 'tap';
import { PacketBuffer } from '../../src/protocol/packet-buffer.js';
import { frame as msg } from '../harness/frames.js';

const startup = ((): Buffer => {
  const body = Buffer.from('\u0000\u0003\u0000\u0000user\u0000alice\u0000\u0000', 'latin1');
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(out.length, 0);
  body.copy(out, 4);
  return out;
})();
const password = msg('p', 'secret\u0000');
const sasl = msg('p', 'x'.repeat(300));
const pipelined = Buffer.concat([msg('Q', 'select 1\u0000'), msg('Q', 'select 2\u0000').subarray(0, 7)]);
const stream = Buffer.concat([startup, password, sasl, pipelined]);

/** Feeds `parts` in order, taking packets as soon as they are whole; returns what came out. */
function run(parts: Buffer[]): string[] {
  const b = new PacketBuffer();
  const out: string[] = [];
  const steps: Array<(b: PacketBuffer) => Buffer | null> = [(x) => x.takeUntyped(10_000), (x) => x.takeTyped(65_536), (x) => x.takeTyped(65_536)];
  for (const part of parts) {
    b.push(Buffer.from(part)); // a private copy, as the session makes
    for (let p = steps[out.length]?.(b); p !== null && p !== undefined; p = steps[out.length]?.(b)) out.push(p.toString('hex'));
  }
  out.push(b.drain().toString('hex'));
  t.equal(b.length, 0);
  return out;
}

const expected = [startup, password, sasl, pipelined].map((x) => x.toString('hex'));

t.test('split at every byte offset, and byte by byte', async (t) => {
  t.same(run([stream]), expected, 'one read');
  for (let i = 1; i < stream.length; i++) {
    const got = run([stream.subarray(0, i), stream.subarray(i)]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      t.fail(`split at ${i}`);
      return;
    }
  }
  t.same(run([...stream].map((x) => Buffer.from([x]))), expected, 'byte by byte');
  for (let i = 1; i < 40; i += 3) {
    const parts: Buffer[] = [];
    for (let at = 0; at < stream.length; at += i) parts.push(stream.subarray(at, at + i));
    t.same(run(parts), expected, `reads of ${i} bytes`);
  }
});

t.test('lengths are checked from the header, even split across reads', async (t) => {
  const b = new PacketBuffer();
  b.push(Buffer.from([0x70, 0x00]));
  t.equal(b.takeTyped(100), null);
  b.push(Buffer.from([0x00, 0x10, 0x00])); // 4096 > 100
  t.throws(() => b.takeTyped(100), /invalid message length 4096 for message type p/);
  const s = new PacketBuffer();
  s.push(Buffer.from([0xff]));
  s.push(Buffer.from([0xff, 0xff, 0xff]));
  t.throws(() => s.takeUntyped(10_000), /invalid startup packet length -1/);
  const e = new PacketBuffer();
  t.equal(e.takeUntyped(10_000), null);
  t.equal(e.drain().length, 0);
});

t.test('appends are linear: 32 MB in 16 KB reads', async (t) => {
  const chunk = Buffer.alloc(16 * 1024, 0x41);
  const b = new PacketBuffer();
  const started = performance.now();
  for (let i = 0; i < 2048; i++) b.push(Buffer.from(chunk));
  const rest = b.drain();
  const ms = performance.now() - started;
  t.equal(rest.length, 32 * 1024 * 1024);
  t.ok(ms < 600, `took ${ms.toFixed(0)} ms`);
});
