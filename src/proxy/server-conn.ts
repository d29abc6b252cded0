// One server connection: after login it forwards the server's bytes to whichever client is
// linked, reads only ReadyForQuery / ParameterStatus / ErrorResponse / COPY starts, and applies
// the release rule. Between clients it can run pgrelay's own queries (SET, ROLLBACK, DISCARD).
//
// The invariant: a server goes back to the pool only at a true protocol boundary. Its client's
// every request is answered, no extended-protocol message was sent since the last Sync, no COPY
// is open, and ReadyForQuery said 'I'. A server whose state is unknown is closed, never reset by
// a Sync (a Sync after an abandoned Execute commits it). Every query of pgrelay's own has a
// deadline (server_cleanup_timeout): a server that does not answer in time is closed.

import type net from 'node:net';
import { serialize } from '../protocol/frontend-messages.js';
import { FrameScanner, frameModes, type FrameSink } from '../protocol/frame-scanner.js';
import { Backend, TxStatus } from '../protocol/message-types.js';
import { readErrorFields, readParameterStatus } from '../protocol/readers.js';
import type { PoolServer } from '../pool/pool.js';
import type { HostPort } from '../config/types.js';
import type { LoginResult } from './server-login.js';
import type { ReadSlot } from './read-slot.js';
import { writeView } from './socket-io.js';
import { paramsSignature } from './session-params.js';

/** What a server connection needs of the client it is linked to. */
export interface ServerClient {
  /** Requests (Query, Sync, FunctionCall) sent to the server and not yet answered by ReadyForQuery. */
  outstanding: number;
  /**
   * An extended-protocol message (Parse, Bind, Describe, Execute, Close, Flush) was sent since the
   * last Sync: the server is inside an unfinished pipeline whatever its last ReadyForQuery said.
   */
  readonly unsynced: boolean;
  /** The status of the last ReadyForQuery the client was sent: its own view of its transaction. */
  txStatus: number;
  readonly id: number;
  /** Writes server bytes to the client; false when the client's socket buffer is full. */
  forwardFromServer(carry: Buffer | null, chunk: Buffer, end: number): boolean;
  /** A session parameter changed by the client's own SET: it becomes part of its session state. */
  setParam(name: string, value: string): void;
  /** The link ended because of the release rule; the client goes idle. */
  onReleased(): void;
  /** The server connection broke while linked. */
  onServerLost(reason: string, fatalForwarded?: boolean): void;
  /** Whether the client's pool is in transaction mode (release at transaction end). */
  readonly transactionPooling: boolean;
  resumeReading(): void;
}

/** Lifecycle of a server connection: idle in the pool, linked to a client, busy with our own query, closed. */
export const ServerState = { idle: 'idle', active: 'active', internal: 'internal', closed: 'closed' } as const;
export type ServerState = (typeof ServerState)[keyof typeof ServerState];

export const SERVER_FRAMES = frameModes(
  [],
  [Backend.ReadyForQuery, Backend.ParameterStatus, Backend.ErrorResponse, Backend.CopyInResponse, Backend.CopyBothResponse],
);

interface InternalQuery {
  resolve(): void;
  reject(err: Error): void;
  /** The first ErrorResponse the query got (the server is still in sync: ReadyForQuery follows). */
  error: ServerQueryError | null;
  timer: NodeJS.Timeout | null;
}

/**
 * One of pgrelay's own queries got an ErrorResponse and then ReadyForQuery: the server answered
 * and is in a known state. Any other rejection of runInternal() means the connection is gone.
 */
export class ServerQueryError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string,
  ) {
    super(message);
    this.name = 'ServerQueryError';
  }
}

let nextServerId = 1;

export class ServerConn implements PoolServer, FrameSink {
  readonly id = nextServerId++;
  readonly createdAt: number;
  idleSince: number;
  closeNeeded = false;
  generation = 0;
  state: ServerState = ServerState.idle;
  client: ServerClient | null = null;
  txStatus: number;
  /** A COPY FROM STDIN is in progress (CopyInResponse seen, no ReadyForQuery yet). */
  copyIn = false;
  /** Set by the release rule while a chunk is scanned; acted on after it is written. */
  private releaseDue = false;
  private internal: InternalQuery | null = null;
  private readonly scanner: FrameScanner;
  private closeReason: string | null = null;
  /** Why the server itself ended the connection (a FATAL ErrorResponse), if it said. */
  private fatalMessage: string | null = null;
  /** The linked client was sent the server's FATAL: it expects its connection to end. */
  fatalForwarded = false;
  bytesIn = 0;
  /** Result of the write gate at login (null: not checked, target_session_attrs=any). */
  writable: boolean | null = null;
  /** Query run before a transaction-pooled server goes back to the pool (server_reset_query_always). */
  resetOnRelease = '';
  linkedAt = 0;

  constructor(
    readonly address: HostPort,
    private readonly socket: net.Socket,
    login: LoginResult,
    maxPacketSize: number,
    /** Hands the server back to its pool; `clean` says whether it may be reused. */
    private readonly onRelease: (server: ServerConn, clean: boolean) => void,
    /** Told once when the connection is gone, whatever the cause. */
    private readonly onClosed: (server: ServerConn, reason: string, byUs: boolean) => void,
    /** server_cleanup_timeout in ms, read when each query of pgrelay's own starts (0 = none). */
    private readonly cleanupTimeoutMs: () => number = () => 0,
  ) {
    this.params = login.params;
    this.processId = login.processId;
    this.secretKey = login.secretKey;
    this.txStatus = login.txStatus;
    this.createdAt = Date.now();
    this.idleSince = this.createdAt;
    this.scanner = new FrameScanner(SERVER_FRAMES, maxPacketSize, this);
    this.reader = login.reader;
    this.reader.sink = (chunk: Buffer) => this.onData(chunk);
    socket.on('drain', () => this.client?.resumeReading());
    socket.on('error', (err: Error) => this.lost(`server socket error: ${err.message}`));
    socket.on('close', () => this.lost(this.fatalMessage ?? 'server closed the connection'));
  }

  readonly params: Map<string, string>;
  private paramsSig: string | null = null;
  private readonly reader: ReadSlot;
  readonly processId: number;
  readonly secretKey: number;

  /** The tracked parameters as one comparable string (see paramsSignature). */
  get paramsSignature(): string {
    return (this.paramsSig ??= paramsSignature(this.params));
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  /** Links a client: from now on server bytes go to it. */
  link(client: ServerClient): void {
    this.client = client;
    this.state = ServerState.active;
    this.linkedAt = Date.now();
  }

  /**
   * Writes client bytes to the server: `carry` (a withheld header, see FrameScanner), then
   * chunk[0, end). False when the server's socket buffer is full.
   */
  write(carry: Buffer | null, chunk: Buffer, end: number): boolean {
    if (carry !== null) writeView(this.socket, carry, 0, carry.length);
    return writeView(this.socket, chunk, 0, end);
  }

  /** Writes buffers pgrelay owns (requests held while the client waited), in one go. */
  writeBuffers(chunks: readonly Buffer[]): boolean {
    this.socket.cork();
    let ok = true;
    for (const c of chunks) ok = this.socket.write(c);
    this.socket.uncork();
    return ok;
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /**
   * Runs one of pgrelay's own simple queries; resolves at ReadyForQuery. Rejects with a
   * ServerQueryError when the server answered with an error, with a plain Error when the
   * connection is gone. Past server_cleanup_timeout the connection is closed: a server that does
   * not answer is in a state nobody knows (ignoring messages until a Sync, stuck on a lock).
   */
  runInternal(sql: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.state === ServerState.closed) {
        reject(new Error(`server connection closed: ${this.closeReason ?? ''}`));
        return;
      }
      this.state = ServerState.internal;
      const timeoutMs = this.cleanupTimeoutMs();
      let timer: NodeJS.Timeout | null = null;
      if (timeoutMs > 0) {
        timer = setTimeout(() => this.close(`server_cleanup_timeout: no answer to "${sql.length > 40 ? sql.slice(0, 40) + '...' : sql}" within ${timeoutMs} ms`), timeoutMs);
        timer.unref();
      }
      this.internal = { resolve, reject, error: null, timer };
      this.socket.write(serialize.query(sql));
    });
  }

  /** Ends an internal query phase: the connection is linked again (client) or idle. */
  endInternal(): void {
    if (this.state === ServerState.internal) this.state = this.client !== null ? ServerState.active : ServerState.idle;
  }

  /** Hands the server back to its pool; unclean servers are closed by the pool. */
  releaseToPool(clean: boolean): void {
    this.onRelease(this, clean && this.state !== ServerState.closed);
  }

  /**
   * Detaches the client (on release or when the client goes away). A pause for that client's full
   * socket ends with the link: the client's 'drain' no longer reaches this server, and whoever
   * uses it next (another client, a ROLLBACK of pgrelay's own) must be able to read its answer.
   */
  unlink(): void {
    this.client = null;
    if (this.state !== ServerState.closed) {
      this.state = ServerState.idle;
      if (this.socket.isPaused()) this.socket.resume();
    }
  }

  close(reason: string): void {
    if (this.state === ServerState.closed) return;
    this.closeReason = reason;
    this.state = ServerState.closed;
    // Terminate lets the backend exit cleanly instead of logging an unexpected EOF.
    if (this.socket.writable) this.socket.end(serialize.end());
    this.socket.destroySoon?.();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish(reason, true);
  }

  private onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    const end = this.scanner.scan(chunk);
    if (this.scanner.stopped) return; // a bad length: onBadLength closed us
    const client = this.client;
    if (client !== null && this.state === ServerState.active && (end > 0 || this.scanner.carry !== null)) {
      if (!client.forwardFromServer(this.scanner.carry, chunk, end)) this.socket.pause();
    }
    if (this.releaseDue) {
      this.releaseDue = false;
      const c = this.client;
      this.unlink();
      if (this.resetOnRelease === '') {
        this.onRelease(this, true);
      } else {
        // server_reset_query_always: clean the session before anyone else can get it.
        this.runInternal(this.resetOnRelease).then(
          () => {
            this.endInternal();
            this.onRelease(this, this.txStatus === TxStatus.Idle);
          },
          () => this.onRelease(this, false),
        );
      }
      c?.onReleased();
    }
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
          if (q.timer !== null) clearTimeout(q.timer);
          if (q.error !== null) q.reject(q.error);
          else q.resolve();
          return;
        }
        const client = this.client;
        if (client === null) return;
        if (client.outstanding > 0) client.outstanding--;
        client.txStatus = status;
        // The release rule, written once: in transaction pooling the server goes back to the
        // pool when ReadyForQuery says 'I' (no transaction open), every request the client sent
        // has been answered (pipelined Syncs/Queries counted in, ReadyForQuery counted out), no
        // extended-protocol message was sent since the last Sync (P/B/E with its Sync still to
        // come belongs to this client: whoever sent the next Sync would commit it), and no COPY
        // is open. Session pooling keeps the link until the client leaves.
        if (client.transactionPooling && status === TxStatus.Idle && client.outstanding === 0 && !client.unsynced && !this.copyIn) {
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
      case Backend.CopyBothResponse:
        this.copyIn = true;
        return;
    }
  }

  onBadLength(type: number, length: number): void {
    this.close(`server sent a message of type ${String.fromCharCode(type)} with invalid length ${length}`);
    const c = this.client;
    this.unlink();
    c?.onServerLost('server sent an invalid message');
  }

  private lost(reason: string): void {
    if (this.state === ServerState.closed) return;
    this.state = ServerState.closed;
    this.closeReason = reason;
    this.socket.destroy();
    const c = this.client;
    this.client = null;
    this.finish(reason, false);
    c?.onServerLost(reason, this.fatalForwarded);
  }

  private finish(reason: string, byUs: boolean): void {
    const q = this.internal;
    this.internal = null;
    if (q?.timer) clearTimeout(q.timer);
    q?.reject(new Error(reason));
    this.onClosed(this, reason, byUs);
  }
}
