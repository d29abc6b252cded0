// Reads a server socket into one reused buffer (net's `onread` option) instead of the stream
// machinery, which allocates a 64 KB buffer per read, shrinks it, and goes through Readable.push,
// 'data' events and nextTicks. A chunk is a view of the slot's buffer: valid until the next read
// unless a write still holds it, in which case the owner calls retain() and reading moves on to a
// fresh buffer.

/** Bytes per server connection: PostgreSQL flushes at most 8 KB at a time, so reads rarely fill it. */
export const READ_SLOT_SIZE = 16 * 1024;

export class ReadSlot {
  private buffer = Buffer.allocUnsafeSlow(READ_SLOT_SIZE);

  /** Where each read goes; replaced when the socket changes hands (login, then the connection). */
  sink: (chunk: Buffer) => void = () => {};

  /** The `onread` option for net.connect(). */
  readonly onread = {
    buffer: (): Buffer => this.buffer,
    // Returning true keeps reading; backpressure goes through socket.pause() as with 'data'.
    callback: (nread: number, buf: Uint8Array): boolean => {
      this.sink((buf as Buffer).subarray(0, nread));
      return true;
    },
  };

  /**
   * The last chunk is still referenced by a queued write (the peer's socket was full): the next
   * read must not overwrite it.
   */
  retain(): void {
    this.buffer = Buffer.allocUnsafeSlow(READ_SLOT_SIZE);
  }
}
