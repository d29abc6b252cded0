// Requests a client sent while no server was linked, held until one is: the read that started a
// transaction (a view of the shared read buffer, kept only while that read's callback runs) and
// copies of everything else, written to the server in one go and in order. With prepared-statement
// tracking, frames that name a statement are held as steps, rendered for the server that links.

import type { ServerConn } from './server-conn.js';
import type { FrameStep } from './client-statements.js';

const NONE: readonly Buffer[] = [];

/** Renders a held step for the linked server, appending what goes out in its place. */
export type RenderStep = (step: FrameStep, out: Buffer[]) => void;

/**
 * Bytes held before the client's socket stops being read. A request or a few pipelined ones fit,
 * so the common wait costs no pause/resume; a client streaming more than this (a big COPY, a
 * flood of pipelined queries) is held back by TCP instead of by our memory.
 */
export const MAX_HELD_BYTES = 64 * 1024;

export class HeldRequests {
  /** pgrelay's own copies (and statement steps), in arrival order. */
  private readonly copies: (Buffer | FrameStep)[] = [];
  /** Steps among the copies or the view pieces: the flush renders them. */
  private steps = 0;
  /** A read with statement frames, held as views (see holdPiecesView). */
  private viewPieces: readonly (Buffer | FrameStep)[] | null = null;
  /** Scratch for a flush's pieces (empty between flushes: writePieces keeps no reference). */
  private readonly out: Buffer[] = [];
  private copiedBytes = 0;
  /** The current read: carry, then chunk[0, end). A view, valid only during that read. */
  private view: Buffer | null = null;
  private viewEnd = 0;
  private viewCarry: Buffer | null = null;

  get isEmpty(): boolean {
    return this.copies.length === 0 && this.view === null && this.viewPieces === null;
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

  /**
   * Holds a read cut around frames that name a statement, without copying it: views of the read
   * and steps, in order. copyView() must run before the read returns.
   */
  holdPiecesView(pieces: readonly (Buffer | FrameStep)[]): void {
    // The caller's array itself, until copyView(): no copy when a server links within the read.
    this.viewPieces = pieces;
    for (const p of pieces) if (!Buffer.isBuffer(p)) this.steps++;
  }

  /** Holds pieces as holdPiecesView() does, copied now. */
  holdPieces(pieces: readonly (Buffer | FrameStep)[]): void {
    this.holdPiecesView(pieces);
    this.copyPieces();
  }

  private copyPieces(): void {
    const pieces = this.viewPieces;
    if (pieces === null) return;
    this.viewPieces = null;
    for (const p of pieces) {
      if (Buffer.isBuffer(p)) {
        if (p.length > 0) this.keep(Buffer.from(p));
      } else {
        p.keep();
        this.copies.push(p);
      }
    }
  }

  /** The read is ending and no server took the view: keep a copy. */
  copyView(): void {
    this.copyPieces();
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

  /**
   * Writes everything held to `server` and forgets it; false when the server's socket is full.
   * `render` turns held steps into what goes to this server; `before` goes out first.
   */
  flushTo(server: ServerConn, render?: RenderStep, before: readonly Buffer[] = NONE): boolean {
    if (this.steps > 0 || before.length > 0) return this.flushPieces(server, render!, before);
    const copies = this.copies as Buffer[];
    let ok = true;
    if (copies.length > 0) {
      ok = copies.length === 1 ? server.write(null, copies[0]!, copies[0]!.length) : server.writeBuffers(copies);
      // The array is reused: one per client instead of one per transaction. Only emptied when
      // it holds something: a store to an array's length goes through the runtime even when it
      // changes nothing (about 450 instructions, once per transaction).
      copies.length = 0;
      this.copiedBytes = 0;
    }
    if (this.view !== null) {
      ok = server.write(this.viewCarry, this.view, this.viewEnd) && ok;
      this.view = null;
      this.viewCarry = null;
    }
    return ok;
  }

  /** The held steps and bytes rendered for `server`, written in one go. */
  private flushPieces(server: ServerConn, render: RenderStep, before: readonly Buffer[]): boolean {
    const out = this.out;
    for (const b of before) out.push(b);
    for (const p of this.copies) {
      if (!Buffer.isBuffer(p)) render(p, out);
      else if (p.length > 0) out.push(p);
    }
    if (this.view !== null) {
      if (this.viewCarry !== null) out.push(this.viewCarry);
      if (this.viewEnd > 0) out.push(this.view.subarray(0, this.viewEnd));
    }
    if (this.viewPieces !== null) {
      for (const p of this.viewPieces) {
        if (!Buffer.isBuffer(p)) render(p, out);
        else if (p.length > 0) out.push(p);
      }
    }
    this.clear();
    const ok = out.length === 0 || server.writePieces(out);
    out.length = 0;
    return ok;
  }

  clear(): void {
    this.steps = 0;
    this.viewPieces = null;
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
