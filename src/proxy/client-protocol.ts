// Where a client stands in the protocol, read from the headers of what it sends: requests still
// unanswered, an extended-protocol pipeline not yet closed by Sync, and the status of the last
// ReadyForQuery it was sent. The release rule, the departure rule and the loss policy all read it.
//
// When pgrelay tracks prepared statements (transaction pooling, max_prepared_statements > 0) it
// also queues one entry per message that PostgreSQL answers (reply-queue.ts), and cuts the frames
// that name a statement out of the stream (the scanner's Decide mode): the session renders them
// for whichever server it gets (client-statements.ts). Frames that use only the unnamed statement
// and portal are forwarded as they are, as slices of the read.

import { FrameScanner, frameModes, Verdict, type SplicingSink } from '../protocol/frame-scanner.js';
import { Frontend, TxStatus } from '../protocol/message-types.js';
import { startsWithDeallocate, TargetKind } from '../protocol/statement-messages.js';
import { ClientStatements, type FrameStep } from './client-statements.js';
import { Expect, ReplyQueue } from './reply-queue.js';

// Header-mode frames: what the rules count (requests, Syncs, extended-protocol messages waiting
// for a Sync) and Terminate, which is never forwarded. Bodies still travel blind.
export const CLIENT_FRAMES = frameModes(
  [Frontend.Query, Frontend.Sync, Frontend.FunctionCall, Frontend.Terminate, Frontend.Parse, Frontend.Bind, Frontend.Describe, Frontend.Execute, Frontend.Close, Frontend.Flush],
  [],
);

/**
 * With prepared-statement tracking: the frames that may name a statement are decided on their
 * first bytes, and so are Query and the unnamed Parse, which may be a SQL DEALLOCATE of one.
 */
export const TRACKING_CLIENT_FRAMES = frameModes(
  [Frontend.Sync, Frontend.FunctionCall, Frontend.Terminate, Frontend.Execute, Frontend.Flush, Frontend.CopyDone, Frontend.CopyFail],
  [],
  [Frontend.Query, Frontend.Parse, Frontend.Bind, Frontend.Describe, Frontend.Close],
);

/**
 * How much of a Parse/Bind/Describe/Close the decision sees: enough for a Bind's portal name and
 * the first byte of its statement name. A frame whose names are longer is taken whole.
 */
const DECIDE_PEEK = 128;

/** The counters a server connection updates as it answers (see ServerClient). */
export interface ProtocolPosition {
  /** Requests (Query, Sync, FunctionCall) sent to a server and not yet answered by ReadyForQuery. */
  outstanding: number;
  /**
   * An extended-protocol message (Parse, Bind, Describe, Execute, Close, Flush) was sent since the
   * last Sync: the server is inside an unfinished pipeline whatever its last ReadyForQuery said.
   */
  readonly unsynced: boolean;
  /**
   * No partial message is pending: every frame whose first bytes went to the server went whole.
   * (A partial frame start still withheld by the scanner counts as pending too.)
   */
  readonly atBoundary: boolean;
  /**
   * The status byte of the last ReadyForQuery the client was sent: what it believes about its
   * transaction. A client that believes it is inside one is never told 'I' by pgrelay.
   */
  txStatus: number;
  /** The replies the client's messages expect, when pgrelay tracks prepared statements. */
  readonly replies?: ReplyQueue | null;
  /** The client's prepared statements, when tracked. */
  readonly names?: ClientStatements | null;
}

/** What the protocol position reports to its session. */
export interface ProtocolEvents {
  /** The client sent Terminate (it is not forwarded). Called after the current read. */
  onTerminate(): void;
  /** A Query, or a Sync closing an extended-protocol pipeline, was sent: one query, as PgBouncer counts. */
  onQuery(): void;
  /** A frame's length is below 4 or above max_packet_size; scanning stopped. */
  onBadLength(type: number, length: number): void;
  /** Tracking only: bytes of the current read that precede a frame naming a statement (FrameScanner.onRun). */
  onRun?(carry: Buffer | null, chunk: Buffer, from: number, to: number): void;
  /** Tracking only: a frame naming a statement, queued; the session writes its rendering in its place. */
  onStatement?(step: FrameStep): void;
}

export class ClientProtocol implements ProtocolPosition, SplicingSink {
  outstanding = 0;
  unsynced = false;
  txStatus: number = TxStatus.Idle;
  /** The client sent Terminate. */
  terminated = false;
  readonly scanner: FrameScanner;
  replies: ReplyQueue | null = null;
  names: ClientStatements | null = null;

  constructor(
    maxPacketSize: number,
    private readonly events: ProtocolEvents,
  ) {
    this.scanner = new FrameScanner(CLIENT_FRAMES, maxPacketSize, this, DECIDE_PEEK);
  }

  /** From now on, track prepared statements (transaction pooling with max_prepared_statements > 0). */
  enableTracking(): void {
    this.replies ??= new ReplyQueue();
    this.names ??= new ClientStatements();
    this.scanner.setModes(TRACKING_CLIENT_FRAMES);
  }

  /** No partial message has been forwarded: the stream is between frames. */
  get atBoundary(): boolean {
    return this.scanner.atBoundary;
  }

  /** Every request sent is whole, unanswered ones exist, and each ends with its Sync. */
  get wholeRequestsPending(): boolean {
    return this.outstanding > 0 && !this.unsynced && this.scanner.atBoundary;
  }

  /** pgrelay answered every unanswered request itself (an ERROR and an idle ReadyForQuery each). */
  answeredAll(): void {
    this.outstanding = 0;
    this.txStatus = TxStatus.Idle;
    // Nothing the server had not answered happened: the names those messages made or removed
    // are undone, as after a backend's death.
    this.replies?.clear();
  }

  onHeader(type: number): boolean {
    const q = this.replies;
    switch (type) {
      case Frontend.Terminate:
        this.terminated = true;
        // Terminate is never forwarded: the server belongs to the pool, not to this client.
        queueMicrotask(() => this.events.onTerminate());
        return false;
      case Frontend.Sync:
        // During an extended-protocol COPY FROM STDIN the server ignores Sync (libpq sends one
        // behind the Execute): it answers nothing and ends nothing.
        if (q !== null && q.ignoreSyncs) return true;
        // Sync ends the pipeline: one ReadyForQuery will answer it.
        this.unsynced = false;
        this.outstanding++;
        // One query, as PgBouncer counts them: a Query, or the Sync that closes extended messages.
        this.events.onQuery();
        if (q !== null) {
          q.skipUntilSync = false;
          q.push(Expect.Sync);
        }
        return true;
      case Frontend.Query:
        this.sentQuery();
        return true;
      case Frontend.FunctionCall:
        if (q !== null && q.skipUntilSync) return true;
        this.outstanding++;
        q?.push(Expect.FunctionCall);
        return true;
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        // The client ends its COPY: Syncs count again.
        if (q !== null) q.ignoreSyncs = false;
        return true;
      case Frontend.Execute:
        this.unsynced = true;
        if (q !== null && !q.skipUntilSync) q.push(Expect.Execute);
        return true;
      default:
        // Parse, Bind, Describe, Close, Flush: nothing is final until the next Sync.
        this.unsynced = true;
        if (type === Frontend.Flush) q?.flush();
        return true;
    }
  }

  /** A Query that goes to the server. */
  private sentQuery(): void {
    this.events.onQuery();
    const q = this.replies;
    // After an extended-protocol error the server skips a Query until Sync: no answer comes.
    if (q !== null && q.skipUntilSync) return;
    this.outstanding++;
    q?.push(Expect.Query);
  }

  /**
   * Tracking only: a Query, Parse, Bind, Describe or Close. Those that use only the unnamed
   * statement (or a portal) are forwarded; those that name a statement are taken, and so are
   * the Query or unnamed Parse of a SQL DEALLOCATE (it may name one of the client's statements).
   */
  onDecide(type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    const body = start + 5;
    const last = start + avail;
    if (type === Frontend.Query) {
      if (startsWithDeallocate(buf, body, last)) return Verdict.Take;
      this.sentQuery();
      return Verdict.Forward;
    }
    this.unsynced = true;
    let named: boolean;
    if (length <= 4) {
      named = false; // malformed; the server will say so
    } else if (type === Frontend.Parse) {
      named = buf[body] !== 0 || startsWithDeallocate(buf, body + 1, last);
    } else if (type === Frontend.Bind) {
      // portal name (almost always the unnamed one), then statement name
      const portalEnd = buf[body] === 0 ? body : buf.indexOf(0, body);
      if (portalEnd < 0 || portalEnd >= last - 1) return Verdict.Take; // names longer than the peek: decide on the whole frame
      named = buf[portalEnd + 1] !== 0;
    } else {
      // Describe, Close: 'S' or 'P', then the name
      named = buf[body] === TargetKind.Statement && length > 5 && buf[body + 1] !== 0;
    }
    if (named) return Verdict.Take;
    const q = this.replies!;
    if (!q.skipUntilSync) q.push(type === Frontend.Parse ? Expect.Parse : type === Frontend.Bind ? Expect.Bind : type === Frontend.Describe ? Expect.Describe : Expect.Close);
    return Verdict.Forward;
  }

  onRun(carry: Buffer | null, chunk: Buffer, from: number, to: number): void {
    this.events.onRun!(carry, chunk, from, to);
  }

  /** Tracking only: a frame that names a statement (or one whose names outran the peek), or a SQL DEALLOCATE. */
  onTaken(type: number, buf: Buffer, start: number, end: number): void {
    const q = this.replies!;
    if (type === Frontend.Query) {
      this.events.onQuery();
      if (q.skipUntilSync) return; // the server skips it; nothing is sent
      this.outstanding++;
    }
    const step = this.names!.stepFor(type, buf, start, end, q.pushed);
    step.segment = q.segments;
    step.seq = q.pushed;
    if (q.skipUntilSync) {
      // The server skips it: nothing is sent, and what it did to the names is undone.
      step.undo();
      return;
    }
    q.push(step.expect, step);
    this.events.onStatement!(step);
  }

  onFrame(): void {}

  onBadLength(type: number, length: number): void {
    this.events.onBadLength(type, length);
  }
}
