// Where a client stands in the protocol, read from the headers of what it sends: requests still
// unanswered, an extended-protocol pipeline not yet closed by Sync, and the status of the last
// ReadyForQuery it was sent. The release rule, the departure rule and the loss policy all read it.

import { FrameScanner, frameModes, type FrameSink } from '../protocol/frame-scanner.js';
import { Frontend, TxStatus } from '../protocol/message-types.js';

// Header-mode frames: what the rules count (requests, Syncs, extended-protocol messages waiting
// for a Sync) and Terminate, which is never forwarded. Bodies still travel blind.
export const CLIENT_FRAMES = frameModes(
  [Frontend.Query, Frontend.Sync, Frontend.FunctionCall, Frontend.Terminate, Frontend.Parse, Frontend.Bind, Frontend.Describe, Frontend.Execute, Frontend.Close, Frontend.Flush],
  [],
);

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
   * The status byte of the last ReadyForQuery the client was sent: what it believes about its
   * transaction. A client that believes it is inside one is never told 'I' by pgrelay.
   */
  txStatus: number;
}

/** What the protocol position reports to its session. */
export interface ProtocolEvents {
  /** The client sent Terminate (it is not forwarded). Called after the current read. */
  onTerminate(): void;
  /** A Query, or a Sync closing an extended-protocol pipeline, was sent: one query, as PgBouncer counts. */
  onQuery(): void;
  /** A frame's length is below 4 or above max_packet_size; scanning stopped. */
  onBadLength(type: number, length: number): void;
}

export class ClientProtocol implements ProtocolPosition, FrameSink {
  outstanding = 0;
  unsynced = false;
  txStatus: number = TxStatus.Idle;
  /** The client sent Terminate. */
  terminated = false;
  readonly scanner: FrameScanner;

  constructor(
    maxPacketSize: number,
    private readonly events: ProtocolEvents,
  ) {
    this.scanner = new FrameScanner(CLIENT_FRAMES, maxPacketSize, this);
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
  }

  onHeader(type: number): boolean {
    switch (type) {
      case Frontend.Terminate:
        this.terminated = true;
        // Terminate is never forwarded: the server belongs to the pool, not to this client.
        queueMicrotask(() => this.events.onTerminate());
        return false;
      case Frontend.Sync:
        // Sync ends the pipeline: one ReadyForQuery will answer it.
        this.unsynced = false;
        this.outstanding++;
        this.events.onQuery();
        return true;
      case Frontend.Query:
        this.outstanding++;
        this.events.onQuery();
        return true;
      case Frontend.FunctionCall:
        this.outstanding++;
        return true;
      default:
        // Parse, Bind, Describe, Execute, Close, Flush: nothing is final until the next Sync.
        this.unsynced = true;
        return true;
    }
  }

  onFrame(): void {}

  onBadLength(type: number, length: number): void {
    this.events.onBadLength(type, length);
  }
}
