// ClientProtocol fed one pipelined client stream split at every byte offset and byte by byte:
// requests counted per message type (Query, Sync and FunctionCall are answered by a
// ReadyForQuery; Parse/Bind/Describe/Execute/Close/Flush open a pipeline until Sync), Terminate
// never forwarded, and the same position whatever the reads.

import t from 'tap';
import { ClientProtocol, type ProtocolEvents } from '../../src/proxy/client-protocol.js';
import { TxStatus } from '../../src/protocol/message-types.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { frame as msg } from '../harness/frames.js';

class Events implements ProtocolEvents {
  terminates = 0;
  queries = 0;
  bad: string[] = [];
  onTerminate(): void {
    this.terminates++;
  }
  onQuery(): void {
    this.queries++;
  }
  onBadLength(type: number, length: number): void {
    this.bad.push(`${String.fromCharCode(type)}:${length}`);
  }
}

/** The pipeline, message by message, with the position expected once each has been read. */
const steps: { what: string; bytes: Buffer; outstanding: number; unsynced: boolean }[] = [
  { what: 'Query', bytes: serialize.query('select 1'), outstanding: 1, unsynced: false },
  { what: 'Parse', bytes: serialize.parse({ text: 'select $1', name: 's1' }), outstanding: 1, unsynced: true },
  { what: 'Bind', bytes: serialize.bind({ statement: 's1', values: ['x'] }), outstanding: 1, unsynced: true },
  { what: 'Describe', bytes: serialize.describe({ type: 'P' }), outstanding: 1, unsynced: true },
  { what: 'Execute', bytes: serialize.execute(), outstanding: 1, unsynced: true },
  { what: 'Sync', bytes: serialize.sync(), outstanding: 2, unsynced: false },
  { what: 'FunctionCall', bytes: msg('F', Buffer.alloc(12)), outstanding: 3, unsynced: false },
  { what: 'Flush alone', bytes: serialize.flush(), outstanding: 3, unsynced: true },
  { what: 'Sync', bytes: serialize.sync(), outstanding: 4, unsynced: false },
  { what: 'Close', bytes: serialize.close({ type: 'S', name: 's1' }), outstanding: 4, unsynced: true },
  { what: 'CopyData (blind)', bytes: msg('d', 'copy row\n'), outstanding: 4, unsynced: true },
  { what: 'Sync', bytes: serialize.sync(), outstanding: 5, unsynced: false },
  { what: 'Query, large', bytes: serialize.query(`select '${'x'.repeat(300)}'`), outstanding: 6, unsynced: false },
];
const forwarded = Buffer.concat(steps.map((s) => s.bytes));
const terminate = serialize.end();
const stream = Buffer.concat([forwarded, terminate]);
// Queries as PgBouncer counts them: each Query, and each Sync that closes extended messages.
const QUERIES = 5;

/** Feeds chunks as reads; returns what would be forwarded (carry, then chunk[0, end)). */
function feed(p: ClientProtocol, chunks: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const c of chunks) {
    const end = p.scanner.scan(c);
    if (p.scanner.carry !== null) out.push(p.scanner.carry);
    out.push(c.subarray(0, end));
    if (p.scanner.stopped) break;
  }
  return Buffer.concat(out);
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('the whole pipeline in one read', async (t) => {
  const ev = new Events();
  const p = new ClientProtocol(1 << 20, ev);
  t.same(feed(p, [stream]), forwarded, 'everything but Terminate is forwarded');
  t.equal(p.outstanding, 6);
  t.notOk(p.unsynced);
  t.ok(p.terminated);
  t.ok(p.atBoundary);
  t.equal(ev.queries, QUERIES);
  t.equal(ev.terminates, 0, 'onTerminate runs after the read, not inside it');
  await settle();
  t.equal(ev.terminates, 1);
});

t.test('split into two reads at every offset: same bytes forwarded, same position', async (t) => {
  let failures = 0;
  for (let i = 0; i <= stream.length; i++) {
    const ev = new Events();
    const p = new ClientProtocol(1 << 20, ev);
    const out = feed(p, [stream.subarray(0, i), stream.subarray(i)]);
    await settle();
    const ok = out.equals(forwarded) && p.outstanding === 6 && !p.unsynced && p.terminated && p.atBoundary && ev.queries === QUERIES && ev.terminates === 1 && ev.bad.length === 0;
    if (!ok) {
      failures++;
      if (failures < 5) t.fail(`split at ${i}: outstanding=${p.outstanding} unsynced=${p.unsynced} terminated=${p.terminated} queries=${ev.queries}`);
    }
  }
  t.equal(failures, 0, `all ${stream.length + 1} split points`);
});

t.test('byte by byte: the position after each message, and no boundary inside one', async (t) => {
  const ev = new Events();
  const p = new ClientProtocol(1 << 20, ev);
  const out: Buffer[] = [];
  let wrong = 0;
  for (const s of steps) {
    for (let i = 0; i < s.bytes.length; i++) {
      out.push(feed(p, [s.bytes.subarray(i, i + 1)]));
      const last = i === s.bytes.length - 1;
      if (p.atBoundary !== last) {
        wrong++;
        t.fail(`${s.what}, byte ${i}: atBoundary=${p.atBoundary}`);
      }
    }
    t.same({ outstanding: p.outstanding, unsynced: p.unsynced }, { outstanding: s.outstanding, unsynced: s.unsynced }, `after ${s.what}`);
  }
  t.equal(wrong, 0);
  t.same(Buffer.concat(out), forwarded);
  t.notOk(p.terminated);
  out.length = 0;
  for (const b of terminate) out.push(feed(p, [Buffer.from([b])]));
  t.equal(Buffer.concat(out).length, 0, 'not one byte of Terminate is forwarded');
  t.ok(p.terminated);
});

t.test('wholeRequestsPending and answeredAll', async (t) => {
  const p = new ClientProtocol(1 << 20, new Events());
  t.notOk(p.wholeRequestsPending, 'nothing sent');
  const q = serialize.query('select 1');
  feed(p, [q.subarray(0, 6)]);
  t.notOk(p.wholeRequestsPending, 'half a Query');
  feed(p, [q.subarray(6)]);
  t.ok(p.wholeRequestsPending, 'a whole Query');
  feed(p, [serialize.parse({ text: 'select 2' })]);
  t.notOk(p.wholeRequestsPending, 'a Parse waiting for its Sync');
  feed(p, [serialize.sync()]);
  t.ok(p.wholeRequestsPending);
  t.equal(p.outstanding, 2);
  p.txStatus = TxStatus.InTransaction;
  p.answeredAll();
  t.equal(p.outstanding, 0);
  t.equal(p.txStatus, TxStatus.Idle, "pgrelay's own answers end with 'I'");
  t.notOk(p.wholeRequestsPending);
});

t.test('a bad length stops the scan and is reported', async (t) => {
  const short = new Events();
  const p = new ClientProtocol(1 << 20, short);
  const bad = Buffer.from([0x51, 0, 0, 0, 3]);
  t.equal(feed(p, [Buffer.concat([serialize.sync(), bad, serialize.sync()])]).length, 5, 'only the Sync before it');
  t.ok(p.scanner.stopped);
  t.same(short.bad, ['Q:3']);
  t.equal(p.outstanding, 1, 'nothing after the bad frame counts');

  const big = new Events();
  const q = new ClientProtocol(100, big);
  feed(q, [serialize.query('x'.repeat(200))]);
  t.same(big.bad, [`Q:${4 + 201}`], 'over max_packet_size');
  t.equal(q.outstanding, 0);
});
