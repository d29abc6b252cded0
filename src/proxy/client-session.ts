// One client connection after its socket is accepted: the login (client-login.ts), then the
// forwarding state machine that borrows a server per transaction (or per session), holds
// requests while it waits for one, and decides what a client is told when its server is lost.
// Beneath it: client-endpoint.ts (identity, writes, counters), login-outcome.ts, request-tracking.ts.
//
// The invariant: a client only ever sees what PostgreSQL itself could have sent on one
// connection. It never gets another client's replies (a server is shared only at a protocol
// boundary, see server-conn.ts), and a client that believes it is inside a transaction is never
// told 'I': when its server is lost it gets a FATAL, as a backend crash would give it.

import type net from 'node:net';
import { ClientProtocol, type ProtocolEvents } from './client-protocol.js';
import { ClientState, MAX_LINK_ATTEMPTS, type CloseOptions } from './client-state.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import { ClientEndpoint } from './client-endpoint.js';
import { beginRead, endRead, readClock } from './read-clock.js';
import { attachClientSocket, endClientSocket, upgradeClientSocket, type SocketOwner } from './client-socket.js';
import type { ClientTls } from '../tls/tls-contexts.js';
import { ClientLogin, type LoginOutcome } from './client-login.js';
import { adoptPoolLogin, loginFailure, openConsoleLogin } from './login-outcome.js';
import { HeldRequests } from './held-requests.js';
import { sendCancel } from './cancel.js';
import { linkQuery, prepareLinked, recordSettings, returnAfterDeparture } from './server-handoff.js';
import { evictionCloses, type FrameStep } from './client-statements.js';
import { drainFakes, needsServer, renderStep, writeSpliced, type Spliced } from './request-tracking.js';
import { answerToLoss, failRequests, lossSite, LossAnswer } from './loss-policy.js';
import type { PoolServer, PoolWaiter } from '../pool/pool-contract.js';
import type { CancelTarget, ConsoleLink, ProxyContext } from './context.js';
import type { ServerConn } from './server-conn.js';
import type { ServerClient, ServerLoss } from './server-client.js';

export class ClientSession extends ClientEndpoint implements PoolWaiter, ServerClient, ProtocolEvents, CancelTarget, SocketOwner {
  state: ClientState = ClientState.login;
  server: ServerConn | null = null;
  readonly protocol: ClientProtocol;
  /** PoolWaiter: when it joined the pool's queue (0 when not waiting). */
  waitingSince = 0;

  /** The login until it is over; dropped then (an idle client should cost as little as possible). */
  private login: ClientLogin | null;
  private console: ConsoleLink | null = null;
  private readonly held = new HeldRequests();
  /** Servers tried for the request now waiting (see MAX_LINK_ATTEMPTS). */
  private linkAttempts = 0;
  /** The client's socket is gone while its requests wait for a server (see holdingRequests). */
  private departed = false;
  /**
   * The current read, cut around frames that name a statement (prepared-statement tracking):
   * views of the read and steps, in order. Empty for reads with none, which go out whole.
   */
  private readonly outbox: Spliced = [];

  constructor(
    socket: net.Socket,
    ctx: ProxyContext,
    /** Called once when the session is gone, for the listener's bookkeeping. */
    private readonly onGone: (client: ClientSession) => void,
  ) {
    super(socket, ctx);
    this.protocol = new ClientProtocol(ctx.config.settings.maxPacketSize, this);
    attachClientSocket(socket, this);
    this.login = new ClientLogin(this, ctx);
    this.login.run().then(
      (outcome) => this.onLoggedIn(outcome),
      (err: unknown) => this.failLogin(err),
    );
  }

  /** LoginHost: answers the SSLRequest and swaps in the TLS socket (client-socket.ts). */
  async startTls(tls: ClientTls): Promise<void> {
    this.socket = await upgradeClientSocket(this.socket, this, tls);
  }

  /** SocketOwner: a server paused for this client's full socket may be read again. */
  onDrain(): void {
    this.server?.resumeReading();
  }

  /** SocketOwner */
  onSocketError(err: Error): void {
    this.close(Disconnect.ClientSocketError, err.message);
  }

  /** LoginHost: the login stops once the connection is gone. */
  get closed(): boolean {
    return this.state === ClientState.closed;
  }
  /** Bytes read during login and not yet handed on. */
  get loginBufferedBytes(): number {
    return this.login?.bufferedBytes ?? 0;
  }

  /** The one place the state changes; entering a state does what that state needs. */
  private setState(next: ClientState): void {
    this.state = next;
    switch (next) {
      case ClientState.idle:
        // Between transactions: read the next request (a held-back read or a full server is over).
        if (this.socket.isPaused()) this.socket.resume();
        return;
      case ClientState.login:
      case ClientState.waiting:
      case ClientState.linking:
      case ClientState.active:
      case ClientState.console:
      case ClientState.closed:
        return;
      default: {
        const never: never = next;
        throw new Error(`unknown client state ${String(never)}`);
      }
    }
  }

  // ---- login -------------------------------------------------------------------------------

  private onLoggedIn(outcome: LoginOutcome): void {
    if (this.state === ClientState.closed) return;
    switch (outcome.kind) {
      case 'cancel':
        this.close(Disconnect.CancelRequest, '', { counted: false, byClient: true });
        return;
      case 'console': {
        this.console = openConsoleLogin(this, outcome, this.ctx);
        this.setState(ClientState.console);
        const early = this.login!.drain();
        this.login = null;
        if (early.length > 0) this.console.onData(early);
        return;
      }
      case 'pool': {
        adoptPoolLogin(this, outcome, this.ctx);
        this.setState(ClientState.idle);
        const early = this.login!.drain();
        this.login = null;
        if (early.length > 0) this.onForwardData(early, early.length);
        return;
      }
    }
  }

  private failLogin(err: unknown): void {
    if (this.state === ClientState.closed) return;
    if (this.login !== null) {
      const { user, database } = this.login.who;
      this.user = user;
      this.database = database;
    }
    this.fatal(loginFailure(this, err, this.ctx));
  }

  // ---- forwarding --------------------------------------------------------------------------

  /** SocketOwner: each read, chunk[0, len), in the shared read buffer: valid only during this call. */
  onData(chunk: Buffer, len: number): void {
    switch (this.state) {
      case ClientState.login:
        this.login!.push(chunk.subarray(0, len));
        return;
      case ClientState.console:
        this.console!.onData(Buffer.from(chunk.subarray(0, len)));
        return;
      default:
        this.onForwardData(chunk, len);
    }
  }

  /** Bytes to forward: chunk[0, len). */
  private onForwardData(chunk: Buffer, len: number): void {
    if (this.state === ClientState.closed) return;
    beginRead();
    this.ctx.stats.bytesFromClients += len;
    if (this.entry !== null) this.entry.pool.stats.bytesReceived += len;
    this.lastActivity = this.ctx.clock.now;
    const scanner = this.protocol.scanner;
    const end = scanner.scan(chunk, len);
    const carry = scanner.carry;
    if (this.outbox.length > 0) {
      this.onSplicedData(carry, chunk, scanner.from, end);
    } else if (this.state === ClientState.active) {
      if (!this.server!.write(carry, chunk, end)) this.socket.pause();
    } else if (end > 0 || carry !== null) {
      if (this.state === ClientState.idle) {
        // A transaction begins. Usually a server is idle and acquire() links it at once, and
        // startForwarding() writes the request straight from the read buffer; only when the wait
        // outlives this read are the bytes copied.
        this.held.holdView(carry, chunk, end);
        this.beginWaiting();
      } else {
        this.held.hold(carry, chunk, end);
      }
      // Held bytes are served even when a Terminate follows them (see onTerminate).
      // Still no server (the acquire queued us, or we were already waiting): stop reading once
      // enough is held, so a client cannot make us buffer without bound.
      if (this.held.overLimit && !this.linked) this.socket.pause();
    }
    // A Flush or Sync in this read may let pgrelay's own answers at the head of the queue go.
    if (this.protocol.replies !== null && !this.closed) drainFakes(this.protocol.replies, this);
    if (scanner.stopped && !this.protocol.terminated) this.close(Disconnect.ClientClosed, 'client sent an invalid message length');
    endRead();
  }

  /** A transaction begins: a server is asked for; the held views are copied if none linked within this read. */
  private beginWaiting(): void {
    this.linkAttempts = 0;
    this.setState(ClientState.waiting);
    this.entry!.pool.acquire(this);
    this.held.copyView();
  }

  /** ProtocolEvents (tracking): bytes of this read that precede a frame naming a statement. */
  onRun(carry: Buffer | null, chunk: Buffer, from: number, to: number): void {
    if (carry !== null) this.outbox.push(carry);
    if (to > from) this.outbox.push(chunk.subarray(from, to));
  }

  /** ProtocolEvents (tracking): a frame naming a statement; its rendering takes its place. */
  onStatement(step: FrameStep): void {
    this.outbox.push(step);
  }

  /**
   * A read with frames that name a statement (the outbox holds what preceded the last of them):
   * rendered for the linked server now, or held, as views while the read lasts, for the server
   * the client gets.
   */
  private onSplicedData(carry: Buffer | null, chunk: Buffer, from: number, end: number): void {
    const box = this.outbox;
    if (carry !== null) box.push(carry);
    if (end > from) box.push(chunk.subarray(from, end));
    if (this.state === ClientState.active) {
      if (!writeSpliced(box, this.server!, this.protocol, this.ctx.stats)) this.socket.pause();
    } else if (needsServer(box)) {
      if (this.state === ClientState.idle) {
        // As in onForwardData: views while a server may link within this read.
        this.held.holdPiecesView(box);
        this.beginWaiting();
      } else {
        this.held.holdPieces(box);
      }
      box.length = 0;
      if (this.held.overLimit && !this.linked) this.socket.pause();
    } else {
      // Only Closes of names: pgrelay answers them, no server is needed.
      box.length = 0;
    }
  }

  /** renderStep for HeldRequests.flushTo: one closure per session that tracks, made at its first link. */
  private render: ((step: FrameStep, out: Buffer[]) => void) | null = null;

  /**
   * Whole requests the client sent are held for a server. PostgreSQL runs what it received before
   * a Terminate or an EOF, so these still go out when the client leaves (startForwarding() closes
   * the session once they are written); a partial message never does.
   */
  private get holdingRequests(): boolean {
    return (this.state === ClientState.waiting || this.state === ClientState.linking) && !this.held.isEmpty && (this.protocol.terminated || this.protocol.atBoundary);
  }

  /** ProtocolEvents */
  onTerminate(): void {
    if (this.holdingRequests) {
      this.socket.pause(); // nothing after a Terminate is read
      return;
    }
    this.close(Disconnect.ClientTerminated, '', { byClient: true });
  }

  /** SocketOwner */
  onSocketClosed(): void {
    if (this.holdingRequests) {
      this.departed = true;
      return;
    }
    this.close(Disconnect.ClientClosed, '', { byClient: true });
  }

  /** PoolWaiter: a server is ours. Run the check and the SET replay on it, then send what was held. */
  onServer(server: PoolServer): void {
    const s = server as ServerConn;
    if (this.state !== ClientState.waiting) {
      // We left the queue in the meantime (closed); give it straight back.
      s.release();
      return;
    }
    this.server = s;
    const settings = this.params.settingsRef;
    // A client with settings of its own (or a server carrying someone's) reads CommandComplete
    // tags: a SET, RESET or DISCARD ALL makes the server's record of them dirty.
    s.link(this, settings.values.size > 0, readClock());
    this.setState(ClientState.linking);
    this.linkAttempts++;
    const sql = linkQuery(this.ctx.config.settings, this.ctx.clock.now, s, this.params.values, this.params.signature, settings);
    if (sql === '') {
      this.startForwarding();
      return;
    }
    prepareLinked(s, sql).then((outcome) => {
      // The client may have left meanwhile (close() disposed of the server then).
      if (this.server !== s || this.state !== ClientState.linking) return;
      if (outcome.kind === 'ready') {
        recordSettings(s, settings);
        this.startForwarding();
        return;
      }
      this.server = null;
      // Refused: the client's own settings are wrong, and another server would refuse them too.
      if (outcome.kind === 'refused') this.fatal(outcome.error);
      else this.relink(outcome.error);
    });
  }

  /** Nothing of the client's reached the lost server: another one may serve it, a few times over. */
  private relink(failure: PgRelayError): void {
    if (this.state !== ClientState.linking) return;
    if (this.linkAttempts >= MAX_LINK_ATTEMPTS) {
      this.fatal(failure);
      return;
    }
    this.setState(ClientState.waiting);
    this.entry!.pool.acquire(this);
  }

  onWaitError(err: PgRelayError): void {
    this.fatal(err);
  }

  private startForwarding(): void {
    this.setState(ClientState.active);
    this.ctx.stats.transactions++;
    this.entry!.pool.stats.transactions++;
    const now = readClock();
    this.linkedAt = now;
    // A query held while the client waited starts now: the wait is counted as wait time.
    if (this.queryStartedAt !== 0) this.queryStartedAt = now;
    // With tracking, the server's statements beyond max_prepared_statements are closed first.
    const q = this.protocol.replies;
    const ok =
      q !== null
        ? this.held.flushTo(this.server!, (this.render ??= (step, out) => renderStep(this.server!, this.protocol, this.ctx.stats, step, out)), evictionCloses(this.server!.statements!, q, Math.max(1, this.ctx.config.settings.maxPreparedStatements), this.ctx.stats))
        : this.held.flushTo(this.server!);
    drainFakes(this.protocol.replies, this);
    if (this.protocol.terminated || this.departed) {
      // Written; the server is closed behind them (returnAfterDeparture), so PostgreSQL runs
      // them and ends.
      this.close(this.protocol.terminated ? Disconnect.ClientTerminated : Disconnect.ClientClosed);
      return;
    }
    if (!ok) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  /** Re-reads the state after calls that may change it (TS keeps an earlier narrowing). */
  private get linked(): boolean {
    return this.state === ClientState.active;
  }

  resumeReading(): void {
    if (this.state === ClientState.active) this.socket.resume();
  }

  /** The release rule fired: the server is back in the pool and this client is idle. */
  onReleased(): void {
    this.server = null;
    if (this.entry !== null) this.entry.pool.stats.transactionTimeUs += Math.round((readClock() - this.linkedAt) * 1000);
    if (this.state === ClientState.closed) return;
    this.setState(ClientState.idle);
  }

  onServerLost(loss: ServerLoss): void {
    this.server = null;
    this.queryStartedAt = 0;
    if (this.state === ClientState.closed) return;
    const lost = new PgRelayError(ErrorCode.ServerLost, `server connection lost: ${loss.reason}`);
    switch (answerToLoss(lossSite(this.state === ClientState.linking, loss.fatalForwarded, this.transactionPooling, this.protocol))) {
      case LossAnswer.Relink:
        this.relink(lost);
        return;
      case LossAnswer.End:
        this.close(Disconnect.ServerEndedSession, loss.reason);
        return;
      case LossAnswer.FailRequests:
        this.failOutstanding(lost);
        return;
      case LossAnswer.Fatal:
        this.fatal(lost);
        return;
    }
  }

  /**
   * Answers every unanswered request (at least one) with an ERROR and an idle ReadyForQuery, as
   * PostgreSQL would after a failed Sync segment, and makes the client idle again. Only for a
   * client whose last ReadyForQuery said 'I'.
   */
  private failOutstanding(err: PgRelayError): void {
    failRequests(this.socket, this.protocol.outstanding, err);
    this.protocol.answeredAll();
    this.setState(ClientState.idle);
  }

  /** CancelTarget: forward to the server running our work, or cancel requests still held for one. */
  cancel(): void {
    const s = this.server;
    if (s !== null && this.state === ClientState.active) {
      this.ctx.stats.cancelsForwarded++;
      sendCancel(s.address, s.processId, s.secretKey, this.ctx.config.settings.serverConnectTimeoutMs);
      return;
    }
    // Only whole requests, each with its Sync: answering a half-sent pipeline would give the
    // client a ReadyForQuery it did not ask for yet. They never reached PostgreSQL.
    if (this.state === ClientState.waiting && this.protocol.wholeRequestsPending && this.entry!.pool.cancelWait(this)) {
      this.ctx.stats.cancelsForwarded++;
      this.held.clear();
      this.failOutstanding(new PgRelayError(ErrorCode.QueryCanceled, 'canceling statement due to user request'));
      return;
    }
    this.ctx.stats.cancelsIgnored++;
  }

  // ---- ending ------------------------------------------------------------------------------

  /**
   * Ends the session. `code` is the stable reason counted in the disconnect metric; `detail`
   * goes to the log only. A session not ended by its client is ended gracefully so that a last
   * message (a FATAL) is not lost, and destroyed after 2 s at most.
   */
  close(code: string, detail = '', opts: CloseOptions = {}): void {
    if (this.state === ClientState.closed) return;
    const wasLoggedIn = this.state !== ClientState.login;
    this.setState(ClientState.closed);
    this.console?.onClose();
    this.login?.abort();
    this.ctx.cancelKeys.delete(this.processId);
    if (this.entry !== null) this.entry.pool.cancelWait(this);
    const server = this.server;
    this.server = null;
    if (server !== null) {
      const p = this.protocol;
      returnAfterDeparture(server, { outstanding: p.outstanding, unsynced: p.unsynced, atBoundary: p.atBoundary, transactionPooling: this.transactionPooling }, this.ctx.config.settings);
    }
    this.held.clear();
    this.outbox.length = 0;
    // The client's names go with it; what its unanswered messages did to a server is undone
    // (such a server is closed anyway: see returnAfterDeparture).
    this.protocol.replies?.clear();
    this.protocol.names?.clear();
    endClientSocket(this.socket, opts.byClient === true);
    if (opts.counted !== false) this.countDisconnect(code, detail, wasLoggedIn);
    this.onGone(this);
  }
}
