// A client's login, from its first byte to the ReadyForQuery that opens its session: startup
// packet (answering SSLRequest with TLS per client_tls_sslmode and GSSENCRequest with 'N',
// routing a CancelRequest), protocol negotiation, startup parameters, authentication (auth_type,
// or the auth_hba_file line that matches; secrets from auth_file or auth_query), and the database
// and pool it may use. It resolves with what the session needs and never sees the session itself.

import type net from 'node:net';
import { AuthenticationOk, backendKeyData, EncryptionRefused, negotiateProtocolVersion, ReadyForQueryIdle } from '../protocol/backend-messages.js';
import { PacketBuffer } from '../protocol/packet-buffer.js';
import { MAX_STARTUP_PACKET, readStartupPacket } from '../protocol/readers.js';
import { SqlState } from '../protocol/sqlstate.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import { authenticateClient } from '../auth/client-auth.js';
import { paramsSignature, settingsSignature, sharedParams, STARTUP_KEYS, trackedName, TRACKED_PARAMS } from './session-params.js';
import { parseOptions, validSettingName } from './startup-options.js';
import { loginStatusBlock } from './login-status.js';
import { routeCancel } from './cancel.js';
import { CONSOLE_DATABASE } from '../control/contract.js';
import type { ProxyContext, ScramKeys } from './context.js';
import type { PoolServer, PoolWaiter } from '../pool/pool-contract.js';
import type { PoolEntry } from '../pool/registry.js';
import type { ServerConn } from './server-conn.js';
import { atLeast, type ClientTls } from '../tls/tls-contexts.js';
import { isEncrypted } from './socket-io.js';
import { chooseAuthMethod, type ClientConnection } from '../auth/auth-method.js';
import type tls from 'node:tls';
import { TlsMode } from '../config/types.js';

/** Largest password / SASL message accepted during login. */
const MAX_AUTH_MESSAGE = 64 * 1024;
/**
 * Bytes a client in login may have read and not yet handed on before its socket stops being read
 * (resumed when login needs more, or once it is over). Every login packet is bounded
 * (MAX_STARTUP_PACKET, MAX_AUTH_MESSAGE), so this only holds back what is pipelined behind them.
 */
const MAX_LOGIN_BYTES = 64 * 1024;

/** What the login needs of its connection. */
export interface LoginHost {
  /** The client's connection: the accepted socket, or the TLS socket over it after startTls(). */
  readonly socket: net.Socket;
  /**
   * Answers an SSLRequest with 'S' and runs the TLS handshake; from then on `socket` is the TLS
   * socket and every read and write goes through it.
   */
  startTls(tls: ClientTls): Promise<void>;
  /** For logs. */
  readonly id: number;
  /** The BackendKeyData pgrelay gives this client. */
  readonly processId: number;
  readonly secretKey: number;
  /** True once the connection is gone: the login stops. */
  readonly closed: boolean;
}

export type LoginOutcome =
  /** A CancelRequest was routed; the connection ends. */
  | { readonly kind: 'cancel' }
  /** Logged in to the admin console; the welcome is not sent yet (the console sends it). */
  | { readonly kind: 'console'; readonly user: string; readonly admin: boolean }
  /** Logged in to a pool; the login reply (through ReadyForQuery) has been written. */
  | {
      readonly kind: 'pool';
      readonly user: string;
      readonly database: string;
      readonly entry: PoolEntry;
      /** Tracked session parameters, possibly shared with other sessions (copy before changing). */
      readonly params: Map<string, string>;
      readonly paramsSig: string;
      /** Settings PostgreSQL does not report (from `options` and other startup parameters), replayed by pgrelay. */
      readonly settings: ReadonlyMap<string, string>;
    };

export class ClientLogin {
  private readonly input = new PacketBuffer();
  private wake: (() => void) | null = null;
  /** A waiter borrowing a server to learn its login parameters (first client of a pool). */
  private probe: { entry: PoolEntry; waiter: PoolWaiter; abandon(err: Error): void } | null = null;
  private user = '';
  private database = '';
  private readonly params = new Map<string, string>();
  /** Startup settings that are not tracked parameters (lower-case names). */
  private readonly settings = new Map<string, string>();

  constructor(
    private readonly host: LoginHost,
    private readonly ctx: ProxyContext,
  ) {}

  /** Bytes read during login and not yet handed on (at most about MAX_LOGIN_BYTES plus one read). */
  get bufferedBytes(): number {
    return this.input.length;
  }

  /** A read during login: `chunk` is a view of the shared read buffer, so it is copied. */
  push(chunk: Buffer): void {
    this.input.push(Buffer.from(chunk));
    // A client may pipeline queries behind its login, which can wait long for a server (first
    // login during a pause): past the cap, TCP holds the rest, not our memory.
    if (this.input.length > MAX_LOGIN_BYTES) this.host.socket.pause();
    this.wakeUp();
  }

  /** The connection is gone: stop waiting for bytes or for a server. */
  abort(): void {
    this.wakeUp();
    const probe = this.probe;
    if (probe !== null) {
      // Out of the queue, and the login's wait ends (it detaches the pool it attached).
      probe.entry.pool.cancelWait(probe.waiter);
      probe.abandon(new PgRelayError(ErrorCode.ProtocolViolation, 'client left during login'));
    }
  }

  /** Whatever the client sent behind its login (a pipelined first query); reading resumes. */
  drain(): Buffer {
    const early = this.input.drain();
    if (this.host.socket.isPaused()) this.host.socket.resume();
    return early;
  }

  async run(): Promise<LoginOutcome> {
    const settings = this.ctx.config.settings;
    for (;;) {
      const first = readStartupPacket(await this.next(() => this.input.takeUntyped(MAX_STARTUP_PACKET)));
      if (first.kind === 'ssl') {
        await this.answerSslRequest();
        continue;
      }
      if (first.kind === 'gssenc') {
        // No GSS encryption: 'N' tells the client to go on (it may ask for TLS next).
        this.host.socket.write(EncryptionRefused);
        continue;
      }
      if (first.kind === 'cancel') {
        routeCancel(this.ctx, first.processId, first.secretKey);
        return { kind: 'cancel' };
      }
      this.requireTls();
      if (first.major !== 3) throw new PgRelayError(ErrorCode.ProtocolViolation, `unsupported frontend protocol ${first.major}.${first.minor}: server supports 3.0`, SqlState.FeatureNotSupported);
      const unrecognized = [...first.params.keys()].filter((k) => k.startsWith('_pq_.'));
      for (const k of unrecognized) first.params.delete(k);
      if (first.minor > 0 || unrecognized.length > 0) this.host.socket.write(negotiateProtocolVersion(0, unrecognized));
      this.acceptStartup(first.params);
      break;
    }
    if (settings.maxClientConn > 0 && this.ctx.clientCount() > settings.maxClientConn) {
      this.ctx.stats.clientsRejected++;
      throw new PgRelayError(ErrorCode.TooManyClients, `no more connections allowed (max_client_conn ${settings.maxClientConn})`);
    }
    if (this.database === CONSOLE_DATABASE) {
      // The admin console: the same auth as any client, then only admin_users (every command)
      // and stats_users (SHOW only) get in. No server is involved, so it works during a pause.
      await this.authenticate();
      const admin = settings.adminUsers.includes(this.user);
      if (!admin && !settings.statsUsers.includes(this.user)) {
        throw new PgRelayError(ErrorCode.NoSuchUser, `user "${this.user}" is not allowed to connect to the admin console (admin_users / stats_users)`);
      }
      return { kind: 'console', user: this.user, admin };
    }
    // Authenticate first, then look at the database (PgBouncer's order): a client that has not
    // proved who it is learns nothing about which databases exist, and creates no pool.
    const scramKeys = await this.authenticate();
    // Held until the session ends (app's onGone detaches it): an attached pool is never retired.
    const entry = this.ctx.registry.attach(this.database, this.user);
    if (entry === undefined) throw new PgRelayError(ErrorCode.NoSuchDatabase, `no such database: ${this.database}`);
    if (scramKeys !== null) this.ctx.scramKeys.set(this.user, scramKeys);
    let loginParams: ReadonlyMap<string, string>;
    try {
      loginParams = entry.loginParams ?? (await this.fetchLoginParams(entry));
      if (this.host.closed) throw new PgRelayError(ErrorCode.ProtocolViolation, 'client left during login');
    } catch (err) {
      // The session never got the pool, so its end cannot detach it: do it here, or the pool
      // would count a client for ever and never retire.
      this.ctx.registry.detach(entry);
      throw err;
    }
    // The client's view starts from what a server reports, with its own startup values on top.
    for (const name of TRACKED_PARAMS) {
      if (!this.params.has(name)) {
        const v = loginParams.get(name);
        if (v !== undefined) this.params.set(name, v);
      }
    }
    const paramsSig = paramsSignature(this.params);
    const params = sharedParams(paramsSig, this.params);
    // One buffer, one write syscall: AuthenticationOk, ParameterStatus..., BackendKeyData, ReadyForQuery.
    this.host.socket.write(Buffer.concat([AuthenticationOk, this.statusBlock(loginParams, params, paramsSig), backendKeyData(this.host.processId, this.host.secretKey), ReadyForQueryIdle]));
    // The pool's own copies of these strings, not one pair per client.
    const user = entry.pool.user === this.user ? entry.pool.user : this.user;
    const database = entry.pool.database === this.database ? entry.pool.database : this.database;
    return { kind: 'pool', user, database, entry, params, paramsSig, settings: this.settings };
  }

  /** The user and database the startup packet named (empty until it arrived), for logs. */
  get who(): { user: string; database: string } {
    return { user: this.user, database: this.database };
  }

  /**
   * SSLRequest: 'N' when client TLS is off (or on a Unix socket, as PgBouncer), else 'S' and the
   * handshake. A client that sent anything after its SSLRequest is refused before the handshake:
   * those bytes arrived unencrypted and would be taken as if they had come through TLS
   * (CVE-2021-23214).
   */
  private async answerSslRequest(): Promise<void> {
    const cfg = this.ctx.tls.client;
    const socket = this.host.socket;
    if (isEncrypted(socket)) throw new PgRelayError(ErrorCode.ProtocolViolation, 'SSLRequest on a connection that is already encrypted');
    if (cfg === null || isUnixSocket(socket)) {
      socket.write(EncryptionRefused);
      return;
    }
    if (this.input.length > 0) throw new PgRelayError(ErrorCode.ProtocolViolation, 'received unencrypted data after SSL request');
    await this.host.startTls(cfg);
  }

  /** client_tls_sslmode require and up: a TCP client that did not ask for TLS gets a FATAL. */
  private requireTls(): void {
    const cfg = this.ctx.tls.client;
    const socket = this.host.socket;
    if (cfg === null || !atLeast(cfg.mode, TlsMode.require) || isEncrypted(socket) || isUnixSocket(socket)) return;
    throw new PgRelayError(ErrorCode.TlsRequired, `SSL required: client_tls_sslmode = ${cfg.mode} and this connection is not encrypted (connect with sslmode=require or stronger)`);
  }

  /**
   * The auth exchange for the startup packet's user, by the method auth_type (or the matching
   * auth_hba_file line) names, against the secret from auth_file or auth_query. A refused password
   * reaches the client as one 28P01 whatever the cause; the real reason is logged here, with the
   * client's address, and nowhere else.
   */
  private async authenticate(): Promise<ScramKeys | null> {
    const socket = this.host.socket;
    const method = chooseAuthMethod(this.ctx.config.settings.authType, this.ctx.hba, describeConnection(socket, this.database, this.user));
    if (method.kind === 'refused') {
      this.ctx.logger.warn({ client: this.host.id, user: this.user, database: this.database, addr: socket.remoteAddress, port: socket.remotePort, reason: method.reason }, 'client authentication failed');
      throw method.error;
    }
    if (method.kind === 'accepted') return null;
    let stored = this.ctx.authSecrets.get(this.user);
    let queried = false;
    if (stored === undefined && method.method !== 'trust' && this.ctx.authQuery.applies(this.database)) {
      stored = await this.ctx.authQuery.lookup(this.database, this.user);
      queried = true;
      if (this.host.closed) throw new PgRelayError(ErrorCode.ProtocolViolation, 'client left during login');
    }
    const outcome = await authenticateClient(
      { send: (m) => socket.write(m), nextMessage: () => this.next(() => this.input.takeTyped(MAX_AUTH_MESSAGE)) },
      method.method,
      this.user,
      stored,
    );
    if (outcome.ok) {
      // pgrelay's own login upstream as this user answers with what the lookup returned.
      if (queried && stored !== undefined) this.ctx.queriedSecrets.set(this.user, stored);
      return outcome.scramKeys;
    }
    this.ctx.logger.warn({ client: this.host.id, user: this.user, database: this.database, addr: socket.remoteAddress, port: socket.remotePort, reason: outcome.reason, authQuery: queried }, 'client authentication failed');
    throw outcome.error;
  }

  private acceptStartup(params: Map<string, string>): void {
    const user = params.get('user');
    if (user === undefined || user === '') throw new PgRelayError(ErrorCode.ProtocolViolation, 'no PostgreSQL user name specified in startup packet', SqlState.InvalidAuthorization);
    this.user = user;
    this.database = params.get('database') || user;
    if (params.has('replication') && params.get('replication') !== 'false' && params.get('replication') !== '0') {
      throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, 'replication connections are not supported by pgrelay', SqlState.FeatureNotSupported);
    }
    const settings = this.ctx.config.settings;
    const ignored = new Set(settings.ignoreStartupParameters.map((p) => p.toLowerCase()));
    // -c name=value, --name=value: each becomes a setting like a startup parameter of its own.
    // PostgreSQL applies them first, so a startup parameter of the same name wins.
    const options = params.get('options');
    if (options !== undefined) for (const s of parseOptions(options)) this.acceptSetting(s.name, s.value, ignored);
    for (const [key, value] of params) {
      if (!STARTUP_KEYS.has(key) && key !== 'options') this.acceptSetting(key, value, ignored);
    }
    if (settings.applicationNameAddHost) {
      const app = this.params.get('application_name') ?? '';
      this.params.set('application_name', `${app} - ${this.host.socket.remoteAddress ?? ''}:${this.host.socket.remotePort ?? ''}`);
    }
  }

  /**
   * A startup setting: a tracked parameter (reported by ParameterStatus, replayed with SET), one
   * the operator chose to ignore (ignore_startup_parameters, PgBouncer's meaning), or any other
   * setting, which pgrelay replays on every server the client gets and resets for the next.
   * The server judges the value when it is first applied; a refusal is the client's FATAL.
   */
  private acceptSetting(key: string, value: string, ignored: ReadonlySet<string>): void {
    const name = trackedName(key);
    if (name !== undefined) {
      this.params.set(name, value);
      return;
    }
    const lower = key.toLowerCase();
    if (ignored.has(lower)) return;
    if (!validSettingName(lower)) throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, `unsupported startup parameter: ${key}`);
    this.settings.set(lower, value);
  }

  /**
   * The ParameterStatus block of the login: reported values a setting of the client's changes
   * (default_transaction_read_only, say) show the client's value, as PostgreSQL would.
   */
  private statusBlock(loginParams: ReadonlyMap<string, string>, params: Map<string, string>, sig: string): Buffer {
    let own: Map<string, string> | null = null;
    for (const [name, value] of this.settings) {
      if (!loginParams.has(name)) continue;
      own ??= new Map(params);
      own.set(name, value);
    }
    return own === null ? loginStatusBlock(loginParams, params, sig) : loginStatusBlock(loginParams, own, `${sig}\u0001${settingsSignature(this.settings)}`);
  }

  /** First client of a pool: borrow a server once to learn what it reports at login. */
  private fetchLoginParams(entry: PoolEntry): Promise<ReadonlyMap<string, string>> {
    return new Promise<ReadonlyMap<string, string>>((resolve, reject) => {
      const waiter: PoolWaiter = {
        waitingSince: 0,
        onServer: (server: PoolServer) => {
          const s = server as ServerConn;
          entry.loginParams ??= new Map(s.params);
          entry.pool.release(s);
          resolve(entry.loginParams);
        },
        onWaitError: (err) => reject(err),
      };
      this.probe = { entry, waiter, abandon: reject };
      entry.pool.acquire(waiter);
    }).finally(() => {
      this.probe = null;
    });
  }

  /** Resolves with the next whole packet `take` can extract, waiting for more bytes as needed. */
  private async next(take: () => Buffer | null): Promise<Buffer> {
    for (;;) {
      const packet = take();
      if (packet !== null) return packet;
      if (this.host.closed) throw new PgRelayError(ErrorCode.ProtocolViolation, 'client left during login');
      // A packet is incomplete, so more bytes are needed whatever the cap (packets are bounded).
      if (this.host.socket.isPaused()) this.host.socket.resume();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** An accepted Unix-socket connection has no peer address (a TCP one always has, while open). */
function isUnixSocket(socket: net.Socket): boolean {
  return socket.remoteAddress === undefined && !socket.destroyed;
}

/** The connection as the auth method choice sees it (HBA connection type, address, certificate). */
function describeConnection(socket: net.Socket, database: string, user: string): ClientConnection {
  const encrypted = isEncrypted(socket);
  let certificate: ClientConnection['certificate'] = null;
  if (encrypted) {
    const secure = socket as tls.TLSSocket;
    const peer = secure.getPeerCertificate();
    if (peer !== null && Object.keys(peer).length > 0) {
      const cn = peer.subject?.CN;
      certificate = { verified: secure.authorized, commonName: typeof cn === 'string' ? cn : null };
    }
  }
  return { unix: isUnixSocket(socket), tls: encrypted, address: socket.remoteAddress ?? '', database, user, certificate };
}
