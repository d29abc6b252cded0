// Walks a stream of protocol frames (type byte + int32 length) chunk by chunk without copying:
// it reads only headers, hands complete frames to the sink for the few types that drive a
// decision, and tells the caller which part of each chunk may be forwarded as it is. Frames the
// sink must rewrite (Decide mode, verdict Take) are cut out of the stream and handed over whole.

/** What the scanner does with a frame of a given type. */
export const FrameMode = {
  /** Forward blind: only the header is read. */
  Pass: 0,
  /** Tell the sink the type at the header (counting, or stopping before the frame). */
  Header: 1,
  /** Hand the sink the complete frame (assembled in a copy only if it spans reads). */
  Full: 2,
  /** Show the sink the frame's first bytes (up to `peek`) and let it choose a Verdict. */
  Decide: 3,
} as const;
export type FrameMode = (typeof FrameMode)[keyof typeof FrameMode];

/** What the sink chooses for a Decide-mode frame. */
export const Verdict = {
  /** Forward blind, as a Pass frame. */
  Forward: 0,
  /** Forward, and hand the complete frame to onFrame, as a Full frame. */
  Observe: 1,
  /**
   * Cut the frame out of the stream: onRun() gets the bytes before it, onTaken() the whole frame
   * (a copy only if it spans reads), and the sink writes whatever stands in its place.
   */
  Take: 2,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface FrameSink {
  /** A Header-mode frame begins. Return false to stop before it: it is not forwarded. */
  onHeader(type: number, length: number): boolean;
  /** A complete Full-mode (or observed) frame: buf[start] is the type byte, end is exclusive. */
  onFrame(type: number, buf: Buffer, start: number, end: number): void;
  /** The length field is below 4 or above the configured maximum; scanning stops. */
  onBadLength(type: number, length: number): void;
}

/** A sink for scanners with Decide-mode frames. */
export interface SplicingSink extends FrameSink {
  /** A Decide-mode frame begins: buf[start, start + avail) are its first min(1 + length, peek) bytes. */
  onDecide(type: number, length: number, buf: Buffer, start: number, avail: number): Verdict;
  /** Bytes to write before a taken frame: `carry` when not null, then chunk[from, to). */
  onRun(carry: Buffer | null, chunk: Buffer, from: number, to: number): void;
  /** A taken frame, complete: buf[start] is its type byte. A view of the read when it fits in it. */
  onTaken(type: number, buf: Buffer, start: number, end: number): void;
}

/** Builds the per-type mode table once at module load of each user. */
export function frameModes(header: readonly number[], full: readonly number[], decide: readonly number[] = []): Uint8Array {
  const modes = new Uint8Array(256);
  for (const t of header) modes[t] = FrameMode.Header;
  for (const t of full) modes[t] = FrameMode.Full;
  for (const t of decide) modes[t] = FrameMode.Decide;
  return modes;
}

const HEADER = 5;

/**
 * The big-endian int32 at buf[i, i + 4) (the caller has checked the bytes are there), read byte by
 * byte: Buffer's readInt32BE is a method looked up on every call, and in the scanner's loop that
 * lookup did not get optimized; element reads on the Uint8Array do.
 */
function int32At(buf: Uint8Array, i: number): number {
  return (buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!;
}

export class FrameScanner {
  /** Header bytes withheld from the previous chunk(s); write them before this chunk's bytes. */
  carry: Buffer | null = null;
  /** Where this chunk's forwardable bytes start (past the last taken frame; 0 when none). */
  from = 0;
  /** Set once the sink stopped the stream or a length was invalid. */
  stopped = false;
  /** The end of the chunk being scanned: its bytes are chunk[0, len), whatever the buffer's size. */
  private len = 0;

  /**
   * The start of a frame split across reads (its header, or a Decide frame's first bytes);
   * allocated the first time one is (most streams never split one).
   */
  private head: Buffer | null = null;
  private headLen = 0;
  /** Bytes of a frame still to arrive that need no inspection. */
  private skip = 0;
  /** A Full-mode or taken frame assembled across reads. */
  private stash: Buffer | null = null;
  private stashLen = 0;
  /** The stash is a taken frame: its bytes are not forwarded. */
  private stashTaken = false;
  private readonly peek: number;

  constructor(
    private modes: Uint8Array,
    private readonly maxLength: number,
    private readonly sink: FrameSink,
    /** How many leading bytes of a Decide-mode frame onDecide() sees (at least the header). */
    peek = HEADER,
  ) {
    this.peek = Math.max(HEADER, peek);
  }

  /** True when the stream is between frames (nothing partial is pending). */
  get atBoundary(): boolean {
    return this.skip === 0 && this.stash === null && this.headLen === 0;
  }

  /** Scans the frames that follow with another mode table (the frame in progress keeps its mode). */
  setModes(modes: Uint8Array): void {
    this.modes = modes;
  }

  /**
   * Scans one chunk, chunk[0, len): a read into a shared buffer passes the buffer and the read's
   * length, which saves a view per read. Returns where this chunk's forwardable bytes end: write
   * `carry` (when set), then chunk[from, returned). Bytes past it are either a withheld partial
   * frame start (kept here) or, when `stopped`, the frame the sink refused and what follows.
   */
  scan(chunk: Buffer, len = chunk.length): number {
    this.carry = null;
    this.from = 0;
    this.len = len;
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
        chunk.copy(this.stash, this.stashLen, 0, len);
        this.stashLen += len;
        if (this.stashTaken) this.from = len;
        return len;
      }
      chunk.copy(this.stash, this.stashLen, 0, need);
      const frame = this.stash;
      const taken = this.stashTaken;
      this.stash = null;
      this.stashLen = 0;
      this.stashTaken = false;
      if (taken) {
        this.from = need;
        (this.sink as SplicingSink).onTaken(frame[0]!, frame, 0, frame.length);
      } else {
        this.sink.onFrame(frame[0]!, frame, 0, frame.length);
      }
      pos = need;
    } else if (this.headLen > 0) {
      pos = this.resumeHead(chunk);
      if (pos < 0 || this.stopped) {
        this.carry = null;
        return 0;
      }
    }
    while (pos < len) {
      if (len - pos < HEADER) {
        this.withhold(chunk, pos);
        return pos;
      }
      const type = chunk[pos]!;
      const length = int32At(chunk, pos + 1);
      let next: number;
      if (this.modes[type] === FrameMode.Decide && this.lengthOk(type, length)) {
        const want = Math.min(1 + length, this.peek);
        if (len - pos < want) {
          this.withhold(chunk, pos);
          return pos;
        }
        next = this.decide(type, length, chunk, pos, chunk, pos, want);
      } else {
        next = this.frame(type, length, chunk, pos);
      }
      if (this.stopped) return pos;
      pos = next;
    }
    return len;
  }

  /** Keeps chunk[pos, len) as the start of a frame split across reads. */
  private withhold(chunk: Buffer, pos: number): void {
    chunk.copy((this.head ??= Buffer.allocUnsafe(this.peek)), 0, pos, this.len);
    this.headLen = this.len - pos;
  }

  private lengthOk(type: number, length: number): boolean {
    if (length >= 4 && length <= this.maxLength) return true;
    this.stopped = true;
    this.sink.onBadLength(type, length);
    return false;
  }

  /**
   * Completes a frame start withheld from earlier reads with this chunk's first bytes, then
   * handles the frame as starting before this chunk (at -withheld). Returns the position just past
   * the frame (or len), or -1 when the chunk did not complete what the frame's mode needs.
   */
  private resumeHead(chunk: Buffer): number {
    const head = this.head!;
    const withheld = this.headLen;
    const len = this.len;
    let used = 0;
    if (withheld < HEADER) {
      used = Math.min(HEADER - withheld, len);
      chunk.copy(head, withheld, 0, used);
      this.headLen += used;
      if (this.headLen < HEADER) return -1;
    }
    const type = head[0]!;
    const length = int32At(head, 1);
    if (this.modes[type] === FrameMode.Decide) {
      if (!this.lengthOk(type, length)) return -1;
      const want = Math.min(1 + length, this.peek);
      if (this.headLen < want) {
        const n = Math.min(want - this.headLen, len - used);
        chunk.copy(head, this.headLen, used, used + n);
        this.headLen += n;
        if (this.headLen < want) return -1;
      }
      this.headLen = 0;
      return this.decide(type, length, chunk, -withheld, head, 0, want);
    }
    this.headLen = 0;
    this.carry = Buffer.from(head.subarray(0, withheld));
    return this.frame(type, length, chunk, -withheld);
  }

  /**
   * A Decide-mode frame whose first bytes are view[vstart, vstart + avail); it starts at `start`
   * of the chunk (negative when its first bytes were withheld, which the head buffer holds).
   */
  private decide(type: number, length: number, chunk: Buffer, start: number, view: Buffer, vstart: number, avail: number): number {
    const verdict = (this.sink as SplicingSink).onDecide(type, length, view, vstart, avail);
    switch (verdict) {
      case Verdict.Forward:
        if (start < 0) this.carry = Buffer.from(this.head!.subarray(0, -start));
        return this.pass(start + 1 + length, this.len);
      case Verdict.Observe:
        if (start < 0) this.carry = Buffer.from(this.head!.subarray(0, -start));
        return this.assemble(type, length, chunk, start, false);
      case Verdict.Take:
        if (start > this.from || this.carry !== null) {
          (this.sink as SplicingSink).onRun(this.carry, chunk, this.from, Math.max(start, this.from));
          this.carry = null;
        }
        return this.assemble(type, length, chunk, start, true);
      default: {
        const never: never = verdict;
        throw new Error(`unknown verdict ${String(never)}`);
      }
    }
  }

  /** The frame's bytes up to `end` pass unseen. */
  private pass(end: number, len: number): number {
    if (end <= len) return end;
    this.skip = end - len;
    return len;
  }

  /**
   * Hands the whole frame to the sink: onFrame (forwarded) or onTaken (cut out). Assembled in a
   * copy only when it spans reads or began in an earlier one.
   */
  private assemble(type: number, length: number, chunk: Buffer, start: number, taken: boolean): number {
    const end = start + 1 + length;
    const len = this.len;
    if (start >= 0 && end <= len) {
      if (taken) {
        this.from = end;
        (this.sink as SplicingSink).onTaken(type, chunk, start, end);
      } else {
        this.sink.onFrame(type, chunk, start, end);
      }
      return end;
    }
    const frame = Buffer.allocUnsafe(1 + length);
    let filled: number;
    if (start < 0) {
      this.head!.copy(frame, 0, 0, -start);
      filled = -start + chunk.copy(frame, -start, 0, Math.min(end, len));
    } else {
      filled = chunk.copy(frame, 0, start, len);
    }
    if (end <= len) {
      if (taken) {
        this.from = end;
        (this.sink as SplicingSink).onTaken(type, frame, 0, frame.length);
      } else {
        this.sink.onFrame(type, frame, 0, frame.length);
      }
      return end;
    }
    this.stash = frame;
    this.stashLen = filled;
    this.stashTaken = taken;
    if (taken) this.from = len;
    return len;
  }

  /**
   * Handles one Pass, Header or Full frame whose first byte is at `start` (negative when its
   * header began in an earlier chunk). Returns the position just past it, or len when it runs
   * past the chunk.
   */
  private frame(type: number, length: number, chunk: Buffer, start: number): number {
    if (!this.lengthOk(type, length)) return start;
    const mode = this.modes[type];
    if (mode === FrameMode.Full) return this.assemble(type, length, chunk, start, false);
    if (mode === FrameMode.Header && !this.sink.onHeader(type, length)) {
      this.stopped = true;
      return start;
    }
    return this.pass(start + 1 + length, this.len);
  }
}
