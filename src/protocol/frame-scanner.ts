// Walks a stream of protocol frames (type byte + int32 length) chunk by chunk without copying:
// it reads only headers, hands complete frames to the sink for the few types that drive a
// decision, and tells the caller how much of each chunk may be forwarded as it is.

/** What the scanner does with a frame of a given type. */
export const FrameMode = {
  /** Forward blind: only the header is read. */
  Pass: 0,
  /** Tell the sink the type at the header (counting, or stopping before the frame). */
  Header: 1,
  /** Hand the sink the complete frame (assembled in a copy only if it spans reads). */
  Full: 2,
} as const;
export type FrameMode = (typeof FrameMode)[keyof typeof FrameMode];

export interface FrameSink {
  /** A Header-mode frame begins. Return false to stop before it: it is not forwarded. */
  onHeader(type: number, length: number): boolean;
  /** A complete Full-mode frame: buf[start] is the type byte, end is exclusive. */
  onFrame(type: number, buf: Buffer, start: number, end: number): void;
  /** The length field is below 4 or above the configured maximum; scanning stops. */
  onBadLength(type: number, length: number): void;
}

/** Builds the per-type mode table once at module load of each user. */
export function frameModes(header: readonly number[], full: readonly number[]): Uint8Array {
  const modes = new Uint8Array(256);
  for (const t of header) modes[t] = FrameMode.Header;
  for (const t of full) modes[t] = FrameMode.Full;
  return modes;
}

const HEADER = 5;

export class FrameScanner {
  /** Header bytes withheld from the previous chunk(s); write them before this chunk's bytes. */
  carry: Buffer | null = null;
  /** Set once the sink stopped the stream or a length was invalid. */
  stopped = false;

  /** A header split across reads; allocated the first time one is (most streams never split one). */
  private hdr: Buffer | null = null;
  private hdrLen = 0;
  /** Bytes of a frame still to arrive that need no inspection. */
  private skip = 0;
  /** A Full-mode frame assembled across reads. */
  private stash: Buffer | null = null;
  private stashLen = 0;

  constructor(
    private readonly modes: Uint8Array,
    private readonly maxLength: number,
    private readonly sink: FrameSink,
  ) {}

  /** True when the stream is between frames (nothing partial is pending). */
  get atBoundary(): boolean {
    return this.skip === 0 && this.stash === null && this.hdrLen === 0;
  }

  /**
   * Scans one chunk. Returns how many leading bytes of `chunk` may be forwarded now; `carry`
   * (when set) must be written before them. Bytes past the return value are either a withheld
   * partial header (kept here) or, when `stopped`, the frame the sink refused and what follows.
   */
  scan(chunk: Buffer): number {
    this.carry = null;
    const len = chunk.length;
    let pos = 0;
    if (this.skip > 0) {
      if (this.skip >= len) {
        this.skip -= len;
        return len;
      }
      pos = this.skip;
      this.skip = 0;
    } else if (this.stash !== null) {
      const need = this.stash.length - this.stashLen;
      if (need > len) {
        chunk.copy(this.stash, this.stashLen);
        this.stashLen += len;
        return len;
      }
      chunk.copy(this.stash, this.stashLen, 0, need);
      const frame = this.stash;
      this.stash = null;
      this.stashLen = 0;
      this.sink.onFrame(frame[0]!, frame, 0, frame.length);
      pos = need;
    } else if (this.hdrLen > 0) {
      // A header split across reads: complete it, then treat the frame as starting before
      // this chunk (at -withheld).
      const withheld = this.hdrLen;
      const hdr = this.hdr!;
      const need = HEADER - withheld;
      if (need > len) {
        chunk.copy(hdr, withheld);
        this.hdrLen += len;
        return 0;
      }
      chunk.copy(hdr, withheld, 0, need);
      this.hdrLen = 0;
      this.carry = Buffer.from(hdr.subarray(0, withheld));
      pos = this.frame(hdr[0]!, hdr.readInt32BE(1), chunk, -withheld);
      if (this.stopped) {
        this.carry = null;
        return 0;
      }
    }
    while (pos < len) {
      if (len - pos < HEADER) {
        // Withhold a partial header: whether it may be forwarded depends on its type.
        chunk.copy((this.hdr ??= Buffer.allocUnsafe(HEADER)), 0, pos, len);
        this.hdrLen = len - pos;
        return pos;
      }
      const next = this.frame(chunk[pos]!, chunk.readInt32BE(pos + 1), chunk, pos);
      if (this.stopped) return pos;
      pos = next;
    }
    return len;
  }

  /**
   * Handles one frame whose first byte is at `start` (negative when its header began in an
   * earlier chunk). Returns the position just past it, or len when it runs past the chunk.
   */
  private frame(type: number, length: number, chunk: Buffer, start: number): number {
    if (length < 4 || length > this.maxLength) {
      this.stopped = true;
      this.sink.onBadLength(type, length);
      return start;
    }
    const end = start + 1 + length;
    const len = chunk.length;
    const mode = this.modes[type];
    if (mode === FrameMode.Full) {
      if (start >= 0 && end <= len) {
        this.sink.onFrame(type, chunk, start, end);
        return end;
      }
      const frame = Buffer.allocUnsafe(1 + length);
      let filled: number;
      if (start < 0) {
        this.hdr!.copy(frame, 0, 0, HEADER);
        filled = HEADER + chunk.copy(frame, HEADER, HEADER + start, Math.min(end, len));
      } else {
        filled = chunk.copy(frame, 0, start, len);
      }
      if (end <= len) {
        this.sink.onFrame(type, frame, 0, frame.length);
        return end;
      }
      this.stash = frame;
      this.stashLen = filled;
      return len;
    }
    if (mode === FrameMode.Header && !this.sink.onHeader(type, length)) {
      this.stopped = true;
      return start;
    }
    if (end <= len) return end;
    this.skip = end - len;
    return len;
  }
}
