// Accumulates bytes during login and hands out whole packets: the untyped first packet (int32
// length + body) or typed messages. Lengths are checked before anything is allocated. Chunks are
// kept as a list and joined only for a packet that spans them, so appends cost O(n) overall.

import { ProtocolError } from './readers.js';

export class PacketBuffer {
  private chunks: Buffer[] = [];
  /** Index of the first chunk with unread bytes, and how many of its bytes were read. */
  private first = 0;
  private offset = 0;
  private total = 0;

  /** Keeps `chunk` as is (no copy): the caller hands over a buffer nobody else writes to. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  get length(): number {
    return this.total;
  }

  /** The next untyped packet (StartupMessage, SSLRequest, CancelRequest ...), or null if incomplete. */
  takeUntyped(maxLength: number): Buffer | null {
    if (this.total < 4) return null;
    const len = this.int32At(0);
    if (len < 8 || len > maxLength) throw new ProtocolError(`invalid startup packet length ${len}`);
    return this.take(len);
  }

  /** The next typed message (type byte + int32 length + body), or null if incomplete. */
  takeTyped(maxLength: number): Buffer | null {
    if (this.total < 5) return null;
    const len = this.int32At(1);
    if (len < 4 || len > maxLength) throw new ProtocolError(`invalid message length ${len} for message type ${String.fromCharCode(this.byteAt(0))}`);
    return this.take(len + 1);
  }

  /** Whatever arrived past the last packet taken (a client may pipeline its first query). */
  drain(): Buffer {
    const rest = this.total === 0 ? Buffer.alloc(0) : this.take(this.total)!;
    this.chunks = [];
    this.first = 0;
    this.offset = 0;
    return rest;
  }

  /** The unread byte at `pos` (pos < total); headers are at most 5 bytes, so this walks few chunks. */
  private byteAt(pos: number): number {
    let i = this.first;
    let at = this.offset + pos;
    while (at >= this.chunks[i]!.length) {
      at -= this.chunks[i]!.length;
      i++;
    }
    return this.chunks[i]![at]!;
  }

  /** A big-endian signed int32 at unread position `pos`, possibly split across chunks. */
  private int32At(pos: number): number {
    const head = this.chunks[this.first]!;
    if (this.offset + pos + 4 <= head.length) return head.readInt32BE(this.offset + pos);
    return ((this.byteAt(pos) << 24) | (this.byteAt(pos + 1) << 16) | (this.byteAt(pos + 2) << 8) | this.byteAt(pos + 3)) | 0;
  }

  /** The next `n` unread bytes: a view when one chunk holds them, else one copy of exactly n bytes. */
  private take(n: number): Buffer | null {
    if (this.total < n) return null;
    const head = this.chunks[this.first]!;
    let packet: Buffer;
    if (head.length - this.offset >= n) {
      packet = head.subarray(this.offset, this.offset + n);
      this.advance(n);
    } else {
      packet = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const chunk = this.chunks[this.first]!;
        const step = Math.min(chunk.length - this.offset, n - copied);
        chunk.copy(packet, copied, this.offset, this.offset + step);
        copied += step;
        this.advance(step);
      }
    }
    return packet;
  }

  /** Marks `n` bytes read (never more than the current chunk holds). */
  private advance(n: number): void {
    this.total -= n;
    this.offset += n;
    if (this.offset < this.chunks[this.first]!.length) return;
    this.first++;
    this.offset = 0;
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 64) {
      // Drop the read chunks now and then, not per packet: amortised O(1).
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
