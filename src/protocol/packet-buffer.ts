// Accumulates bytes during login, where messages are few and small, and hands out whole packets:
// the untyped first packet (int32 length + body) or typed messages. Lengths are checked before
// anything is allocated.

import { ProtocolError } from './readers.js';

export class PacketBuffer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  get length(): number {
    return this.buf.length;
  }

  /** The next untyped packet (StartupMessage, SSLRequest, CancelRequest ...), or null if incomplete. */
  takeUntyped(maxLength: number): Buffer | null {
    if (this.buf.length < 4) return null;
    const len = this.buf.readInt32BE(0);
    if (len < 8 || len > maxLength) throw new ProtocolError(`invalid startup packet length ${len}`);
    return this.take(len);
  }

  /** The next typed message (type byte + int32 length + body), or null if incomplete. */
  takeTyped(maxLength: number): Buffer | null {
    if (this.buf.length < 5) return null;
    const len = this.buf.readInt32BE(1);
    if (len < 4 || len > maxLength) throw new ProtocolError(`invalid message length ${len} for message type ${String.fromCharCode(this.buf[0]!)}`);
    return this.take(len + 1);
  }

  /** Whatever arrived past the last packet taken (a client may pipeline its first query). */
  drain(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private take(n: number): Buffer | null {
    if (this.buf.length < n) return null;
    const packet = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return packet;
  }
}
