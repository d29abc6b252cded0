// Logging in to PostgreSQL: TCP connect with a deadline, TLS per server_tls_sslmode (SSLRequest,
// then the handshake on the same connection), StartupMessage, the authentication exchange (trust,
// cleartext, md5, SCRAM-SHA-256) and the ParameterStatus / BackendKeyData that follow, up to the
// first ReadyForQuery. Async on purpose: this is the edge, not the hot path. Every login pgrelay
// makes goes through here (pools, the write-gate probe, primary verification, auth_query), so
// every one of them gets the same TLS.

import net from 'node:net';
import tls from 'node:tls';
import { serialize } from '../protocol/frontend-messages.js';
import { Parser, type BackendMessage } from '../protocol/backend-parser.js';
import { md5Response } from '../auth/md5.js';
import { ScramClientExchange, SCRAM_SHA_256 } from '../auth/scram-client.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import type { HostPort } from '../config/types.js';
import { ReadSlot } from './read-slot.js';
import { atLeast, type ServerTls } from '../tls/tls-contexts.js';
import { StartupCode } from '../protocol/message-types.js';
import { TlsMode } from '../config/types.js';
import { SqlState } from '../protocol/sqlstate.js';

const ignore = (): void => {};

/** How pgrelay proves itself to the server: nothing, a password (plain or md5 hash), or SCRAM keys. */
export type ServerCredential =
  | { readonly kind: 'none' }
  | { readonly kind: 'password'; readonly password: string }
  | { readonly kind: 'md5'; readonly hash: string }
  | { readonly kind: 'scram-keys'; readonly clientKey: Buffer; readonly serverKey: Buffer };

export interface LoginRequest {
  readonly address: HostPort;
  readonly database: string;
  readonly user: string;
  readonly credential: ServerCredential;
  readonly params?: Readonly<Record<string, string>>;
  /** Deadline of the whole login, up to ReadyForQuery (server_login_timeout). */
  readonly connectTimeoutMs: number;
  /**
   * Deadline for the server's first reply: the TCP connect plus the answer to the startup packet
   * (server_connect_timeout). A stopped node behind a router, or an address nobody answers, fails
   * here fast; a live server always answers at once. None when unset.
   */
  readonly answerTimeoutMs?: number;
  readonly keepAlive: boolean;
  /** server_tls_sslmode and its context; null = disable (plaintext, no SSLRequest). */
  readonly tls: ServerTls | null;
}

export interface LoginResult {
  /** The connection: a tls.TLSSocket when TLS was negotiated (it then reads through 'data'). */
  readonly socket: net.Socket;
  /** The socket's reads; whoever owns the connection next sets its sink. */
  readonly reader: ReadSlot;
  readonly params: Map<string, string>;
  readonly processId: number;
  readonly secretKey: number;
  /** ReadyForQuery status after login (always 'I' in practice). */
  readonly txStatus: number;
}

/**
 * A server login that failed: the server's own ErrorResponse (its SQLSTATE and severity kept), or
 * pgrelay's refusal to go on (a mechanism it cannot speak, credentials it does not have).
 */
export class ServerLoginError extends PgRelayError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly severity: string,
    /** The server's SQLSTATE, when the server sent the error. */
    serverSqlstate?: string,
  ) {
    super(code, message, serverSqlstate);
    this.name = 'ServerLoginError';
  }
}

const SSL_REQUEST = ((): Buffer => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(StartupCode.SSLRequest, 4);
  return b;
})();

/**
 * Logs in per req.tls. `allow` is libpq's: plaintext first, and TLS only when the server refuses
 * that login (a hostssl-only pg_hba.conf answers 28000).
 */
export function login(req: LoginRequest): Promise<LoginResult> {
  if (req.tls === null || req.tls.mode !== TlsMode.allow) return loginOnce(req, req.tls);
  const withTls = req.tls;
  return loginOnce(req, null).catch((err: unknown) => {
    if (err instanceof ServerLoginError && err.sqlstate === SqlState.InvalidAuthorization) return loginOnce(req, withTls);
    throw err;
  });
}

function loginOnce(req: LoginRequest, serverTls: ServerTls | null): Promise<LoginResult> {
  return new Promise<LoginResult>((resolve, reject) => {
    const { host, port } = req.address;
    const reader = new ReadSlot();
    const socket = net.connect({ host, port, noDelay: true, keepAlive: req.keepAlive, onread: reader.onread });
    /** Where the login writes: the TCP socket, or the TLS socket over it once negotiated. */
    let stream: net.Socket = socket;
    const parser = new Parser();
    const params = new Map<string, string>();
    let processId = 0;
    let secretKey = 0;
    let scram: ScramClientExchange | null = null;
    let done = false;

    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(answerTimer);
      reader.sink = ignore;
      stream.destroy();
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new PgRelayError(ErrorCode.ServerConnectFailed, `server_login_timeout: ${host}:${port} did not finish login within ${req.connectTimeoutMs} ms`));
    }, req.connectTimeoutMs);
    timer.unref();
    const answerTimer =
      req.answerTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            fail(new PgRelayError(ErrorCode.ServerConnectFailed, `server_connect_timeout: ${host}:${port} did not answer within ${req.answerTimeoutMs} ms`));
          }, req.answerTimeoutMs);
    answerTimer?.unref();

    const onMessage = (msg: BackendMessage): void => {
      if (done) return;
      const m = msg as BackendMessage & Record<string, unknown>;
      switch (msg.name) {
        case 'authenticationOk':
          return;
        case 'authenticationCleartextPassword': {
          const c = req.credential;
          if (c.kind !== 'password') return fail(missingPassword(req, 'a cleartext password'));
          stream.write(serialize.password(c.password));
          return;
        }
        case 'authenticationMD5Password': {
          const c = req.credential;
          const secret = c.kind === 'password' ? c.password : c.kind === 'md5' ? c.hash : null;
          if (secret === null) return fail(missingPassword(req, 'an md5 password'));
          stream.write(serialize.password(md5Response(secret, req.user, m['salt'] as Buffer)));
          return;
        }
        case 'authenticationSASL': {
          const mechanisms = m['mechanisms'] as string[];
          if (!mechanisms.includes(SCRAM_SHA_256)) return fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, `server offers no supported SASL mechanism (${mechanisms.join(', ')})`, 'FATAL'));
          const c = req.credential;
          if (c.kind === 'password') scram = new ScramClientExchange({ password: c.password });
          else if (c.kind === 'scram-keys') scram = new ScramClientExchange({ clientKey: c.clientKey, serverKey: c.serverKey });
          else return fail(missingPassword(req, 'SCRAM-SHA-256 credentials'));
          stream.write(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, scram.clientFirst()));
          return;
        }
        case 'authenticationSASLContinue':
          if (scram === null) return fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, 'unexpected SASLContinue', 'FATAL'));
          try {
            stream.write(serialize.sendSCRAMClientFinalMessage(scram.clientFinal(m['data'] as string)));
          } catch (err) {
            fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, `SCRAM exchange with server failed: ${(err as Error).message}`, 'FATAL'));
          }
          return;
        case 'authenticationSASLFinal':
          if (scram === null) return fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, 'unexpected SASLFinal', 'FATAL'));
          try {
            scram.verifyServerFinal(m['data'] as string);
          } catch (err) {
            fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, `server's SCRAM signature did not verify: ${(err as Error).message}`, 'FATAL'));
          }
          return;
        case 'parameterStatus':
          params.set(m['parameterName'] as string, m['parameterValue'] as string);
          return;
        case 'backendKeyData':
          processId = m['processID'] as number;
          secretKey = m['secretKey'] as number;
          return;
        case 'error': {
          const severity = String(m['severity'] ?? 'FATAL');
          return fail(new ServerLoginError(ErrorCode.ServerLoginFailed, `server ${host}:${port}: ${String(m['message'])}`, severity, typeof m['code'] === 'string' ? m['code'] : undefined));
        }
        case 'readyForQuery':
          done = true;
          clearTimeout(timer);
          clearTimeout(answerTimer);
          reader.sink = ignore;
          socket.removeListener('error', onError);
          socket.removeListener('close', onClose);
          // Under TLS the TLS socket reports the connection's end; the TCP socket's own errors
          // reach it too, and must not go unhandled here.
          if (stream !== socket) socket.on('error', ignore);
          resolve({ socket: stream, reader, params, processId, secretKey, txStatus: (m['status'] as string).charCodeAt(0) });
          return;
        default:
          // NoticeResponse and NegotiateProtocolVersion need no action at login.
          return;
      }
    };
    // The parser may keep a partial message between reads, and every read lands in the shared read
    // buffer (socket-io.ts): copy.
    // Login is a handful of small messages, so the copy costs nothing that matters.
    const parse = (chunk: Buffer, len: number): void => {
      clearTimeout(answerTimer);
      parser.parse(Buffer.from(chunk.subarray(0, len)), onMessage);
    };
    const onError = (err: Error): void => fail(new PgRelayError(ErrorCode.ServerConnectFailed, `cannot connect to server ${host}:${port}: ${err.message}`));
    const onClose = (): void => fail(new PgRelayError(ErrorCode.ServerConnectFailed, `server ${host}:${port} closed the connection during login`));

    const sendStartup = (): void => {
      reader.sink = parse;
      const startup: Record<string, string> = { user: req.user, database: req.database, ...req.params };
      stream.write(serialize.startup(startup));
    };

    // The answer to SSLRequest: one byte, 'S' or 'N'. Anything after it arrived before the
    // handshake, unencrypted, and may have been injected by whoever sits on the path
    // (CVE-2021-23222): refused, as libpq and PgBouncer refuse it.
    const onSslAnswer = (chunk: Buffer, len: number): void => {
      if (len === 0 || done) return;
      clearTimeout(answerTimer);
      const answer = chunk[0];
      if (len > 1) return fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, `server ${host}:${port} sent unencrypted data after its SSL response`, 'FATAL'));
      if (answer === 0x53 /* S */) return startTls(serverTls!);
      if (answer === 0x4e /* N */) {
        if (atLeast(serverTls!.mode, TlsMode.require)) {
          return fail(new ServerLoginError(ErrorCode.ServerTlsRefused, `server ${host}:${port} does not support SSL, but server_tls_sslmode = ${serverTls!.mode} requires it`, 'FATAL'));
        }
        return sendStartup();
      }
      fail(new ServerLoginError(ErrorCode.ServerProtocolViolation, `server ${host}:${port} answered SSLRequest with ${JSON.stringify(String.fromCharCode(answer!))}`, 'FATAL'));
    };

    const startTls = (cfg: ServerTls): void => {
      reader.sink = ignore; // the TCP socket now carries TLS records, read by the TLS socket
      const secure = tls.connect({
        socket,
        host,
        // SNI only for names (RFC 6066 forbids IP addresses there).
        ...(net.isIP(host) === 0 && { servername: host }),
        secureContext: cfg.secureContext,
        rejectUnauthorized: cfg.verifyCert,
        // verify-ca checks the chain only; verify-full also the host name (node's default check).
        ...(!cfg.verifyHost && { checkServerIdentity: () => undefined }),
      });
      stream = secure;
      secure.on('data', (d: Buffer) => reader.sink(d, d.length));
      secure.once('secureConnect', () => {
        if (cfg.verifyCert && !secure.authorized) {
          fail(new ServerLoginError(ErrorCode.ServerTlsRefused, `server ${host}:${port}: certificate not verified: ${String(secure.authorizationError)}`, 'FATAL'));
          return;
        }
        sendStartup();
      });
      secure.on('error', (err: Error & { code?: string }) => {
        if (done) return;
        // A certificate that does not verify is a configuration problem (waiters are told at
        // once); a connection that breaks is a passing one.
        const verification = cfg.verifyCert && /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME/i.test(err.code ?? '');
        if (verification) fail(new ServerLoginError(ErrorCode.ServerTlsRefused, `server ${host}:${port}: certificate refused (server_tls_sslmode = ${cfg.mode}): ${err.message}`, 'FATAL'));
        else fail(new PgRelayError(ErrorCode.ServerConnectFailed, `TLS with server ${host}:${port} failed: ${err.message}`));
      });
      secure.on('close', onClose);
    };

    socket.on('error', onError);
    socket.on('close', onClose);
    socket.once('connect', () => {
      if (serverTls === null) return sendStartup();
      reader.sink = onSslAnswer;
      socket.write(SSL_REQUEST);
    });
  });
}

function missingPassword(req: LoginRequest, what: string): ServerLoginError {
  return new ServerLoginError(
    ErrorCode.ServerCredentialMissing,
    `server asked for ${what} for user "${req.user}" but pgrelay has none (set password= in [databases] or the user's secret in auth_file)`,
    'FATAL',
  );
}
