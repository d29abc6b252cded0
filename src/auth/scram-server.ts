// The server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677): pgrelay authenticating
// a client against a stored secret, following PostgreSQL's auth-scram.c rules.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SCRAM_KEY_LEN, decodeBase64Strict } from './secret.js';
import type { ScramSecret, Secret } from './secret.js';
import {
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_DEFAULT_SALT_LEN,
  generateNonce,
  hmacSha256,
  isValidNonce,
  scramSecretFromPassword,
  sha256,
  splitAttributes,
  xorBuffers,
} from './scram-client.js';

export interface ScramServerOptions {
  /** Iterations when deriving keys from a plain secret (default 4096, like PostgreSQL). */
  iterations?: number;
  /** Server nonce part; random by default. Injectable for deterministic tests. */
  nonce?: string;
}

export type ScramServerFinalResult =
  | { ok: true; serverFinal: string; clientKey: Buffer }
  | { ok: false; reason: string };

type ServerState = 'initial' | 'first-sent' | 'done';

// gs2 headers we accept. "n": client does not support channel binding. "y": client
// supports it but believes the server does not; true, since we never advertise
// SCRAM-SHA-256-PLUS, so it is fine (RFC 5802 section 6 / PostgreSQL).
const CBIND_INPUT: Readonly<Record<string, string>> = {
  'n,,': Buffer.from('n,,').toString('base64'), // "biws"
  'y,,': Buffer.from('y,,').toString('base64'), // "eSws"
};

/**
 * One SCRAM-SHA-256 authentication of a client:
 *   send AuthenticationSASL([SCRAM_SHA_256]);
 *   const x = new ScramServerExchange(secret);
 *   send AuthenticationSASLContinue(x.serverFirst(<SASLInitialResponse data>));
 *   const r = x.serverFinal(<SASLResponse data>);
 *   r.ok ? send AuthenticationSASLFinal(r.serverFinal) + AuthenticationOk : fail 28P01.
 *
 * Malformed messages throw (the caller reports SQLSTATE 08P01, protocol
 * violation); a wrong password or a foreign nonce is `{ ok: false }` (28P01),
 * mirroring PostgreSQL. Messages are expected as UTF-8-decoded strings; errors
 * never contain secrets.
 *
 * With a SCRAM secret, a successful result carries the ClientKey recovered from
 * the proof, which together with the secret's ServerKey lets the pooler log in
 * upstream as this client (ScramClientExchange({ clientKey, serverKey })).
 * With a plain secret the salt is fresh per exchange, so that ClientKey is of no
 * use upstream; use the password instead.
 */
export class ScramServerExchange {
  readonly #secret: ScramSecret;
  readonly #serverNonce: string;
  #state: ServerState = 'initial';
  #gs2Header = '';
  #clientFirstBare = '';
  #serverFirstMessage = '';
  #nonce = '';

  constructor(secret: Secret, opts: ScramServerOptions = {}) {
    switch (secret.kind) {
      case 'scram':
        this.#secret = secret;
        break;
      case 'plain':
        // No stored salt: derive a verifier on the spot, as PostgreSQL does for a
        // role whose password is stored in plain text (pre-10 behaviour).
        this.#secret = scramSecretFromPassword(
          secret.password,
          randomBytes(SCRAM_DEFAULT_SALT_LEN),
          opts.iterations ?? SCRAM_DEFAULT_ITERATIONS,
        );
        break;
      case 'md5':
        throw new Error('cannot authenticate with SCRAM-SHA-256 against an MD5 secret');
    }
    this.#serverNonce = opts.nonce ?? generateNonce();
    if (!isValidNonce(this.#serverNonce)) throw new Error('SCRAM server nonce must be printable ASCII without ","');
  }

  /** Parse client-first-message and produce server-first-message (`r=…,s=…,i=…`). */
  serverFirst(clientFirstMessage: string): string {
    if (this.#state !== 'initial') throw new Error('SCRAM serverFirst() called twice');
    this.#state = 'first-sent';
    const msg = clientFirstMessage;

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    if (msg.startsWith('p=')) {
      throw new Error(
        'SCRAM channel binding (SCRAM-SHA-256-PLUS) was requested, but the client selected SCRAM-SHA-256',
      );
    }
    if ((msg[0] !== 'n' && msg[0] !== 'y') || msg[1] !== ',') {
      throw new Error('malformed SCRAM client-first-message: unexpected channel binding flag');
    }
    if (msg[2] === 'a' && msg[3] === '=') {
      throw new Error('SCRAM authorization identity (a=) is not supported');
    }
    if (msg[2] !== ',') throw new Error('malformed SCRAM client-first-message: malformed gs2 header');
    this.#gs2Header = msg.slice(0, 3);
    this.#clientFirstBare = msg.slice(3);

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const attrs = splitAttributes(this.#clientFirstBare, 'client-first-message');
    if (attrs[0]!.name === 'm') throw new Error('SCRAM client requires an unsupported extension (m=)');
    if (attrs.length < 2 || attrs[0]!.name !== 'n' || attrs[1]!.name !== 'r') {
      throw new Error('malformed SCRAM client-first-message: expected n=<user>,r=<nonce>');
    }
    // The username (attrs[0]) is ignored: like PostgreSQL, the startup packet's
    // user is the one being authenticated.
    const clientNonce = attrs[1]!.value;
    if (!isValidNonce(clientNonce)) throw new Error('malformed SCRAM client-first-message: invalid nonce');

    this.#nonce = clientNonce + this.#serverNonce;
    this.#serverFirstMessage =
      `r=${this.#nonce},s=${this.#secret.salt.toString('base64')},i=${this.#secret.iterations}`;
    return this.#serverFirstMessage;
  }

  /**
   * Verify client-final-message (`c=…,r=…[,ext],p=…`). On success returns the
   * server-final-message (`v=<ServerSignature>`) and the recovered ClientKey.
   */
  serverFinal(clientFinalMessage: string): ScramServerFinalResult {
    if (this.#state !== 'first-sent') throw new Error('SCRAM serverFinal() called out of order');
    this.#state = 'done';

    const attrs = splitAttributes(clientFinalMessage, 'client-final-message');
    const last = attrs[attrs.length - 1]!;
    if (attrs.length < 3 || attrs[0]!.name !== 'c' || attrs[1]!.name !== 'r' || last.name !== 'p') {
      throw new Error('malformed SCRAM client-final-message: expected c=…,r=…,p=…');
    }
    if (attrs.slice(2, -1).some((a) => a.name === 'p')) {
      throw new Error('malformed SCRAM client-final-message: proof must be the last attribute');
    }
    // Channel binding: the client must echo our accepted gs2 header, base64-encoded.
    if (attrs[0]!.value !== CBIND_INPUT[this.#gs2Header]) {
      throw new Error('SCRAM channel binding check failed');
    }
    const proof = decodeBase64Strict(last.value);
    if (proof === null || proof.length !== SCRAM_KEY_LEN) {
      throw new Error('malformed SCRAM client-final-message: malformed proof');
    }

    // PostgreSQL treats a foreign nonce as an authentication failure, not a
    // protocol violation.
    if (attrs[1]!.value !== this.#nonce) return { ok: false, reason: 'SCRAM nonce mismatch' };

    // AuthMessage = client-first-message-bare + "," + server-first-message + ","
    //               + client-final-message-without-proof       (RFC 5802 section 3)
    const withoutProof = clientFinalMessage.slice(0, clientFinalMessage.length - last.value.length - 3);
    const authMessage = `${this.#clientFirstBare},${this.#serverFirstMessage},${withoutProof}`;

    // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is valid
    // iff H(ClientKey) equals StoredKey.
    const clientSignature = hmacSha256(this.#secret.storedKey, authMessage);
    const clientKey = xorBuffers(proof, clientSignature);
    if (!timingSafeEqual(sha256(clientKey), this.#secret.storedKey)) {
      return { ok: false, reason: 'SCRAM client proof does not match the stored verifier' };
    }
    const serverSignature = hmacSha256(this.#secret.serverKey, authMessage);
    return { ok: true, serverFinal: `v=${serverSignature.toString('base64')}`, clientKey };
  }
}
