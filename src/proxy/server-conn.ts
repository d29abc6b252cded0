// One server connection: after login it forwards the server's bytes to whichever client is
// linked, reads only ReadyForQuery / ParameterStatus / ErrorResponse / COPY starts, and applies
// the release rule. Between clients it can run pgrelay's own queries (SET, ROLLBACK, DISCARD;
// internal-query.ts), and CommandComplete tags update what it knows of the session (command-tags.ts).
// With prepared-statement tracking its replies are matched to the client's reply queue
// (reply-tracking.ts), and it keeps the list of statements pgrelay prepared on it.
//
// The invariant: a server goes back to the pool only at a true protocol boundary. Its client's
// every request is answered, no extended-protocol message was sent since the last Sync, no COPY
// is open, and ReadyForQuery said 'I'. A server whose state is unknown is closed, never reset by
// a Sync (a Sync after an abandoned Execute commits it). Every query of pgrelay's own has a
// deadline (server_cleanup_timeout): a server that does not answer in time is closed.

import type net from 'node:net';
import { serialize } from '../protocol/frontend-messages.js';
import { FrameScanner, Verdict, type SplicingSink } from '../protocol/frame-scanner.js';
import { Backend, TxStatus } from '../protocol/message-types.js';
import { readErrorFields, readParameterStatus } from '../protocol/readers.js';
import { ServerStatements } from './statement-lru.js';
import type { ReplyQueue } from './reply-queue.js';
import { ReplyTracker, SERVER_DECIDE_PEEK, TRACKING_SERVER_FRAMES, type TrackedServer } from './reply-tracking.js';
import type { PoolServer } from '../pool/pool-contract.js';
import type { ServerClient, ServerOwner } from './server-client.js';
import { OBSERVING_SERVER_FRAMES, SERVER_FRAMES, ServerState } from './server-state.js';
import { InternalQuery, ServerQueryError } from './internal-query.js';
import { onCommandTag, type TaggedServer } from './command-tags.js';
import { returnAfterRelease } from './server-handoff.js';
import type { HostPort } from '../config/types.js';
import type { LoginResult } from './server-login.js';
import type { ReadSlot } from './read-slot.js';
import { writeView } from './socket-io.js';
import { beginRead, CLOCK_ORIGIN, endRead, readClock, wallClock } from './read-clock.js';
import { writePieces } from './write-pieces.js';
import { paramsSignature } from './session-params.js';
import { Disconnect } from '../errors.js';

let nextServerId = 1;

export class ServerConn implements PoolServer, SplicingSink, TrackedServer, TaggedServer {
  readonly id = nextServerId++;
  readonly createdAt: number;
  idleSince: number;
  closeNeeded = false;
  generation = 0;
  /** PoolServer: the pool's bookkeeping. */
  activeSlot = -1;
  state: ServerState = ServerState.idle;
  client: ServerClient | null = null;
  txStatus: number;
  /** A COPY FROM STDIN is in progress (CopyInResponse seen, no ReadyForQuery yet). */
  copyIn = false;
  /** Result of the write gate at login (null: not checked, target_session_attrs=any). */
  writable: boolean | null = null;
  /** Query run before a transaction-pooled server goes back to the pool (server_reset_query_always). */
  resetOnRelease = '';
  /** When the current client was linked (wall-clock ms), for SHOW SERVERS. */
  linkedAt = 0;
  readonly params: Map<string, string>;
  readonly processId: number;
  readonly secretKey: number;
  /** The prepared statements pgrelay made on this server (created by the first tracking client). */
  statements: ServerStatements | null = null;
  /**
   * A client ran SQL PREPARE or DEALLOCATE here: statements pgrelay does not know of may exist
   * (or its own may be gone), so DEALLOCATE ALL runs before the server serves anyone else.
   */
  sqlStatementsTouched = false;
  /** Session settings pgrelay SET on this server for the current or last client (see session-params.ts). */
  setByUs: ReadonlyMap<string, string> = new Map();
  setByUsSig = '';
  /** A client's SET, RESET or DISCARD ALL may have changed what setByUs says. */
  setByUsDirty = false;

  /** Set by the release rule while a chunk is scanned; acted on after it is written. */
  private releaseDue = false;
  /**
   * The last client's bytes ended inside a message when it was unlinked (see close(): such a
   * connection is cut, never sent anything more).
   */
  private leftMidMessage = false;
  private internal: InternalQuery | null = null;
  private readonly scanner: FrameScanner;
  private closeCode: string | null = null;
  private closeReason: string | null = null;
  /** Why the server itself ended the connection (a FATAL ErrorResponse), if it said. */
  private fatalMessage: string | null = null;
  /** The linked client was sent the server's FATAL. */
  private fatalForwarded = false;
  private paramsSig: string | null = null;
  private readonly reader: ReadSlot;
  /** The linked client's reply queue (prepared-statement tracking), or null. */
  private replies: ReplyQueue | null = null;
  private readonly tracker = new ReplyTracker(this);
  /** Scan CommandComplete tags for this link (its session settings are pgrelay's to keep). */
  private observeTags = false;

  constructor(
    readonly address: HostPort,
    private readonly socket: net.Socket,
    login: LoginResult,
    maxPacketSize: number,
    private readonly owner: ServerOwner,
  ) {
    this.params = login.params;
    this.processId = login.processId;
    this.secretKey = login.secretKey;
    this.txStatus = login.txStatus;
    this.createdAt = wallClock();
    this.idleSince = this.createdAt;
    this.scanner = new FrameScanner(SERVER_FRAMES, maxPacketSize, this, SERVER_DECIDE_PEEK);
    this.reader = login.reader;
    this.reader.sink = (chunk: Buffer, len: number) => this.onData(chunk, len);
    socket.on('drain', () => this.client?.resumeReading());
    socket.on('error', (err: Error) => this.lost(Disconnect.ServerSocketError, err.message));
    socket.on('close', () => (this.fatalMessage !== null ? this.lost(Disconnect.ServerFatal, this.fatalMessage) : this.lost(Disconnect.ServerClosed, 'server closed the connection')));
  }

  /** The tracked parameters as one comparable string (see paramsSignature). */
  get paramsSignature(): string {
    return (this.paramsSig ??= paramsSignature(this.params));
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  private setState(next: ServerState): void {
    switch (next) {
      case ServerState.idle:
      case ServerState.active:
      case ServerState.internal:
        if (this.state === ServerState.closed) return; // closed is final
        break;
      case ServerState.closed:
        break;
      default: {
        const never: never = next;
        throw new Error(`unknown server state ${String(never)}`);
      }
    }
    this.state = next;
  }

  /**
   * Links a client: from now on server bytes go to it. `observeTags`: read CommandComplete tags
   * (a client whose session settings pgrelay SET, or a server carrying some). `now`: readClock().
   */
  link(client: ServerClient, observeTags = false, now = readClock()): void {
    this.client = client;
    this.replies = client.protocol.replies ?? null;
    if (this.replies !== null) this.statements ??= new ServerStatements();
    this.observeTags = observeTags || this.setByUs.size > 0;
    this.scanner.setModes(this.linkModes());
    this.setState(ServerState.active);
    this.linkedAt = CLOCK_ORIGIN + now;
  }

  private linkModes(): Uint8Array {
    return this.replies !== null ? TRACKING_SERVER_FRAMES : this.observeTags ? OBSERVING_SERVER_FRAMES : SERVER_FRAMES;
  }

  /**
   * Detaches the client (on release or when the client goes away). A pause for that client's full
   * socket ends with the link: the client's 'drain' no longer reaches this server, and whoever
   * uses it next (another client, a ROLLBACK of pgrelay's own) must be able to read its answer.
   */
  unlink(): void {
    if (this.client !== null) this.leftMidMessage = !this.client.protocol.atBoundary;
    this.client = null;
    this.replies = null;
    this.observeTags = false;
    this.scanner.setModes(SERVER_FRAMES);
    if (this.state !== ServerState.closed) {
      this.setState(ServerState.idle);
      if (this.socket.isPaused()) this.socket.resume();
    }
  }

  /**
   * Writes client bytes to the server: `carry` (a withheld header, see FrameScanner), then
   * chunk[from, end). False when the server's socket buffer is full.
   */
  write(carry: Buffer | null, chunk: Buffer, end: number, from = 0): boolean {
    if (carry !== null) writeView(this.socket, carry, 0, carry.length);
    return writeView(this.socket, chunk, from, end);
  }

  /** Writes pieces (views of the current read and pgrelay's own frames) in order, in one system call when it can. */
  writePieces(pieces: readonly Buffer[]): boolean {
    return writePieces(this.socket, pieces);
  }

  /** Writes buffers pgrelay owns (requests held while the client waited), in one go. */
  writeBuffers(chunks: readonly Buffer[]): boolean {
    this.socket.cork();
    let ok = true;
    for (const c of chunks) ok = this.socket.write(c);
    this.socket.uncork();
    return ok;
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /**
   * Runs one of pgrelay's own simple queries; resolves at ReadyForQuery. Rejects with a
   * ServerQueryError when the server answered with an error, with a plain Error when the
   * connection is gone. Past server_cleanup_timeout the connection is closed: a server that does
   * not answer is in a state nobody knows (ignoring messages until a Sync, stuck on a lock).
   * The caller ends the phase with endInternal().
   */
  runInternal(sql: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.state === ServerState.closed) {
        reject(new Error(`server connection closed: ${this.closeReason ?? ''}`));
        return;
      }
      this.setState(ServerState.internal);
      // pgrelay's own query: its CommandComplete tags say what it did (DISCARD ALL, DEALLOCATE ALL).
      if (this.replies === null) this.scanner.setModes(OBSERVING_SERVER_FRAMES);
      const timeoutMs = this.owner.cleanupTimeoutMs();
      let timer: NodeJS.Timeout | null = null;
      if (timeoutMs > 0) {
        timer = setTimeout(() => this.close(Disconnect.CleanupTimeout, `no answer to "${sql.length > 40 ? sql.slice(0, 40) + '...' : sql}" within ${timeoutMs} ms`), timeoutMs);
        timer.unref();
      }
      this.internal = new InternalQuery(resolve, reject, timer);
      this.socket.write(serialize.query(sql));
    });
  }

  /** Ends an internal query phase: the connection is linked again (client) or idle. */
  endInternal(): void {
    if (this.state === ServerState.internal) this.setState(this.client !== null ? ServerState.active : ServerState.idle);
    this.scanner.setModes(this.client !== null ? this.linkModes() : SERVER_FRAMES);
  }

  /** Back to the pool at a protocol boundary (a closed server is discarded instead). */
  release(): void {
    if (this.state === ServerState.closed) this.owner.discard(this, this.closeCode ?? Disconnect.ServerClosed);
    else this.owner.release(this);
  }

  /** Closes the connection (`code` from the Disconnect catalogue) and hands it back to the pool as not reusable. */
  discard(code: string, detail = ''): void {
    this.close(code, detail);
    this.owner.discard(this, code);
  }

  /**
   * No client is linked any more: run each of `queries` (a ROLLBACK, server_reset_query) under
   * the deadline, then release the server if it says 'I', or discard it. Empty ones are skipped.
   */
  resetThenRelease(queries: readonly string[]): void {
    const sql = queries.find((q) => q !== '');
    if (sql === undefined) {
      this.release();
      return;
    }
    const rest = queries.slice(queries.indexOf(sql) + 1);
    this.runInternal(sql).then(
      () => {
        this.endInternal();
        if (this.txStatus !== TxStatus.Idle) this.discard(Disconnect.ResetFailed, `still in a transaction after "${sql}"`);
        else this.resetThenRelease(rest);
      },
      (err: Error) => this.discard(Disconnect.ResetFailed, `"${sql}" failed: ${err.message}`),
    );
  }

  /** Closes the connection; `code` is a stable Disconnect code, `detail` free text for the log. */
  close(code: string, detail = ''): void {
    if (this.state === ServerState.closed) return;
    this.closeCode = code;
    this.closeReason = detail === '' ? code : `${code}: ${detail}`;
    this.setState(ServerState.closed);
    // Terminate lets the backend exit cleanly instead of logging an unexpected EOF, but only
    // between messages. PostgreSQL reads a message by its length: after a client's partial
    // message, the Terminate's bytes would be read as its rest (the row limit of an Execute of
    // COMMIT, which then runs and commits). There the connection is only ended: PostgreSQL sees
    // the EOF inside the message and rolls back.
    const midMessage = this.client !== null ? !this.client.protocol.atBoundary : this.leftMidMessage;
    if (this.socket.writable) {
      if (midMessage) this.socket.end();
      else this.socket.end(serialize.end());
    }
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish(code, detail, true);
  }

  /** A read: chunk[0, len), valid only during this call (socket-io.ts). */
  private onData(chunk: Buffer, len: number): void {
    beginRead();
    const end = this.scanner.scan(chunk, len);
    if (this.scanner.stopped) {
      endRead();
      return; // a bad length: onBadLength closed us
    }
    const client = this.client;
    if (client !== null && this.state === ServerState.active && (end > this.scanner.from || this.scanner.carry !== null)) {
      if (!client.forwardFromServer(this.scanner.carry, chunk, this.scanner.from, end)) this.socket.pause();
    }
    if (this.releaseDue) {
      this.releaseDue = false;
      const c = this.client;
      const q = this.replies;
      this.unlink();
      returnAfterRelease(this, q);
      c?.onReleased();
    }
    endRead();
  }

  // ---- prepared-statement tracking (transaction pooling): reply-tracking.ts ---------------

  /** SplicingSink: a reply at its header, with tracking (the plain rules on pgrelay's own queries). */
  onDecide(type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    const q = this.replies;
    if (q !== null && this.state === ServerState.active) return this.tracker.decide(q, type, length, buf, start, avail);
    if (type === Backend.ErrorResponse) return Verdict.Observe;
    return type === Backend.ReadyForQuery || type === Backend.CommandComplete ? this.tracker.readNow(type, length, buf, start, avail, Verdict.Observe) : Verdict.Forward;
  }

  /** SplicingSink: server bytes before a taken frame. */
  onRun(carry: Buffer | null, chunk: Buffer, from: number, to: number): void {
    const client = this.client;
    if (client === null || this.state !== ServerState.active) return;
    if (!client.forwardFromServer(carry, chunk, from, to)) this.socket.pause();
  }

  /** SplicingSink: a reply onDecide() took. */
  onTaken(type: number, buf: Buffer, start: number, end: number): void {
    const client = this.client;
    const q = this.replies;
    if (client === null || q === null || this.state !== ServerState.active) {
      this.tracker.reset();
      if (type === Backend.ErrorResponse || type === Backend.ReadyForQuery) this.onFrame(type, buf, start, end);
      return;
    }
    if (!this.tracker.taken(client, q, type, buf, start, end)) this.socket.pause();
  }

  /** TrackedServer: the bookkeeping and the server disagree; the server is closed, never reused. */
  lostTrack(detail: string): void {
    const c = this.client;
    this.close(Disconnect.InvalidServerMessage, detail);
    this.unlink();
    c?.onServerLost({ reason: 'server reply out of order for prepared-statement tracking', fatalForwarded: false });
  }

  /** TaggedServer: every prepared statement on the server is gone (DISCARD ALL, DEALLOCATE ALL). */
  statementsDropped(): void {
    this.statements?.clear();
    this.sqlStatementsTouched = false;
    if (this.client !== null && this.state === ServerState.active && this.replies !== null) this.client.onStatementsDropped?.(this.replies.headSeq);
  }

  /** TaggedServer: SQL PREPARE and DEALLOCATE seen now are a tracking client's or pgrelay's own. */
  get watchesStatements(): boolean {
    return this.replies !== null || this.state === ServerState.internal;
  }

  /** TaggedServer */
  get forwarding(): boolean {
    return this.state === ServerState.active;
  }

  onHeader(): boolean {
    return true;
  }

  onFrame(type: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case Backend.ReadyForQuery: {
        const status = buf[start + 5]!;
        this.txStatus = status;
        this.copyIn = false;
        if (this.state === ServerState.internal) {
          const q = this.internal!;
          this.internal = null;
          q.settle();
          return;
        }
        const client = this.client;
        if (client === null) return;
        const p = client.protocol;
        if (p.outstanding > 0) p.outstanding--;
        client.onAnswered?.();
        p.txStatus = status;
        // The release rule, written once: in transaction pooling the server goes back to the
        // pool when ReadyForQuery says 'I' (no transaction open), every request the client sent
        // has been answered (pipelined Syncs/Queries counted in, ReadyForQuery counted out), no
        // extended-protocol message was sent since the last Sync (P/B/E with its Sync still to
        // come belongs to this client: whoever sent the next Sync would commit it), and no COPY
        // is open. Session pooling keeps the link until the client leaves.
        if (client.transactionPooling && status === TxStatus.Idle && p.outstanding === 0 && !p.unsynced && !this.copyIn) {
          this.releaseDue = true;
        }
        return;
      }
      case Backend.ParameterStatus: {
        const [name, value] = readParameterStatus(buf, start, end);
        this.params.set(name, value);
        this.paramsSig = null;
        // A change the linked client caused (its own SET) becomes part of its session state,
        // replayed on whichever server it gets next.
        if (this.client !== null) this.client.setParam(name, value);
        return;
      }
      case Backend.ErrorResponse: {
        const fields = readErrorFields(buf, start, end);
        const severity = fields.get('V') ?? fields.get('S') ?? 'ERROR';
        if (severity === 'FATAL' || severity === 'PANIC') {
          this.fatalForwarded = this.state === ServerState.active;
          this.fatalMessage = `server: ${fields.get('M') ?? 'fatal error'} (${fields.get('C') ?? '?'})`;
        }
        if (this.state === ServerState.internal && this.internal !== null && this.internal.error === null) {
          this.internal.error = new ServerQueryError(`${fields.get('M') ?? 'error'} (${fields.get('C') ?? '?'})`, fields.get('C') ?? '');
        }
        return;
      }
      case Backend.CopyInResponse:
      case Backend.CopyBothResponse: {
        this.copyIn = true;
        if (this.replies !== null && this.client !== null) this.tracker.copyStarted(this.client, this.replies);
        return;
      }
      case Backend.CommandComplete:
        if (this.copyIn && this.replies !== null) this.replies.ignoreSyncs = false;
        onCommandTag(this, buf, start, end);
        return;
    }
  }

  onBadLength(type: number, length: number): void {
    this.close(Disconnect.InvalidServerMessage, `message of type ${String.fromCharCode(type)} with invalid length ${length}`);
    const c = this.client;
    this.unlink();
    c?.onServerLost({ reason: 'server sent an invalid message', fatalForwarded: false });
  }

  private lost(code: string, detail: string): void {
    if (this.state === ServerState.closed) return;
    this.setState(ServerState.closed);
    this.closeCode = code;
    this.closeReason = detail;
    this.socket.destroy();
    const c = this.client;
    this.client = null;
    this.finish(code, detail, false);
    c?.onServerLost({ reason: detail, fatalForwarded: this.fatalForwarded });
  }

  private finish(code: string, detail: string, byUs: boolean): void {
    this.statements?.retire();
    const q = this.internal;
    this.internal = null;
    q?.abort(this.closeReason ?? code);
    this.owner.onClosed(this, code, detail, byUs);
  }
}
