// Decide-mode frames of the frame scanner, fed one stream split at every byte offset (twice, and
// byte by byte): taken frames must vanish from the forwarded bytes and reach the sink whole, in
// order with everything around them; forwarded and observed Decide frames must pass intact.

import t from 'tap';
import { FrameScanner, frameModes, Verdict, type SplicingSink } from '../../src/protocol/frame-scanner.js';
import { frame as msg } from '../harness/frames.js';

const P = 'P'.charCodeAt(0);
const Z = 'Z'.charCodeAt(0);
const Q = 'Q'.charCodeAt(0);
const MODES = frameModes([Q], [], [P, Z]);
const PEEK = 8;

/** Takes a P frame whose body starts with 'n' (named), forwards the others; observes Z. */
class Splicer implements SplicingSink {
  out: Buffer[] = [];
  taken: string[] = [];
  observed: string[] = [];
  decided: string[] = [];
  onHeader(): boolean {
    return true;
  }
  onFrame(type: number, buf: Buffer, start: number, end: number): void {
    this.observed.push(String.fromCharCode(type) + buf.toString('latin1', start + 5, end));
  }
  onBadLength(): void {}
  onDecide(type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    if (avail < Math.min(1 + length, PEEK)) throw new Error(`decided on ${avail} bytes`);
    this.decided.push(String.fromCharCode(type));
    if (type === Z) return Verdict.Observe;
    return length > 4 && buf[start + 5] === 0x6e ? Verdict.Take : Verdict.Forward;
  }
  onRun(carry: Buffer | null, chunk: Buffer, from: number, to: number): void {
    if (carry !== null) this.out.push(Buffer.from(carry));
    this.out.push(Buffer.from(chunk.subarray(from, to)));
  }
  onTaken(type: number, buf: Buffer, start: number, end: number): void {
    const body = buf.toString('latin1', start + 5, end);
    this.taken.push(body);
    this.out.push(msg('R', body.toUpperCase()));
  }
}

function run(chunks: Buffer[]): Splicer {
  const sink = new Splicer();
  const scanner = new FrameScanner(MODES, 1 << 20, sink, PEEK);
  for (const c of chunks) {
    const end = scanner.scan(c);
    sink.onRun(scanner.carry, c, scanner.from, end);
  }
  if (!scanner.atBoundary) throw new Error('scanner not at a boundary after the whole stream');
  return sink;
}

const longName = 'n' + 'x'.repeat(300);
const stream = Buffer.concat([
  msg('Q', 'select 1\0'),
  msg('P', 'named-one\0'),
  msg('P', '\0unnamed'),
  msg('D', 'd'.repeat(40)),
  msg('P', 'nn'),
  msg('Z', 'I'),
  msg('P', longName),
  msg('P', ''),
  msg('Z', 'T'),
]);
const expected = Buffer.concat([
  msg('Q', 'select 1\0'),
  msg('R', 'NAMED-ONE\0'),
  msg('P', '\0unnamed'),
  msg('D', 'd'.repeat(40)),
  msg('R', 'NN'),
  msg('Z', 'I'),
  msg('R', longName.toUpperCase()),
  msg('P', ''),
  msg('Z', 'T'),
]);
const expectedTaken = ['named-one\0', 'nn', longName];

function check(s: Splicer): string | null {
  const out = Buffer.concat(s.out);
  if (!out.equals(expected)) return `output differs: ${out.toString('latin1')}`;
  if (s.taken.join('|') !== expectedTaken.join('|')) return `taken ${s.taken.join('|')}`;
  if (s.observed.join('|') !== 'ZI|ZT') return `observed ${s.observed.join('|')}`;
  if (s.decided.join('') !== 'PPPZPPZ') return `decided ${s.decided.join('')}`;
  return null;
}

t.test('whole stream in one chunk', async (t) => {
  t.equal(check(run([stream])), null);
});

t.test('split into two chunks at every offset', async (t) => {
  const failures: string[] = [];
  for (let i = 0; i <= stream.length; i++) {
    const problem = check(run([stream.subarray(0, i), stream.subarray(i)]));
    if (problem !== null) failures.push(`at ${i}: ${problem}`);
  }
  t.same(failures.slice(0, 3), [], `all ${stream.length + 1} split points`);
});

t.test('split into three chunks at every pair of offsets in the first frames', async (t) => {
  const failures: string[] = [];
  const limit = 60;
  for (let i = 0; i <= limit; i++) {
    for (let j = i; j <= limit; j++) {
      const problem = check(run([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]));
      if (problem !== null) failures.push(`at ${i},${j}: ${problem}`);
    }
  }
  t.same(failures.slice(0, 3), []);
});

t.test('byte by byte', async (t) => {
  t.equal(check(run([...stream].map((b) => Buffer.from([b])))), null);
});

t.test('a taken frame that fits in the read is handed over as a view, not a copy', async (t) => {
  let view = false;
  const sink = new Splicer();
  const onTaken = sink.onTaken.bind(sink);
  const chunk = Buffer.from(stream);
  sink.onTaken = (type, buf, start, end) => {
    if (buf.buffer === chunk.buffer) view = true;
    onTaken(type, buf, start, end);
  };
  const scanner = new FrameScanner(MODES, 1 << 20, sink, PEEK);
  scanner.scan(chunk);
  t.ok(view);
});

t.test('a bad length in a Decide frame stops the scan', async (t) => {
  let bad = -1;
  const sink = new Splicer();
  sink.onBadLength = () => {
    bad = 1;
  };
  const scanner = new FrameScanner(MODES, 100, sink, PEEK);
  const frame = msg('P', 'n'.repeat(200));
  t.equal(scanner.scan(Buffer.concat([msg('Q', 'x\0'), frame])), 7);
  t.ok(scanner.stopped);
  t.equal(bad, 1);
});
