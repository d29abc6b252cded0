// Requests a client sent while no server was linked, held until one is: the read that started a
// transaction (a view of the shared read buffer, kept only while that read's callback runs) and
// copies of everything else, written to the server in one go and in order.

import type { ServerConn } from './server-conn.js';

/**
 * Bytes held before the client's socket stops being read. A request or a few pipelined ones fit,
 * so the common wait costs no pause/resume; a client streaming more than this (a big COPY, a
 * flood of pipelined queries) is held back by TCP instead of by our memory.
 */
export const MAX_HELD_BYTES = 64 * 1024;

export class HeldRequests {
  /** pgrelay's own copies, in arrival order. */
  private readonly copies: Buffer[] = [];
  private copiedBytes = 0;
  /** The current read: carry, then chunk[0, end). A view, valid only during that read. */
  private view: Buffer | null = null;
  private viewEnd = 0;
  private viewCarry: Buffer | null = null;

  get isEmpty(): boolean {
    return this.copies.length === 0 && this.view === null;
  }

  /** More held than a waiting client may send (see MAX_HELD_BYTES). */
  get overLimit(): boolean {
    return this.copiedBytes > MAX_HELD_BYTES;
  }

  /**
   * Holds the current read without copying it, for a server that may link before the read ends
   * (an idle server in the pool: the usual case). copyView() must run before the read returns.
   */
  holdView(carry: Buffer | null, chunk: Buffer, end: number): void {
    this.view = chunk;
    this.viewEnd = end;
    this.viewCarry = carry;
  }

  /** The read is ending and no server took the view: keep a copy. */
  copyView(): void {
    const chunk = this.view;
    if (chunk === null) return;
    const carry = this.viewCarry;
    const end = this.viewEnd;
    this.view = null;
    this.viewCarry = null;
    this.hold(carry, chunk, end);
  }

  /** Holds carry and chunk[0, end) as copies. */
  hold(carry: Buffer | null, chunk: Buffer, end: number): void {
    if (carry !== null) this.keep(carry);
    if (end > 0) this.keep(Buffer.from(chunk.subarray(0, end)));
  }

  /** Writes everything held to `server` and forgets it; false when the server's socket is full. */
  flushTo(server: ServerConn): boolean {
    const copies = this.copies;
    let ok = true;
    if (copies.length === 1) ok = server.write(null, copies[0]!, copies[0]!.length);
    else if (copies.length > 1) ok = server.writeBuffers(copies);
    // The array is reused: one per client instead of one per transaction.
    copies.length = 0;
    this.copiedBytes = 0;
    if (this.view !== null) {
      ok = server.write(this.viewCarry, this.view, this.viewEnd);
      this.view = null;
      this.viewCarry = null;
    }
    return ok;
  }

  clear(): void {
    this.copies.length = 0;
    this.copiedBytes = 0;
    this.view = null;
    this.viewCarry = null;
  }

  private keep(b: Buffer): void {
    this.copies.push(b);
    this.copiedBytes += b.length;
  }
}
