// What a client connection is and is counted for, beneath its state machine (client-session.ts):
// who it is (id, BackendKeyData, user, database, pool, session parameters), where it is (its
// addresses), what is written to it (server bytes, a FATAL), and what is counted for it.

import type net from 'node:net';
import { errorResponse } from '../protocol/backend-messages.js';
import { ErrorCode, errorDisconnect, PgRelayError } from '../errors.js';
import { ClientParams } from './session-params.js';
import { writeView } from './socket-io.js';
import { readClock } from './read-clock.js';
import { newBackendKey } from './cancel.js';
import type { ClientProtocol } from './client-protocol.js';
import type { PoolEntry } from '../pool/registry.js';
import type { ProxyContext } from './context.js';
import type { CloseOptions } from './client-state.js';

let nextClientId = 1;

export abstract class ClientEndpoint {
  readonly id = nextClientId++;
  readonly connectedAt: number;
  user = '';
  database = '';
  entry: PoolEntry | null = null;
  transactionPooling = true;
  readonly processId: number;
  readonly secretKey: number;
  /** Tracked session parameters: what is replayed on whichever server the client gets. */
  readonly params = new ClientParams();
  lastActivity: number;
  /** readClock() when the current server was linked, for transaction time stats. */
  linkedAt = 0;
  /** readClock() when the oldest unanswered Query or Sync was sent; 0 = none (SHOW STATS query time). */
  protected queryStartedAt = 0;
  /** Where the client stands in the protocol (what the release, departure and loss rules read). */
  abstract readonly protocol: ClientProtocol;
  abstract get closed(): boolean;
  /** Ends the session (client-session.ts). */
  abstract close(code: string, detail?: string, opts?: CloseOptions): void;

  constructor(
    /** LoginHost: the login reads and writes it until the session takes over; the TLS socket after startTls(). */
    public socket: net.Socket,
    protected readonly ctx: ProxyContext,
  ) {
    this.connectedAt = ctx.clock.now;
    this.lastActivity = this.connectedAt;
    // BackendKeyData of our own: the client's cancel key never names a real backend.
    const key = newBackendKey(ctx.cancelKeys);
    this.processId = key.processId;
    this.secretKey = key.secretKey;
  }

  // Addresses are read when asked for (SHOW CLIENTS, logs): node caches them on the socket, and
  // most clients never need them, which saves two syscalls per connection.
  get remoteAddress(): string {
    return this.socket.remoteAddress ?? '';
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? '';
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
  get pool(): PoolEntry['pool'] | null {
    return this.entry?.pool ?? null;
  }

  /** ServerClient: a parameter the client's own SET changed (ParameterStatus) becomes part of its session. */
  setParam(name: string, value: string): void {
    this.params.set(name, value);
  }

  /** ServerClient: server bytes, `carry` then chunk[from, end), straight from the server's read. */
  forwardFromServer(carry: Buffer | null, chunk: Buffer, from: number, end: number): boolean {
    const n = end - from + (carry !== null ? carry.length : 0);
    this.ctx.stats.bytesToClients += n;
    this.entry!.pool.stats.bytesSent += n;
    if (carry !== null) writeView(this.socket, carry, 0, carry.length);
    return writeView(this.socket, chunk, from, end);
  }

  /** ServerClient: bytes pgrelay made or cut out of the server's stream. */
  sendToClient(buf: Buffer): boolean {
    this.ctx.stats.bytesToClients += buf.length;
    this.entry!.pool.stats.bytesSent += buf.length;
    return writeView(this.socket, buf, 0, buf.length);
  }

  /** ServerClient (tracking): the server dropped every statement for this client (DEALLOCATE ALL, DISCARD ALL). */
  onStatementsDropped(seq: number): void {
    this.protocol.names?.dropBefore(seq);
  }

  /** ProtocolEvents: a Query or a Sync went out. Query time runs from the first unanswered one. */
  onQuery(): void {
    this.ctx.stats.queries++;
    if (this.entry !== null) this.entry.pool.stats.queries++;
    if (this.queryStartedAt === 0) this.queryStartedAt = readClock();
  }

  /** ServerClient: a ReadyForQuery answered a request; the next unanswered one starts now. */
  onAnswered(): void {
    if (this.queryStartedAt === 0) return;
    const now = readClock();
    if (this.entry !== null) this.entry.pool.stats.queryTimeUs += Math.round((now - this.queryStartedAt) * 1000);
    this.queryStartedAt = this.protocol.outstanding > 0 ? now : 0;
  }

  /** ProtocolEvents */
  onBadLength(type: number, length: number): void {
    const max = this.ctx.config.settings.maxPacketSize;
    this.fatal(
      length > max
        ? new PgRelayError(ErrorCode.PacketTooLarge, `message of type ${String.fromCharCode(type)} is ${length} bytes, over max_packet_size (${max})`)
        : new PgRelayError(ErrorCode.ProtocolViolation, `invalid message length ${length}`),
    );
  }

  /** Sends the error as a FATAL ErrorResponse and closes; the disconnect is counted under its code. */
  fatal(err: PgRelayError): void {
    if (this.closed) return;
    if (this.ctx.config.settings.logPoolerErrors) {
      this.ctx.logger.warn({ client: this.id, user: this.user, database: this.database, sqlstate: err.sqlstate, code: err.code }, `pooler error: ${err.message}`);
    }
    if (this.socket.writable) this.socket.write(errorResponse({ severity: 'FATAL', code: err.sqlstate, message: err.message }));
    this.close(errorDisconnect(err.code), err.message);
  }

  /** The disconnect metric, under its stable code, and the log line (log_disconnections). */
  protected countDisconnect(code: string, detail: string, wasLoggedIn: boolean): void {
    this.ctx.stats.countDisconnect('client', code);
    if (this.ctx.config.settings.logDisconnections && wasLoggedIn) {
      this.ctx.logger.info({ client: this.id, user: this.user, database: this.database, reason: code, detail }, 'client closed');
    }
  }
}
