// The frame scanner fed one stream split at every byte offset (and byte by byte): forwarded
// bytes must equal the input, Full frames must arrive whole, Header frames in order, and a
// refused frame must not leak a single byte.

import t from 'tap';
import { FrameScanner, frameModes, type FrameSink } from '../../src/protocol/frame-scanner.js';
import { frame as msg } from '../harness/frames.js';

const Z = 'Z'.charCodeAt(0);
const Q = 'Q'.charCodeAt(0);
const X = 'X'.charCodeAt(0);
const MODES = frameModes([Q, X], [Z]);

class Recorder implements FrameSink {
  frames: string[] = [];
  headers: string[] = [];
  bad: number[] = [];
  onHeader(type: number): boolean {
    this.headers.push(String.fromCharCode(type));
    return type !== X;
  }
  onFrame(type: number, buf: Buffer, start: number, end: number): void {
    this.frames.push(String.fromCharCode(type) + buf.subarray(start + 5, end).toString());
  }
  onBadLength(_type: number, length: number): void {
    this.bad.push(length);
  }
}

/** Runs chunks through a scanner; returns what would be forwarded. */
function run(chunks: Buffer[], max = 1 << 20): { out: Buffer; rec: Recorder; scanner: FrameScanner } {
  const rec = new Recorder();
  const scanner = new FrameScanner(MODES, max, rec);
  const out: Buffer[] = [];
  for (const c of chunks) {
    const n = scanner.scan(c);
    if (scanner.carry !== null) out.push(scanner.carry);
    out.push(c.subarray(0, n));
    if (scanner.stopped) break;
  }
  return { out: Buffer.concat(out), rec, scanner };
}

const big = Buffer.alloc(70000, 0x61);
const stream = Buffer.concat([msg('Q', 'select 1\0'), msg('T', 'rowdesc'), msg('D', big), msg('Z', 'I'), msg('S', ''), msg('Q', ''), msg('Z', 'T')]);
const expectedFrames = ['ZI', 'ZT'];
const expectedHeaders = ['Q', 'Q'];

t.test('whole stream in one chunk', async (t) => {
  const { out, rec, scanner } = run([stream]);
  t.same(out, stream);
  t.same(rec.frames, expectedFrames);
  t.same(rec.headers, expectedHeaders);
  t.ok(scanner.atBoundary);
});

t.test('split into two chunks at every offset', async (t) => {
  let failures = 0;
  for (let i = 0; i <= stream.length; i++) {
    const { out, rec, scanner } = run([stream.subarray(0, i), stream.subarray(i)]);
    if (!out.equals(stream) || rec.frames.join() !== expectedFrames.join() || rec.headers.join() !== expectedHeaders.join() || !scanner.atBoundary) {
      failures++;
      if (failures < 5) t.fail(`split at ${i}: frames=${rec.frames} headers=${rec.headers}`);
    }
  }
  t.equal(failures, 0, `all ${stream.length + 1} split points forward the stream intact`);
});

t.test('byte by byte', async (t) => {
  const small = Buffer.concat([msg('Q', 'x\0'), msg('Z', 'I'), msg('D', 'abc'), msg('Z', 'E')]);
  const chunks = [...small].map((b) => Buffer.from([b]));
  const { out, rec } = run(chunks);
  t.same(out, small);
  t.same(rec.frames, ['ZI', 'ZE']);
});

t.test('a refused frame is never forwarded, at any split', async (t) => {
  const head = Buffer.concat([msg('Q', 'select 1\0'), msg('D', 'data')]);
  const s = Buffer.concat([head, msg('X', ''), msg('Q', 'after\0')]);
  for (let i = 0; i <= s.length; i++) {
    const { out, rec, scanner } = run([s.subarray(0, i), s.subarray(i)]);
    t.ok(scanner.stopped, `stopped at split ${i}`);
    t.same(out, head, `only bytes before Terminate forwarded (split ${i})`);
    t.same(rec.headers, ['Q', 'X']);
  }
});

t.test('lengths below 4 or above the maximum stop the scan', async (t) => {
  const bad = Buffer.from([0x44, 0, 0, 0, 2]);
  const r1 = run([bad]);
  t.ok(r1.scanner.stopped);
  t.same(r1.rec.bad, [2]);
  t.equal(r1.out.length, 0);
  const r2 = run([msg('D', Buffer.alloc(100))], 50);
  t.ok(r2.scanner.stopped);
  t.same(r2.rec.bad, [104]);
  // The length field is a signed int32, read as PostgreSQL reads it: the high bit makes it negative.
  const r3 = run([Buffer.from([0x44, 0xff, 0xff, 0xff, 0xfe])]);
  t.ok(r3.scanner.stopped);
  t.same(r3.rec.bad, [-2]);
  const r4 = run([Buffer.from([0x44, 0x80, 0, 0, 0])]);
  t.same(r4.rec.bad, [-2147483648]);
  // Every byte of the field counts (a header split across reads is read the same way).
  const r5 = run([Buffer.from([0x44, 0x01, 0x02]), Buffer.from([0x03, 0x04])], 1 << 30);
  t.same(r5.rec.bad, [], 'a length within the maximum is not refused');
  const r6 = run([Buffer.from([0x44, 0x01, 0x02]), Buffer.from([0x03, 0x04])], 0x01020303);
  t.same(r6.rec.bad, [0x01020304], 'all four bytes, big-endian');
});

t.test('a Full frame larger than one read is assembled once', async (t) => {
  const zBig = msg('Z', Buffer.alloc(5000, 0x62));
  const chunks: Buffer[] = [];
  for (let i = 0; i < zBig.length; i += 1000) chunks.push(zBig.subarray(i, i + 1000));
  const { out, rec } = run(chunks);
  t.same(out, zBig);
  t.equal(rec.frames.length, 1);
  t.equal(rec.frames[0]!.length, 5001);
});
