// One client connection: login (startup packet, auth, ParameterStatus, BackendKeyData), then the
// forwarding state machine that borrows a server per transaction (or per session), replays
// session parameters, and cleans up after a client or server that leaves mid-transaction.

import type net from 'node:net';
import { randomInt } from 'node:crypto';
import { FrameScanner, frameModes, type FrameSink } from '../protocol/frame-scanner.js';
import { Frontend, TxStatus } from '../protocol/message-types.js';
import {
  AuthenticationOk,
  backendKeyData,
  EncryptionRefused,
  errorResponse,
  negotiateProtocolVersion,
  parameterStatus,
  ReadyForQueryIdle,
} from '../protocol/backend-messages.js';
import { PacketBuffer } from '../protocol/packet-buffer.js';
import { MAX_STARTUP_PACKET, ProtocolError, readStartupPacket } from '../protocol/readers.js';
import { SqlState } from '../protocol/sqlstate.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import { authenticateClient } from '../auth/client-auth.js';
import { paramsSignature, replaySql, sharedParams, STARTUP_KEYS, trackedName, TRACKED_PARAMS } from './session-params.js';
import { sendCancel } from './server-login.js';
import { loginStatusBlock } from './login-status.js';
import { readIntoShared, writeView } from './socket-io.js';
import type { PoolServer, PoolWaiter } from '../pool/pool.js';
import type { PoolEntry } from '../pool/registry.js';
import type { CancelTarget, ProxyContext } from './context.js';
import { ServerQueryError, type ServerClient, type ServerConn } from './server-conn.js';
import { ConsoleSession } from '../admin/console-session.js';
import { CONSOLE_DATABASE, consoleWelcome } from '../admin/console-login.js';

/** One state per lifecycle step; changed only by setState(). */
export const ClientState = {
  login: 'login',
  idle: 'idle',
  waiting: 'waiting',
  linking: 'linking',
  active: 'active',
  /** Logged in to the admin console (database "pgbouncer"): no server is ever linked. */
  console: 'console',
  closed: 'closed',
} as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

// Header-mode frames: what the release rule counts (requests, Syncs, extended-protocol messages
// waiting for a Sync) and Terminate, which is never forwarded. Bodies still travel blind.
export const CLIENT_FRAMES = frameModes(
  [Frontend.Query, Frontend.Sync, Frontend.FunctionCall, Frontend.Terminate, Frontend.Parse, Frontend.Bind, Frontend.Describe, Frontend.Execute, Frontend.Close, Frontend.Flush],
  [],
);
/** Largest password / SASL message accepted during login. */
const MAX_AUTH_MESSAGE = 64 * 1024;
/**
 * Bytes a client in login may have read and not yet handed on before its socket stops being read
 * (resumed when login needs more, or once it is over). Every login packet is bounded
 * (MAX_STARTUP_PACKET, MAX_AUTH_MESSAGE), so this only holds back what is pipelined behind them.
 */
const MAX_LOGIN_BYTES = 64 * 1024;
/**
 * Bytes held for a client waiting for a server before its socket stops being read. A request or a
 * few pipelined ones fit, so the common wait costs no pause/resume; a client streaming more than
 * this (a big COPY, a flood of pipelined queries) is held back by TCP instead of by our memory.
 */
const MAX_PENDING_BYTES = 64 * 1024;

let nextClientId = 1;

/** The session a client socket belongs to, for the shared socket listeners. */
const SESSION = Symbol('pgrelay.clientSession');
type OwnedSocket = net.Socket & { [SESSION]?: ClientSession };


export class ClientSession implements PoolWaiter, ServerClient, FrameSink, CancelTarget {
  readonly id = nextClientId++;
  state: ClientState = ClientState.login;
  readonly connectedAt: number;
  user = '';
  database = '';
  /** Tracked session parameters; after login possibly shared with other sessions (see setParam). */
  params = new Map<string, string>();
  private paramsShared = false;
  /** Requests (Query, Sync, FunctionCall) sent to a server and not yet answered by ReadyForQuery. */
  outstanding = 0;
  /** Extended-protocol messages were sent since the last Sync (see ServerClient.unsynced). */
  unsynced = false;
  /**
   * The status byte of the last ReadyForQuery this client was sent: what it believes about its
   * transaction. A client that believes it is inside one is never told 'I' by pgrelay.
   */
  txStatus: number = TxStatus.Idle;
  waitingSince = 0;
  lastActivity: number;
  transactionPooling = true;
  server: ServerConn | null = null;
  entry: PoolEntry | null = null;
  readonly processId: number;
  readonly secretKey: number;
  /** Bytes read while no server was linked (copies), written as soon as one is. */
  private pending: Buffer[] = [];
  /**
   * The read that started a transaction, while acquire() runs: a view of the shared read buffer
   * (chunk[0, inHandEnd) after inHandCarry), valid only until that read's callback returns.
   */
  private inHand: Buffer | null = null;
  private inHandEnd = 0;
  private inHandCarry: Buffer | null = null;
  private pendingBytes = 0;
  /** paramsSignature() of `params`, computed when first needed after a change. */
  private paramsSig: string | null = null;
  private terminated = false;
  private linkRetries = 0;
  /** When the current server was linked (ms), for transaction time stats. */
  linkedAt = 0;
  /** Login bytes; dropped once logged in (an idle client should cost as little as possible). */
  private login: PacketBuffer | null = new PacketBuffer();
  private wake: (() => void) | null = null;
  private readonly scanner: FrameScanner;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: ProxyContext,
    /** Called once when the session is gone, for the listener's bookkeeping. */
    private readonly onGone: (client: ClientSession) => void,
  ) {
    this.connectedAt = ctx.clock.now;
    this.lastActivity = this.connectedAt;
    this.scanner = new FrameScanner(CLIENT_FRAMES, ctx.config.settings.maxPacketSize, this);
    // BackendKeyData of our own: the client's cancel key never names a real backend.
    let pid = randomInt(1, 0x7fffffff);
    while (ctx.cancelKeys.has(pid)) pid = randomInt(1, 0x7fffffff);
    this.processId = pid;
    this.secretKey = randomInt(-0x80000000, 0x7fffffff);
    socket.setNoDelay(true);
    // Shared listeners that find the session on the socket: four closures per client add up
    // with ten thousand idle clients.
    (socket as OwnedSocket)[SESSION] = this;
    readIntoShared(socket, ClientSession.onSocketData);
    socket.on('drain', ClientSession.onSocketDrain);
    socket.on('error', ClientSession.onSocketError);
    socket.on('close', ClientSession.onSocketClose);
    this.runLogin().catch((err: unknown) => this.failLogin(err));
  }

  private static onSocketData(this: OwnedSocket, chunk: Buffer): void {
    this[SESSION]!.onData(chunk);
  }
  private static onSocketDrain(this: OwnedSocket): void {
    this[SESSION]!.server?.resumeReading();
  }
  private static onSocketError(this: OwnedSocket, err: Error): void {
    this[SESSION]!.close(`client socket error: ${err.message}`);
  }
  private static onSocketClose(this: OwnedSocket): void {
    this[SESSION]!.onSocketClosed();
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

  private setState(next: ClientState): void {
    this.state = next;
  }

  // ---- login -------------------------------------------------------------------------------

  private async runLogin(): Promise<void> {
    const settings = this.ctx.config.settings;
    let packet: Buffer;
    for (;;) {
      packet = await this.next(() => this.login!.takeUntyped(MAX_STARTUP_PACKET));
      const first = readStartupPacket(packet);
      if (first.kind === 'ssl' || first.kind === 'gssenc') {
        // No TLS or GSS encryption yet: 'N' tells the client to go on in plaintext.
        this.socket.write(EncryptionRefused);
        continue;
      }
      if (first.kind === 'cancel') {
        this.routeCancel(first.processId, first.secretKey);
        this.close('cancel request handled', true, true);
        return;
      }
      if (first.major !== 3) throw new PgRelayError(ErrorCode.ProtocolViolation, `unsupported frontend protocol ${first.major}.${first.minor}: server supports 3.0`, SqlState.FeatureNotSupported);
      const unrecognized = [...first.params.keys()].filter((k) => k.startsWith('_pq_.'));
      for (const k of unrecognized) first.params.delete(k);
      if (first.minor > 0 || unrecognized.length > 0) this.socket.write(negotiateProtocolVersion(0, unrecognized));
      this.acceptStartup(first.params);
      break;
    }
    if (this.ctx.registry.currentConfig.settings.maxClientConn > 0 && this.countClients() > settings.maxClientConn) {
      this.ctx.stats.clientsRejected++;
      throw new PgRelayError(ErrorCode.TooManyClients, `no more connections allowed (max_client_conn ${settings.maxClientConn})`);
    }
    if (this.database === CONSOLE_DATABASE) {
      await this.loginConsole();
      return;
    }
    // Authenticate first, then look at the database (PgBouncer's order): a client that has not
    // proved who it is learns nothing about which databases exist, and creates no pool.
    const scramKeys = await this.authenticate();
    // Held until the session ends (app's onGone detaches it): an attached pool is never retired.
    const entry = this.ctx.registry.attach(this.database, this.user);
    if (entry === undefined) throw new PgRelayError(ErrorCode.NoSuchDatabase, `no such database: ${this.database}`);
    if (scramKeys !== null) this.ctx.scramKeys.set(this.user, scramKeys);
    // AuthenticationOk goes out with the rest of the login reply (finishLogin): one write.
    this.entry = entry;
    // The pool's own copies of these strings, not one pair per client.
    if (entry.pool.user === this.user) this.user = entry.pool.user;
    if (entry.pool.database === this.database) this.database = entry.pool.database;
    this.transactionPooling = entry.mode === 'transaction';
    const loginParams = entry.loginParams ?? (await this.fetchLoginParams(entry));
    this.finishLogin(loginParams);
  }

  /**
   * The admin console: the same auth as any client, then only admin_users (every command) and
   * stats_users (SHOW only) get in. No server is involved, so it works during a pause.
   */
  private async loginConsole(): Promise<void> {
    const settings = this.ctx.config.settings;
    await this.authenticate();
    const admin = settings.adminUsers.includes(this.user);
    if (!admin && !settings.statsUsers.includes(this.user)) {
      throw new PgRelayError(ErrorCode.NoSuchUser, `user "${this.user}" is not allowed to connect to the admin console (admin_users / stats_users)`);
    }
    if (this.ctx.control === undefined) throw new PgRelayError(ErrorCode.ShuttingDown, 'admin console not available');
    const out = consoleWelcome(this.user, this.processId, this.secretKey);
    this.socket.cork();
    for (const b of out) this.socket.write(b);
    this.socket.uncork();
    this.console = new ConsoleSession(
      { write: (b) => this.socket.write(b), close: (reason) => this.close(reason) },
      this.ctx.control,
      { user: this.user, admin },
    );
    this.setState(ClientState.console);
    this.ctx.logger.info({ client: this.id, user: this.user, admin, addr: this.remoteAddress }, 'admin console login');
    const early = this.login!.drain();
    this.login = null;
    this.resumeAfterLogin();
    if (early.length > 0) this.console.onData(early);
  }
  private console: ConsoleSession | null = null;

  /**
   * The auth exchange for the startup packet's user. A refusal reaches the client as one 28P01
   * whatever the cause; the real reason is logged here, with the client's address, and nowhere else.
   */
  private async authenticate(): Promise<{ clientKey: Buffer; serverKey: Buffer } | null> {
    const outcome = await authenticateClient(
      { send: (m) => this.socket.write(m), nextMessage: () => this.next(() => this.login!.takeTyped(MAX_AUTH_MESSAGE)) },
      this.ctx.config.settings.authType,
      this.user,
      this.ctx.authSecrets.get(this.user),
    );
    if (outcome.ok) return outcome.scramKeys;
    this.ctx.logger.warn({ client: this.id, user: this.user, database: this.database, addr: this.remoteAddress, port: this.remotePort, reason: outcome.reason }, 'client authentication failed');
    throw outcome.error;
  }

  /** Bytes read during login and not yet handed on (at most about MAX_LOGIN_BYTES plus one read). */
  get loginBufferedBytes(): number {
    return this.login?.length ?? 0;
  }

  /** Login is over and its bytes are handed on: read again if the login cap had stopped reading. */
  private resumeAfterLogin(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  private acceptStartup(params: Map<string, string>): void {
    const user = params.get('user');
    if (user === undefined || user === '') throw new PgRelayError(ErrorCode.ProtocolViolation, 'no PostgreSQL user name specified in startup packet', SqlState.InvalidAuthorization);
    this.user = user;
    this.database = params.get('database') || user;
    if (params.has('replication') && params.get('replication') !== 'false' && params.get('replication') !== '0') {
      throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, 'replication connections are not supported by pgrelay', SqlState.FeatureNotSupported);
    }
    const ignored = new Set(this.ctx.config.settings.ignoreStartupParameters.map((p) => p.toLowerCase()));
    for (const [key, value] of params) {
      if (STARTUP_KEYS.has(key)) continue;
      const name = trackedName(key);
      if (name !== undefined) {
        this.params.set(name, value);
        continue;
      }
      // PgBouncer's rule: an untracked startup parameter would be lost when the client moves to
      // another server, so it is refused unless the operator chose to ignore it.
      if (!ignored.has(key.toLowerCase())) {
        throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, `unsupported startup parameter: ${key}`);
      }
    }
    if (this.ctx.config.settings.applicationNameAddHost) {
      const app = this.params.get('application_name') ?? '';
      this.params.set('application_name', `${app} - ${this.socket.remoteAddress ?? ''}:${this.socket.remotePort ?? ''}`);
    }
  }

  /** First client of a pool: borrow a server once to learn what it reports at login. */
  private fetchLoginParams(entry: PoolEntry): Promise<ReadonlyMap<string, string>> {
    return new Promise((resolve, reject) => {
      const probe: PoolWaiter = {
        waitingSince: 0,
        onServer: (server: PoolServer) => {
          const s = server as ServerConn;
          entry.loginParams ??= new Map(s.params);
          entry.pool.release(s, true);
          resolve(entry.loginParams);
        },
        onWaitError: (err) => reject(err),
      };
      this.loginProbe = probe;
      entry.pool.acquire(probe);
    }).finally(() => {
      this.loginProbe = null;
    }) as Promise<ReadonlyMap<string, string>>;
  }
  private loginProbe: PoolWaiter | null = null;

  private finishLogin(loginParams: ReadonlyMap<string, string>): void {
    if (this.state === ClientState.closed) return;
    // The client's view starts from what a server reports, with its own startup values on top.
    for (const name of TRACKED_PARAMS) {
      if (!this.params.has(name)) {
        const v = loginParams.get(name);
        if (v !== undefined) this.params.set(name, v);
      }
    }
    this.paramsSig = paramsSignature(this.params);
    this.params = sharedParams(this.paramsSig, this.params);
    this.paramsShared = true;
    // One buffer, one write syscall: AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery.
    this.socket.write(Buffer.concat([AuthenticationOk, loginStatusBlock(loginParams, this.params, this.paramsSig), backendKeyData(this.processId, this.secretKey), ReadyForQueryIdle]));
    this.ctx.cancelKeys.set(this.processId, this);
    this.setState(ClientState.idle);
    if (this.ctx.config.settings.logConnections) {
      this.ctx.logger.info({ client: this.id, user: this.user, database: this.database, addr: this.remoteAddress, port: this.remotePort }, 'client login');
    }
    const early = this.login!.drain();
    this.login = null;
    // Resumed before the bytes are handed on, so that a pause onForwardData() decides stands.
    this.resumeAfterLogin();
    if (early.length > 0) this.onForwardData(early);
  }

  private failLogin(err: unknown): void {
    if (this.state === ClientState.closed) return;
    const e = err instanceof PgRelayError ? err : err instanceof ProtocolError ? new PgRelayError(ErrorCode.ProtocolViolation, err.message) : new PgRelayError(ErrorCode.ProtocolViolation, (err as Error).message);
    this.fatal(e.sqlstate, e.message, `login failed: ${e.code}`);
  }

  /** Resolves with the next whole packet `take` can extract, waiting for more bytes as needed. */
  private async next(take: () => Buffer | null): Promise<Buffer> {
    for (;;) {
      const packet = take();
      if (packet !== null) return packet;
      if (this.state === ClientState.closed) throw new PgRelayError(ErrorCode.ProtocolViolation, 'client left during login');
      // A packet is incomplete, so more bytes are needed whatever the cap (packets are bounded).
      this.resumeAfterLogin();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  // ---- forwarding --------------------------------------------------------------------------

  /** Each read; `chunk` is a view of the shared read buffer, valid only during this call. */
  private onData(chunk: Buffer): void {
    if (this.state === ClientState.login) {
      // Login packets are few and small: copy them rather than reason about their lifetime.
      this.login!.push(Buffer.from(chunk));
      // A client may pipeline queries behind its login, which can wait long for a server (first
      // login during a pause): past the cap, TCP holds the rest, not our memory.
      if (this.login!.length > MAX_LOGIN_BYTES) this.socket.pause();
      const wake = this.wake;
      this.wake = null;
      wake?.();
      return;
    }
    if (this.state === ClientState.console) {
      this.console!.onData(Buffer.from(chunk));
      return;
    }
    this.onForwardData(chunk);
  }

  private onForwardData(chunk: Buffer): void {
    if (this.state === ClientState.closed) return;
    this.ctx.stats.bytesFromClients += chunk.length;
    if (this.entry !== null) this.entry.pool.stats.bytesReceived += chunk.length;
    this.lastActivity = this.ctx.clock.now;
    const end = this.scanner.scan(chunk);
    const carry = this.scanner.carry;
    if (this.state === ClientState.active) {
      if (!this.server!.write(carry, chunk, end)) this.socket.pause();
    } else if (end > 0 || carry !== null) {
      if (this.state === ClientState.idle) {
        // A transaction begins. Usually a server is idle and acquire() links it at once, and
        // startForwarding() writes the request straight from the read buffer; only when the wait
        // outlives this read are the bytes copied into `pending`.
        this.inHand = chunk;
        this.inHandEnd = end;
        this.inHandCarry = carry;
        this.setState(ClientState.waiting);
        this.entry!.pool.acquire(this);
        if (this.inHand !== null) this.holdInHand();
      } else {
        if (carry !== null) this.hold(carry);
        if (end > 0) this.hold(Buffer.from(chunk.subarray(0, end)));
      }
      // Held bytes are served even when a Terminate follows them (see onTerminate).
      // Still no server (the acquire queued us, or we were already waiting): stop reading once
      // enough is held, so a client cannot make us buffer without bound.
      if (this.pendingBytes > MAX_PENDING_BYTES && !this.linked) this.socket.pause();
    }
    if (this.scanner.stopped && !this.terminated) this.close('client sent an invalid message length');
  }

  /** The request that started the wait, if acquire() did not link a server at once: copy it. */
  private holdInHand(): void {
    const chunk = this.inHand!;
    const carry = this.inHandCarry;
    const end = this.inHandEnd;
    this.inHand = null;
    this.inHandCarry = null;
    if (carry !== null) this.hold(carry);
    if (end > 0) this.hold(Buffer.from(chunk.subarray(0, end)));
  }

  /** Keeps bytes read while no server is linked (pgrelay's own copies); written by startForwarding(). */
  private hold(b: Buffer): void {
    this.pending.push(b);
    this.pendingBytes += b.length;
  }

  onHeader(type: number): boolean {
    switch (type) {
      case Frontend.Terminate:
        this.terminated = true;
        // Terminate is never forwarded: the server belongs to the pool, not to this client.
        queueMicrotask(() => this.onTerminate());
        return false;
      case Frontend.Sync:
        // Sync ends the pipeline: one ReadyForQuery will answer it.
        this.unsynced = false;
        this.outstanding++;
        return true;
      case Frontend.Query:
        this.outstanding++;
        this.ctx.stats.queries++;
        if (this.entry !== null) this.entry.pool.stats.queries++;
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

  /**
   * Whole requests the client sent are held for a server. PostgreSQL runs what it received before
   * a Terminate or an EOF, so these still go out when the client leaves (startForwarding() closes
   * the session once they are written); a partial message never does.
   */
  private get holdingRequests(): boolean {
    return (this.state === ClientState.waiting || this.state === ClientState.linking) && this.pending.length > 0 && (this.terminated || this.scanner.atBoundary);
  }

  private onTerminate(): void {
    if (this.holdingRequests) {
      this.socket.pause(); // nothing after a Terminate is read
      return;
    }
    this.close('client terminated', false, true);
  }

  private onSocketClosed(): void {
    if (this.holdingRequests) {
      this.departed = true;
      return;
    }
    this.close('client closed the connection', false, true);
  }
  /** The client's socket is gone while its requests wait for a server (see holdingRequests). */
  private departed = false;

  onBadLength(type: number, length: number): void {
    const tooBig = length > this.ctx.config.settings.maxPacketSize;
    this.fatal(
      tooBig ? SqlState.ProgramLimitExceeded : SqlState.ProtocolViolation,
      tooBig ? `message of type ${String.fromCharCode(type)} is ${length} bytes, over max_packet_size (${this.ctx.config.settings.maxPacketSize})` : `invalid message length ${length}`,
      tooBig ? 'max_packet_size exceeded' : 'invalid message length',
    );
  }

  /** PoolWaiter: a server is ours. Replay session parameters, then send what was held. */
  onServer(server: PoolServer): void {
    const s = server as ServerConn;
    if (this.state !== ClientState.waiting) {
      // We left the queue in the meantime (closed); give it straight back.
      s.releaseToPool(true);
      return;
    }
    this.server = s;
    s.link(this);
    this.setState(ClientState.linking);
    const settings = this.ctx.config.settings;
    // server_check_query: a server idle longer than server_check_delay proves it is alive first
    // (PgBouncer's rule), folded into the same round trip as the parameter replay.
    const check = settings.serverCheckQuery.trim() !== '' && this.ctx.clock.now - s.idleSince >= settings.serverCheckDelayMs ? settings.serverCheckQuery.trim().replace(/;*$/, ';') : '';
    this.paramsSig ??= paramsSignature(this.params);
    const replay = this.paramsSig === s.paramsSignature ? '' : replaySql(this.params, s.params);
    const sql = (check === ';' ? '' : check) + replay;
    if (sql === '') {
      this.startForwarding();
      return;
    }
    s.runInternal(sql).then(
      () => {
        s.endInternal();
        if (this.server === s && this.state === ClientState.linking) this.startForwarding();
      },
      (err: Error) => {
        if (this.server !== s) return;
        this.server = null;
        s.unlink();
        if (err instanceof ServerQueryError) {
          // The server answered: it is in sync, and the client's own settings are what it
          // refused (a bad client_encoding, an unknown option). Another server would refuse them
          // too, so the client learns why, as PostgreSQL would tell it at startup.
          s.endInternal();
          s.releaseToPool(s.txStatus === TxStatus.Idle);
          this.fatal(err.sqlstate || SqlState.ConnectionFailure, `could not apply the session's settings on a server: ${err.message}`, 'parameter replay refused');
          return;
        }
        s.close(`server check or parameter replay failed: ${err.message}`);
        s.releaseToPool(false);
        // Nothing of the client's has reached that server yet, so another one may serve it.
        if (this.linkRetries++ < 3 && this.state === ClientState.linking) {
          this.setState(ClientState.waiting);
          this.entry!.pool.acquire(this);
          return;
        }
        this.fatal(SqlState.ConnectionFailure, `could not prepare a server connection: ${err.message}`, 'server check or parameter replay failed');
      },
    );
  }

  onWaitError(err: PgRelayError): void {
    this.fatal(err.sqlstate, err.message, err.code);
  }

  private startForwarding(): void {
    this.linkRetries = 0;
    this.setState(ClientState.active);
    this.ctx.stats.transactions++;
    this.entry!.pool.stats.transactions++;
    this.linkedAt = Date.now();
    const pending = this.pending;
    let ok = true;
    if (pending.length === 1) ok = this.server!.write(null, pending[0]!, pending[0]!.length);
    else if (pending.length > 1) ok = this.server!.writeBuffers(pending);
    // The array is reused: one per client instead of one per transaction.
    pending.length = 0;
    this.pendingBytes = 0;
    const inHand = this.inHand;
    if (inHand !== null) {
      // Linked during the read that asked for it: write the request from the read buffer.
      ok = this.server!.write(this.inHandCarry, inHand, this.inHandEnd);
      this.inHand = null;
      this.inHandCarry = null;
    }
    if (this.terminated || this.departed) {
      // Written; the server is closed behind them (returnServer), so PostgreSQL runs them and ends.
      this.close(this.terminated ? 'client terminated' : 'client closed the connection');
      return;
    }
    if (!ok) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  /** Re-reads the state after calls that may change it (TS keeps an earlier narrowing). */
  private get linked(): boolean {
    return this.state === ClientState.active;
  }

  setParam(name: string, value: string): void {
    if (this.paramsShared) {
      // Copy on write: other sessions may hold the same map.
      this.params = new Map(this.params);
      this.paramsShared = false;
    }
    this.params.set(name, value);
    this.paramsSig = null;
  }

  forwardFromServer(carry: Buffer | null, chunk: Buffer, end: number): boolean {
    this.ctx.stats.bytesToClients += end;
    this.entry!.pool.stats.bytesSent += end;
    if (carry !== null) writeView(this.socket, carry, 0, carry.length);
    return writeView(this.socket, chunk, 0, end);
  }

  resumeReading(): void {
    if (this.state === ClientState.active) this.socket.resume();
  }

  /** The release rule fired: the server is back in the pool and this client is idle. */
  onReleased(): void {
    this.server = null;
    if (this.entry !== null) this.entry.pool.stats.transactionTimeUs += (Date.now() - this.linkedAt) * 1000;
    if (this.state === ClientState.closed) return;
    this.setState(ClientState.idle);
    if (this.socket.isPaused()) this.socket.resume();
  }

  onServerLost(reason: string, fatalForwarded = false): void {
    this.server = null;
    if (this.state === ClientState.closed) return;
    if (this.state === ClientState.linking) {
      // Lost before any of the client's bytes were sent: wait for another server.
      if (this.linkRetries++ < 3) {
        this.setState(ClientState.waiting);
        this.entry!.pool.acquire(this);
      } else {
        this.fatal(SqlState.ConnectionFailure, `server connection lost: ${reason}`, 'server connection lost');
      }
      return;
    }
    if (fatalForwarded) {
      // The client already has the server's FATAL; libpq and friends treat the connection as
      // gone after that, so end it rather than answer again.
      this.close(`server ended the session: ${reason}`);
      return;
    }
    const message = `server connection lost: ${reason}`;
    // The one case where the client may go on: transaction pooling, it believed no transaction
    // was open (its last ReadyForQuery said 'I'), and every request it sent is whole and
    // complete (Syncs included). Its unanswered autocommit statements failed; an idle
    // ReadyForQuery after each error is then exactly what PostgreSQL would say.
    //
    // Everything else closes the client with a FATAL, as PostgreSQL's own backend death would.
    // Inside BEGIN ('T' or 'E') an 'I' would turn the rest of the client's transaction into
    // autocommit statements: part 2 committed, part 1 lost. pgrelay cannot stand in for the lost
    // transaction either (its savepoints, its ROLLBACK TO, its prepared statements are gone), so
    // the honest answer is the one a backend crash gives.
    if (this.transactionPooling && this.txStatus === TxStatus.Idle && this.outstanding > 0 && !this.unsynced && this.scanner.atBoundary) {
      this.failOutstanding(SqlState.ConnectionFailure, message);
      return;
    }
    this.fatal(SqlState.ConnectionFailure, message, 'server connection lost');
  }

  /**
   * Answers every unanswered request (at least one) with an ERROR and an idle ReadyForQuery, as
   * PostgreSQL would after a failed Sync segment, and makes the client idle again.
   */
  private failOutstanding(code: string, message: string): void {
    const err = errorResponse({ severity: 'ERROR', code, message });
    this.socket.cork();
    for (let i = 0; i < Math.max(this.outstanding, 1); i++) {
      this.socket.write(err);
      this.socket.write(ReadyForQueryIdle);
    }
    this.socket.uncork();
    this.outstanding = 0;
    this.txStatus = TxStatus.Idle;
    this.setState(ClientState.idle);
    this.socket.resume();
  }

  // ---- cancel ------------------------------------------------------------------------------

  private routeCancel(processId: number, secretKey: number): void {
    const target = this.ctx.cancelKeys.get(processId);
    if (target === undefined || target.secretKey !== secretKey) {
      this.ctx.stats.cancelsIgnored++;
      return;
    }
    target.cancel();
  }

  /** CancelTarget: forward to the server running our work, with that server's key. */
  cancel(): void {
    const s = this.server;
    if (s !== null && this.state === ClientState.active) {
      this.ctx.stats.cancelsForwarded++;
      sendCancel(s.address, s.processId, s.secretKey, this.ctx.config.settings.serverConnectTimeoutMs);
      return;
    }
    // Only whole requests, each with its Sync: answering a half-sent pipeline would give the
    // client a ReadyForQuery it did not ask for yet.
    if (this.state === ClientState.waiting && this.outstanding > 0 && !this.unsynced && this.scanner.atBoundary && this.entry!.pool.cancelWait(this)) {
      // A request still held for a server never reached PostgreSQL: answer it as canceled.
      this.ctx.stats.cancelsForwarded++;
      this.pending.length = 0;
      this.pendingBytes = 0;
      this.failOutstanding(SqlState.QueryCanceled, 'canceling statement due to user request');
      return;
    }
    this.ctx.stats.cancelsIgnored++;
  }

  // ---- ending ------------------------------------------------------------------------------

  /** Sends a FATAL ErrorResponse and closes. */
  fatal(sqlstate: string, message: string, reason: string): void {
    if (this.state === ClientState.closed) return;
    if (this.ctx.config.settings.logPoolerErrors) {
      this.ctx.logger.warn({ client: this.id, user: this.user, database: this.database, sqlstate, reason }, `pooler error: ${message}`);
    }
    if (this.socket.writable) this.socket.write(errorResponse({ severity: 'FATAL', code: sqlstate, message }));
    this.close(reason);
  }

  /**
   * Ends the session. `done` says the client ended it (Terminate, EOF, a CancelRequest): once
   * everything written has reached the kernel, the socket closes at once; otherwise it is ended
   * gracefully so that a last message (a FATAL) is not lost, and destroyed after 2 s at most.
   */
  close(reason: string, quiet = false, done = false): void {
    if (this.state === ClientState.closed) return;
    const wasLoggedIn = this.state !== ClientState.login;
    this.setState(ClientState.closed);
    this.console?.onClose();
    this.wake?.();
    this.wake = null;
    this.ctx.cancelKeys.delete(this.processId);
    if (this.loginProbe !== null) this.entry?.pool.cancelWait(this.loginProbe);
    if (this.entry !== null) this.entry.pool.cancelWait(this);
    const server = this.server;
    this.server = null;
    if (server !== null) this.returnServer(server);
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.inHand = null;
    this.inHandCarry = null;
    if (done && this.socket.writableLength === 0) {
      // Nothing left to send and nothing more to read: no shutdown round trip, no timer.
      this.socket.destroy();
    } else {
      this.socket.end();
      this.socket.destroySoon?.();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    if (!quiet) {
      this.ctx.stats.countDisconnect(`client: ${reason}`);
      if (this.ctx.config.settings.logDisconnections && wasLoggedIn) {
        this.ctx.logger.info({ client: this.id, user: this.user, database: this.database, reason }, 'client closed');
      }
    }
    this.onGone(this);
  }

  /**
   * The client left while linked. A server is reused only when it stands at a protocol boundary
   * (see server-conn.ts): every request answered, no extended-protocol message since the last
   * Sync, no COPY, none of pgrelay's own queries running. Then an open transaction is rolled back
   * (ROLLBACK cannot commit anything) under server_cleanup_timeout. Anything else is closed:
   * PostgreSQL rolls back what the backend had not committed when the connection ends.
   */
  private returnServer(server: ServerConn): void {
    server.unlink();
    const atBoundary = this.outstanding === 0 && !this.unsynced && !server.copyIn && this.scanner.atBoundary && server.state !== 'internal';
    if (!atBoundary) {
      server.close(this.unsynced ? 'client left inside an unsynced pipeline' : 'client left mid-request');
      server.releaseToPool(false);
      return;
    }
    const reset = server.txStatus !== TxStatus.Idle ? 'ROLLBACK' : this.transactionPooling ? '' : this.resetQuery();
    if (reset === '') {
      server.releaseToPool(true);
      return;
    }
    server.runInternal(reset).then(
      () => {
        server.endInternal();
        server.releaseToPool(server.txStatus === TxStatus.Idle);
      },
      () => server.releaseToPool(false),
    );
  }

  private resetQuery(): string {
    return this.ctx.config.settings.serverResetQuery;
  }

  private countClients(): number {
    return this.ctx.clientCount();
  }
}
