// Microbenchmark of pgrelay's framing and forwarding path with no sockets: realistic byte streams,
// cut into fixed-size reads, go through FrameScanner with the frame modes of the server and client
// connections and a sink and write step shaped like theirs. Reports frames/s and MB/s.
// Standalone: npx tsx bench/framer.ts [--seconds S] [--chunk BYTES] [--json]

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { FrameScanner } from '../src/protocol/frame-scanner.js';
import type { FrameSink } from '../src/protocol/frame-scanner.js';
import { Backend } from '../src/protocol/message-types.js';

// The very tables the proxy scans with, so the benchmark cannot drift from the forwarding path.
import { SERVER_FRAMES } from '../src/proxy/server-state.js';
import { CLIENT_FRAMES } from '../src/proxy/client-protocol.js';

export interface FramerResult {
  scenario: string;
  direction: 'server→client' | 'client→server';
  chunkBytes: number;
  streamBytes: number;
  framesPerPass: number;
  passes: number;
  seconds: number;
  framesPerSec: number;
  mbPerSec: number;
  nsPerFrame: number;
  /** Nanoseconds per read (chunk): the floor when frames are larger than reads. */
  nsPerRead: number;
}

// ---------------------------------------------------------------------------------------------
// Message builders (the "Message Formats" page of the PostgreSQL docs)

class StreamBuilder {
  private parts: Buffer[] = [];
  bytes = 0;
  frames = 0;

  msg(type: string, body: Buffer): void {
    const m = Buffer.allocUnsafe(5 + body.length);
    m[0] = type.charCodeAt(0);
    m.writeInt32BE(4 + body.length, 1);
    body.copy(m, 5);
    this.parts.push(m);
    this.bytes += m.length;
    this.frames++;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const i16 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
};

function rowDescription(cols: readonly string[]): Buffer {
  const fields = cols.map((name, i) => Buffer.concat([cstr(name), i32(16384), i16(i + 1), i32(25), i16(-1), i32(-1), i16(0)]));
  return Buffer.concat([i16(cols.length), ...fields]);
}

function dataRow(values: readonly Buffer[]): Buffer {
  return Buffer.concat([i16(values.length), ...values.flatMap((v) => [i32(v.length), v])]);
}

/** Deterministic pseudo-random numbers (mulberry32), so every run measures the same stream. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ready = Buffer.from('I');

/** pgbench -S replies: one small row per transaction, half simple (T D C Z), half extended (1 2 T D C Z). */
function pgbenchReplies(targetBytes: number): StreamBuilder {
  const s = new StreamBuilder();
  const rand = rng(1);
  const rd = rowDescription(['abalance']);
  while (s.bytes < targetBytes) {
    const extended = rand() < 0.5;
    if (extended) {
      s.msg('1', Buffer.alloc(0));
      s.msg('2', Buffer.alloc(0));
    }
    s.msg('T', rd);
    s.msg('D', dataRow([Buffer.from(String(Math.floor(rand() * 10000) - 5000))]));
    s.msg('C', cstr('SELECT 1'));
    s.msg('Z', ready);
  }
  return s;
}

/** Result sets of 500 rows of 4 columns, 20 B to 2 KB per row, each followed by C and Z. */
function resultSets(targetBytes: number): StreamBuilder {
  const s = new StreamBuilder();
  const rand = rng(2);
  const rd = rowDescription(['aid', 'bid', 'abalance', 'filler']);
  const filler = Buffer.alloc(2048, 'x');
  while (s.bytes < targetBytes) {
    s.msg('T', rd);
    for (let i = 0; i < 500; i++) {
      const size = 20 + Math.floor(rand() * 2000);
      s.msg('D', dataRow([Buffer.from(String(i)), Buffer.from('1'), Buffer.from('0'), filler.subarray(0, size)]));
    }
    s.msg('C', cstr('SELECT 500'));
    s.msg('Z', ready);
  }
  return s;
}

/** Wide rows of 8 KB to 256 KB (bytea, jsonb): most frames span several reads. */
function largeRows(targetBytes: number): StreamBuilder {
  const s = new StreamBuilder();
  const rand = rng(3);
  const rd = rowDescription(['id', 'payload']);
  const payload = Buffer.alloc(256 * 1024, 'y');
  while (s.bytes < targetBytes) {
    s.msg('T', rd);
    for (let i = 0; i < 20; i++) {
      const size = 8192 + Math.floor(rand() * (256 * 1024 - 8192));
      s.msg('D', dataRow([Buffer.from(String(i)), payload.subarray(0, size)]));
    }
    s.msg('C', cstr('SELECT 20'));
    s.msg('Z', ready);
  }
  return s;
}

/** What pgbench -S sends: half simple Query, half Parse/Bind/Describe/Execute/Sync. */
function clientRequests(targetBytes: number): StreamBuilder {
  const s = new StreamBuilder();
  const rand = rng(4);
  const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;';
  const parse = Buffer.concat([cstr(''), cstr(sql), i16(0)]);
  const describe = Buffer.concat([Buffer.from('P'), cstr('')]);
  const execute = Buffer.concat([cstr(''), i32(0)]);
  while (s.bytes < targetBytes) {
    const aid = String(1 + Math.floor(rand() * 1_000_000));
    if (rand() < 0.5) {
      s.msg('Q', cstr(sql.replace('$1', aid)));
    } else {
      const param = Buffer.from(aid);
      s.msg('P', parse);
      s.msg('B', Buffer.concat([cstr(''), cstr(''), i16(0), i16(1), i32(param.length), param, i16(0)]));
      s.msg('D', describe);
      s.msg('E', execute);
      s.msg('S', Buffer.alloc(0));
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Sinks shaped like ServerConn and ClientSession

class ServerSink implements FrameSink {
  txStatus = 0;
  readyCount = 0;
  onHeader(): boolean {
    return true;
  }
  onFrame(type: number, buf: Buffer, start: number): void {
    // ServerConn reads the status byte of ReadyForQuery and applies the release rule.
    if (type === Backend.ReadyForQuery) {
      this.txStatus = buf[start + 5]!;
      this.readyCount++;
    }
  }
  onBadLength(type: number, length: number): void {
    throw new Error(`bad length ${length} for type ${type}`);
  }
}

class ClientSink implements FrameSink {
  outstanding = 0;
  onHeader(): boolean {
    this.outstanding++;
    return true;
  }
  onFrame(): void {}
  onBadLength(type: number, length: number): void {
    throw new Error(`bad length ${length} for type ${type}`);
  }
}

/** Cuts a stream into reads of `size` bytes (subarrays: the socket hands us separate buffers too). */
function chunks(stream: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.subarray(i, Math.min(stream.length, i + size)));
  return out;
}

/** One pass: scan every read and "write" what may be forwarded, as forwardFromServer / write do. */
function pass(scanner: FrameScanner, reads: readonly Buffer[]): number {
  let written = 0;
  for (let i = 0; i < reads.length; i++) {
    const chunk = reads[i]!;
    const end = scanner.scan(chunk);
    const carry = scanner.carry;
    if (carry !== null) written += carry.length;
    const out = end === chunk.length ? chunk : chunk.subarray(0, end);
    written += out.length;
  }
  return written;
}

interface Scenario {
  name: string;
  direction: FramerResult['direction'];
  build(targetBytes: number): StreamBuilder;
  modes: Uint8Array;
  sink(): FrameSink;
  bytes: number;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'pgbench -S replies (tiny frames)', direction: 'server→client', build: pgbenchReplies, modes: SERVER_FRAMES, sink: () => new ServerSink(), bytes: 4 << 20 },
  { name: 'result sets, rows 20 B–2 KB', direction: 'server→client', build: resultSets, modes: SERVER_FRAMES, sink: () => new ServerSink(), bytes: 16 << 20 },
  { name: 'large rows 8–256 KB', direction: 'server→client', build: largeRows, modes: SERVER_FRAMES, sink: () => new ServerSink(), bytes: 32 << 20 },
  { name: 'Q and P/B/D/E/S requests', direction: 'client→server', build: clientRequests, modes: CLIENT_FRAMES, sink: () => new ClientSink(), bytes: 4 << 20 },
];

export interface FramerOptions {
  /** Measured time per scenario (after one warm-up pass). */
  seconds?: number;
  chunkBytes?: number;
}

export function runFramerBench(opts: FramerOptions = {}): FramerResult[] {
  const seconds = opts.seconds ?? 1;
  const chunkBytes = opts.chunkBytes ?? 16 * 1024;
  const results: FramerResult[] = [];
  for (const sc of SCENARIOS) {
    const built = sc.build(sc.bytes);
    const stream = built.build();
    const reads = chunks(stream, chunkBytes);
    const scanner = new FrameScanner(sc.modes, 1 << 30, sc.sink());
    // Warm-up pass, which also checks that every byte is forwarded exactly once.
    const written = pass(scanner, reads);
    if (written !== stream.length || !scanner.atBoundary) {
      throw new Error(`framer bench (${sc.name}): forwarded ${written} of ${stream.length} bytes`);
    }
    let passes = 0;
    const budget = BigInt(Math.round(seconds * 1e9));
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    do {
      pass(scanner, reads);
      passes++;
      elapsed = process.hrtime.bigint() - t0;
    } while (elapsed < budget);
    const secs = Number(elapsed) / 1e9;
    const frames = built.frames * passes;
    results.push({
      scenario: sc.name,
      direction: sc.direction,
      chunkBytes,
      streamBytes: stream.length,
      framesPerPass: built.frames,
      passes,
      seconds: Math.round(secs * 1000) / 1000,
      framesPerSec: Math.round(frames / secs),
      mbPerSec: Math.round((stream.length * passes) / secs / 1e6),
      nsPerFrame: Math.round((Number(elapsed) / frames) * 10) / 10,
      nsPerRead: Math.round((Number(elapsed) / (reads.length * passes)) * 10) / 10,
    });
  }
  return results;
}

export function framerTable(results: readonly FramerResult[]): string {
  const lines = [
    '| scenario | direction | read size | frames/s | MB/s | ns/frame | ns/read |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${r.direction} | ${r.chunkBytes / 1024} KB | ${(r.framesPerSec / 1e6).toFixed(2)} M | ${r.mbPerSec.toLocaleString('en-US')} | ${r.nsPerFrame} | ${r.nsPerRead} |`,
    ),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '1' }, chunk: { type: 'string', default: '16384' }, json: { type: 'boolean', default: false } },
  });
  const results = runFramerBench({ seconds: Number(values.seconds), chunkBytes: Number(values.chunk) });
  process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : `${framerTable(results)}\n`);
}
