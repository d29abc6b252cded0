// The listeners of an accepted client socket, shared by every client: each finds its session
// through a symbol on the socket, so ten thousand idle clients cost no closures. A client that
// asks for TLS gets a tls.TLSSocket over the same connection (upgradeClientSocket), and from then
// on the session reads and writes only through it.

import type net from 'node:net';
import tls from 'node:tls';
import { readIntoShared } from './socket-io.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import type { ClientTls } from '../tls/tls-contexts.js';

/** What the socket's events reach. */
export interface SocketOwner {
  /** A read: chunk[0, len), in the shared read buffer, valid only during this call. */
  onData(chunk: Buffer, len: number): void;
  /** The client's socket drained: a server paused for it may be read again. */
  onDrain(): void;
  onSocketError(err: Error): void;
  onSocketClosed(): void;
}

const OWNER = Symbol('pgrelay.clientSocketOwner');
type OwnedSocket = net.Socket & { [OWNER]?: SocketOwner };

function onData(this: OwnedSocket, chunk: Buffer, len: number): void {
  this[OWNER]!.onData(chunk, len);
}
/** A TLS socket's 'data' event: a fresh buffer, all of it read. */
function onTlsData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]!.onData(chunk, chunk.length);
}
function onDrain(this: OwnedSocket): void {
  this[OWNER]!.onDrain();
}
function onError(this: OwnedSocket, err: Error): void {
  this[OWNER]!.onSocketError(err);
}
function onClose(this: OwnedSocket): void {
  this[OWNER]!.onSocketClosed();
}
const ignore = (): void => {};

/** Routes the socket's reads and events to `owner`; reads land in the shared buffer (socket-io.ts). */
export function attachClientSocket(socket: net.Socket, owner: SocketOwner): void {
  socket.setNoDelay(true);
  (socket as OwnedSocket)[OWNER] = owner;
  readIntoShared(socket, onData);
  socket.on('drain', onDrain);
  socket.on('error', onError);
  socket.on('close', onClose);
}

/** The one byte that accepts an SSLRequest ("S": go on with the TLS handshake). */
const SSL_ACCEPTED = Buffer.from('S');

/**
 * Answers an SSLRequest with 'S', runs the TLS handshake on the same connection and moves
 * `owner`'s listeners to the TLS socket, which it resolves with. The caller has checked that
 * nothing followed the SSLRequest in plaintext. The raw socket is paused first, so no byte the
 * client sends after the SSLRequest is ever read unencrypted: it all goes to the handshake.
 *
 * On failure the connection is destroyed (rejecting with the reason): after 'S' the client speaks
 * TLS, and a plaintext FATAL would only be garbage to it.
 */
export function upgradeClientSocket(raw: net.Socket, owner: SocketOwner, cfg: ClientTls): Promise<tls.TLSSocket> {
  raw.pause();
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    const fail = (why: string): void => {
      raw.destroy();
      reject(new PgRelayError(ErrorCode.TlsHandshakeFailed, why));
    };
    raw.write(SSL_ACCEPTED, (err) => {
      if (err !== undefined && err !== null) return fail(`cannot answer SSLRequest: ${err.message}`);
      if (raw.destroyed) return fail('client left before the TLS handshake');
      // From here the raw socket carries TLS records only; its events are the TLS socket's.
      raw.removeListener('drain', onDrain);
      raw.removeListener('error', onError);
      raw.removeListener('close', onClose);
      raw.on('error', ignore);
      const secure = new tls.TLSSocket(raw, {
        isServer: true,
        secureContext: cfg.secureContext,
        requestCert: cfg.requestCert,
        rejectUnauthorized: cfg.requireCert,
      });
      const onFailed = (e?: Error): void => {
        secure.destroy();
        fail(e !== undefined ? `TLS handshake failed: ${e.message}` : 'client closed the connection during the TLS handshake');
      };
      secure.once('error', onFailed);
      secure.once('close', () => onFailed());
      secure.once('secure', () => {
        secure.removeAllListeners('error');
        secure.removeAllListeners('close');
        if (cfg.requestCert) judgeClientCertificate(secure);
        // OpenSSL refuses a missing certificate when one is required; a certificate that does not
        // chain to the CA is judged here (node verifies after the handshake).
        if (cfg.requireCert && !secure.authorized) {
          onFailed(new Error(`client certificate not verified: ${String(secure.authorizationError ?? 'none sent')}`));
          return;
        }
        (secure as OwnedSocket)[OWNER] = owner;
        secure.on('data', onTlsData);
        secure.on('drain', onDrain);
        secure.on('error', onError);
        secure.on('close', onClose);
        resolve(secure);
      });
    });
  });
}

/**
 * Sets `authorized` / `authorizationError` from OpenSSL's verification of the client's
 * certificate, as node's tls.Server does for the sockets it accepts (a TLSSocket built over an
 * accepted socket gets no such judgement). No certificate, or no way to ask, is "not authorized".
 */
function judgeClientCertificate(secure: tls.TLSSocket): void {
  const handle = (secure as unknown as { _handle: { verifyError?: () => Error | null } | null })._handle;
  const verify = handle?.verifyError;
  const peer = secure.getPeerCertificate();
  let error: string | null;
  if (peer === null || Object.keys(peer).length === 0) error = 'no client certificate';
  else if (typeof verify !== 'function') error = 'cannot verify the client certificate on this node version';
  else error = verify.call(handle)?.message ?? null;
  secure.authorized = error === null;
  if (error !== null) secure.authorizationError = new Error(error);
}
/**
 * Ends a client's socket. A client that ended the session itself (`byClient`) with nothing left
 * to send gets no shutdown round trip and no timer; any other end is graceful, so that a last
 * message (a FATAL) is not lost, and the socket is destroyed after 2 s at most.
 */
export function endClientSocket(socket: net.Socket, byClient: boolean): void {
  if (byClient && socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  socket.end();
  socket.destroySoon?.();
  setTimeout(() => socket.destroy(), 2000).unref();
}
