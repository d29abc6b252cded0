// Microbenchmark of what prepared-statement tracking adds to a transaction that uses only the
// unnamed statement: the client's frames go through ClientProtocol and the server's replies
// through ServerConn (link, scan, release), with and without tracking, no sockets written.
// Reports ns per transaction for -S (simple Query) and -M extended -S.
// Standalone: npx tsx bench/tracking.ts [--transactions N]

import net from 'node:net';
import { parseArgs } from 'node:util';
import { ServerConn } from '../src/proxy/server-conn.js';
import type { ServerClient } from '../src/proxy/server-client.js';
import { ClientProtocol } from '../src/proxy/client-protocol.js';
import { ReadSlot } from '../src/proxy/read-slot.js';
import { serialize } from '../src/protocol/frontend-messages.js';

const frame = (type: string, body: Buffer = Buffer.alloc(0)): Buffer => {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
};
const rowDescription = frame('T', Buffer.concat([Buffer.from([0, 1]), Buffer.from('abalance\0'), Buffer.alloc(18)]));
const tail = [rowDescription, frame('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x30])), frame('C', Buffer.from('SELECT 1\0')), frame('Z', Buffer.from('I'))];
const SQL = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;';

const SCENARIOS = {
  '-S (simple)': { request: serialize.query(SQL.replace('$1', '12345')), reply: Buffer.concat(tail) },
  '-M extended -S': {
    request: Buffer.concat([serialize.parse({ text: SQL }), serialize.bind({ values: ['12345'] }), serialize.describe({ type: 'P' }), serialize.execute(), serialize.sync()]),
    reply: Buffer.concat([frame('1'), frame('2'), ...tail]),
  },
};

const events = { onTerminate(): void {}, onQuery(): void {}, onBadLength(): void {}, onRun(): void {}, onStatement(): void {} };
const owner = { release(): void {}, discard(): void {}, onClosed(): void {}, cleanupTimeoutMs: (): number => 0 };

/** ns per transaction: link, the client's request scanned, the server's reply scanned (release included). */
function measure(request: Buffer, reply: Buffer, tracking: boolean, n: number): number {
  const protocol = new ClientProtocol(1 << 30, events);
  if (tracking) protocol.enableTracking();
  const client = { protocol, id: 1, transactionPooling: true, forwardFromServer: () => true, sendToClient: () => true, setParam() {}, onReleased() {}, onServerLost() {}, resumeReading() {} } as ServerClient;
  const reader = new ReadSlot();
  const server = new ServerConn({ host: '127.0.0.1', port: 1 }, new net.Socket(), { params: new Map(), processId: 1, secretKey: 1, txStatus: 0x49, reader } as never, 1 << 30, owner as never);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    server.link(client);
    protocol.scanner.scan(request);
    reader.sink(reply, reply.length);
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

const { values } = parseArgs({ options: { transactions: { type: 'string', default: '300000' } } });
const n = Number(values.transactions);
console.log('| transaction | without tracking ns | with tracking ns | added ns |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, s] of Object.entries(SCENARIOS)) {
  // Three passes each; the best is the one least disturbed by the rest of the machine.
  let plain = Infinity;
  let tracked = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    plain = Math.min(plain, measure(s.request, s.reply, false, n));
    tracked = Math.min(tracked, measure(s.request, s.reply, true, n));
  }
  console.log(`| ${name} | ${plain.toFixed(0)} | ${tracked.toFixed(0)} | ${(tracked - plain).toFixed(0)} |`);
}
