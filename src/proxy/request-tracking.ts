// The client side of prepared-statement tracking in a session: a read cut around the frames that
// name a statement (views of the read and FrameSteps, in order) is rendered for the linked
// server, and pgrelay's own answers at the head of the reply queue go out once their turn comes.

import { TxStatus } from '../protocol/message-types.js';
import type { FrameStep, PreparedCounters } from './client-statements.js';
import type { ClientProtocol } from './client-protocol.js';
import type { ReplyQueue } from './reply-queue.js';
import type { ServerConn } from './server-conn.js';

/** A read as the tracking cut it: views of the read (or a withheld header) and the frames naming a statement. */
export type Spliced = (Buffer | FrameStep)[];

/**
 * Scratch for the pieces of one read written to its linked server: filled and emptied within the
 * read (writePieces keeps no reference), so one serves every session, like socket-io's buffer.
 */
const PIECES: Buffer[] = [];

/** A held or current frame naming a statement, rendered for the linked server. */
export function renderStep(server: ServerConn, protocol: ClientProtocol, counters: PreparedCounters, step: FrameStep, out: Buffer[]): void {
  const statements = server.statements;
  if (statements === null) throw new Error('tracking client linked to a server without a statement list');
  const settled = protocol.txStatus !== TxStatus.Failed && protocol.replies!.onlyEvictionsBefore(step.seq);
  step.render(statements, counters, out, settled);
}

/** Writes a spliced read to the linked server, each step rendered for it, and empties `box`; false when the server's socket is full. */
export function writeSpliced(box: Spliced, server: ServerConn, protocol: ClientProtocol, counters: PreparedCounters): boolean {
  const out = PIECES;
  for (const p of box) {
    if (Buffer.isBuffer(p)) out.push(p);
    else renderStep(server, protocol, counters, p, out);
  }
  box.length = 0;
  const ok = out.length === 0 || server.writePieces(out);
  out.length = 0;
  return ok;
}

/** False when the read holds only Closes of names, which pgrelay answers without a server. */
export function needsServer(box: Spliced): boolean {
  return box.some((p) => Buffer.isBuffer(p) || p.needsServer);
}

/**
 * pgrelay's own answers (ParseComplete, CloseComplete) at the head of the reply queue: every
 * reply before them has been sent, so they go now.
 */
export function drainFakes(q: ReplyQueue | null, client: { sendToClient(buf: Buffer): boolean }): void {
  // Checked on every read of a tracking client: no call unless an answer of pgrelay's is first.
  if (q === null || q.headStep?.fake == null) return;
  q.answerDue((answer) => client.sendToClient(answer));
}
