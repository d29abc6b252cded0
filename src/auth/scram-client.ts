// The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677), used when pgrelay logs
// in to PostgreSQL; also the SCRAM primitives (SASLprep, Hi, key derivation)
// shared with scram-server.ts and the verifier builder for auth_file entries.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { SCRAM_KEY_LEN, SCRAM_SECRET_PREFIX, decodeBase64Strict } from './secret.js';
import type { ScramSecret } from './secret.js';

/** SASL mechanism name, as listed in AuthenticationSASL and sent in SASLInitialResponse. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** PostgreSQL's defaults for new verifiers (scram_iterations, SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
export const SCRAM_DEFAULT_SALT_LEN = 16;

/**
 * Upper bound on the iteration count we accept from a server. Hi() costs CPU
 * linearly in it and runs synchronously, so a hostile or misconfigured upstream
 * must not be able to stall the event loop for minutes. 10M is ~10 s of work.
 */
export const SCRAM_MAX_ITERATIONS = 10_000_000;

// Nonce length in raw bytes before base64, as in libpq (SCRAM_RAW_NONCE_LEN).
const RAW_NONCE_LEN = 18;

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E (printable ASCII except ",").
const PRINTABLE_RE = /^[\x21-\x2B\x2D-\x7E]+$/;
// One attr-val: a single letter, "=", then no comma (commas separate attributes).
const ATTR_RE = /^[A-Za-z]=/;

// ---------------------------------------------------------------------------
// Primitives (RFC 5802 section 2.2, with H = SHA-256 per RFC 7677)

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmacSha256(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function xorBuffers(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new Error('xorBuffers: length mismatch');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Hi(str, salt, i) is PBKDF2 with HMAC as the PRF and dkLen = output size of H. */
export function hi(password: Buffer, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password, salt, iterations, SCRAM_KEY_LEN, 'sha256');
}

// RFC 3454 table C.1.2 (non-ASCII space characters): mapped to U+0020 by SASLprep.
const NON_ASCII_SPACE_RE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// RFC 3454 table B.1 ("commonly mapped to nothing"), minus U+200B, which
// PostgreSQL checks against C.1.2 first and so maps to a space.
const MAPPED_TO_NOTHING_RE = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// RFC 4013 section 2.3 prohibited output: RFC 3454 tables C.1.2, C.2.1, C.2.2,
// C.3 (private use), C.4 (non-characters), C.5 (surrogates), C.6, C.7, C.8, C.9.
const PROHIBITED_RE = new RegExp(
  '[' +
    '\\u00A0\\u1680\\u2000-\\u200B\\u202F\\u205F\\u3000' + // C.1.2
    '\\u0000-\\u001F\\u007F' + // C.2.1
    '\\u0080-\\u009F\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F\\uFEFF\\uFFF9-\\uFFFC\\u{1D173}-\\u{1D17A}' + // C.2.2
    '\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}' + // C.3
    '\\uFDD0-\\uFDEF\\uFFFE\\uFFFF' + // C.4 (BMP; other planes below)
    '\\uD800-\\uDFFF' + // C.5: lone surrogates (paired ones are single code points under the u flag)
    '\\uFFF9-\\uFFFD' + // C.6
    '\\u2FF0-\\u2FFB' + // C.7
    '\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E' + // C.8
    '\\u{E0001}\\u{E0020}-\\u{E007F}' + // C.9
    ']',
  'u',
);

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to passwords (see the
 * "SASL Authentication" chapter: passwords that are not valid SASLprep input
 * are used as raw bytes rather than rejected). Pure ASCII is returned as is
 * (PostgreSQL's fast path; SASLprep never changes it except to prohibit control
 * characters, which then fall back to the same raw string anyway). Otherwise:
 * map C.1.2 to space, drop B.1, NFKC-normalise, and fall back to the raw
 * string if the result contains prohibited characters or is empty.
 *
 * Deliberately not implemented: the bidi rule (RFC 3454 section 6) and the
 * Unicode-3.2 unassigned-code-point check (table A.1), whose tables are large.
 * They only matter for a password that the mapping/NFKC steps change and that
 * also trips one of those checks, e.g. "\uFB01\u{1F600}" (the emoji is unassigned
 * in Unicode 3.2): we hash "fi\u{1F600}" where PostgreSQL hashes the raw bytes.
 * Only passwords pgrelay hashes itself are affected; verifiers copied from
 * pg_authid and key-based logins never go through SASLprep here.
 */
export function saslPrep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE_RE, ' ').replace(MAPPED_TO_NOTHING_RE, '').normalize('NFKC');
  if (prepared === '' || PROHIBITED_RE.test(prepared) || hasPlaneNonCharacter(prepared)) return password;
  return prepared;
}

// C.4: U+nFFFE and U+nFFFF in every supplementary plane.
function hasPlaneNonCharacter(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0xffff && (cp & 0xfffe) === 0xfffe) return true;
  }
  return false;
}

/** SaltedPassword = Hi(Normalize(password), salt, i), over the UTF-8 bytes. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return hi(Buffer.from(saslPrep(password), 'utf8'), salt, iterations);
}

export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** ClientKey, StoredKey = H(ClientKey) and ServerKey for a password (RFC 5802 section 3). */
export function deriveScramKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmacSha256(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmacSha256(salted, 'Server Key') };
}

/** A parsed SCRAM verifier for a password, as `CREATE ROLE ... PASSWORD` would store. */
export function scramSecretFromPassword(
  password: string,
  salt: Buffer = randomBytes(SCRAM_DEFAULT_SALT_LEN),
  iterations: number = SCRAM_DEFAULT_ITERATIONS,
): ScramSecret {
  checkIterations(iterations);
  if (salt.length === 0) throw new Error('SCRAM salt must not be empty');
  const { storedKey, serverKey } = deriveScramKeys(password, salt, iterations);
  return { kind: 'scram', iterations, salt, storedKey, serverKey };
}

/**
 * The `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>` text PostgreSQL keeps
 * in pg_authid.rolpassword and PgBouncer accepts in auth_file.
 */
export function buildScramSecret(
  password: string,
  salt: Buffer = randomBytes(SCRAM_DEFAULT_SALT_LEN),
  iterations: number = SCRAM_DEFAULT_ITERATIONS,
): string {
  const s = scramSecretFromPassword(password, salt, iterations);
  return (
    `${SCRAM_SECRET_PREFIX}${s.iterations}:${s.salt.toString('base64')}` +
    `$${s.storedKey.toString('base64')}:${s.serverKey.toString('base64')}`
  );
}

function checkIterations(iterations: number): void {
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) {
    throw new Error(`SCRAM iteration count must be an integer in 1..${SCRAM_MAX_ITERATIONS}`);
  }
}

/** Generate a fresh nonce: base64 of random bytes is always RFC 5802 "printable". */
export function generateNonce(): string {
  return randomBytes(RAW_NONCE_LEN).toString('base64');
}

export function isValidNonce(nonce: string): boolean {
  return PRINTABLE_RE.test(nonce);
}

/**
 * Split a SCRAM message into attr-val pairs. Values never contain ","
 * (saslname escapes it, nonces and base64 exclude it), so a plain split is exact.
 * `what` names the message in errors.
 */
export function splitAttributes(message: string, what: string): Array<{ name: string; value: string }> {
  return message.split(',').map((part) => {
    if (!ATTR_RE.test(part)) throw new Error(`malformed SCRAM ${what}: expected attribute=value`);
    return { name: part[0]!, value: part.slice(2) };
  });
}

// ---------------------------------------------------------------------------
// Client exchange

export type ScramClientCredential = { password: string } | { clientKey: Buffer; serverKey: Buffer };

export interface ScramClientOptions {
  /** Client nonce; random by default. Injectable for RFC 7677's test vector. */
  nonce?: string;
  /**
   * Username for the `n=` attribute. PostgreSQL ignores it (the startup packet's
   * user counts), so the default is `*`, a valid RFC 5802 saslname.
   */
  username?: string;
}

type ClientState = 'initial' | 'first-sent' | 'final-sent' | 'done';

/**
 * One SCRAM-SHA-256 login, as the client:
 *   const x = new ScramClientExchange({ password });
 *   send SASLInitialResponse(SCRAM_SHA_256, x.clientFirst());
 *   send SASLResponse(x.clientFinal(<AuthenticationSASLContinue data>));
 *   x.verifyServerFinal(<AuthenticationSASLFinal data>);   // throws on mismatch
 *
 * With `{ clientKey, serverKey }` (ServerKey from an auth_file SCRAM secret,
 * ClientKey recovered by ScramServerExchange from the client's proof) no
 * password is needed; those keys are only valid if the upstream role's
 * verifier has the same salt and iteration count as the auth_file one, as with
 * PgBouncer.
 *
 * Only the `n,,` gs2 header is used: no channel binding (SCRAM-SHA-256-PLUS).
 * Errors never contain the password or keys.
 */
export class ScramClientExchange {
  readonly #credential: ScramClientCredential;
  readonly #nonce: string;
  readonly #username: string;
  #state: ClientState = 'initial';
  #clientFirstBare = '';
  #expectedServerSignature: Buffer | null = null;

  constructor(credential: ScramClientCredential, opts: ScramClientOptions = {}) {
    if ('clientKey' in credential) {
      if (credential.clientKey.length !== SCRAM_KEY_LEN || credential.serverKey.length !== SCRAM_KEY_LEN) {
        throw new Error(`SCRAM ClientKey and ServerKey must be ${SCRAM_KEY_LEN} bytes`);
      }
    } else if (typeof credential.password !== 'string') {
      throw new Error('SCRAM password must be a string');
    }
    this.#credential = credential;
    this.#nonce = opts.nonce ?? generateNonce();
    if (!isValidNonce(this.#nonce)) throw new Error('SCRAM client nonce must be printable ASCII without ","');
    this.#username = escapeSaslName(opts.username ?? '*');
  }

  /** client-first-message: gs2 header `n,,` + `n=<user>,r=<nonce>`. */
  clientFirst(): string {
    if (this.#state !== 'initial') throw new Error('SCRAM clientFirst() called twice');
    this.#state = 'first-sent';
    this.#clientFirstBare = `n=${this.#username},r=${this.#nonce}`;
    return `n,,${this.#clientFirstBare}`;
  }

  /** Answer the server-first-message (AuthenticationSASLContinue) with client-final-message. */
  clientFinal(serverFirstMessage: string): string {
    if (this.#state !== 'first-sent') throw new Error('SCRAM clientFinal() called out of order');
    this.#state = 'final-sent';

    const attrs = splitAttributes(serverFirstMessage, 'server-first-message');
    if (attrs[0]?.name === 'm') throw new Error('SCRAM server-first-message requires an unsupported extension');
    if (attrs.length < 3 || attrs[0]!.name !== 'r' || attrs[1]!.name !== 's' || attrs[2]!.name !== 'i') {
      throw new Error('malformed SCRAM server-first-message: expected r=,s=,i=');
    }
    // Attributes after i= are extensions (RFC 5802 section 7); ignore them.
    const nonce = attrs[0]!.value;
    if (!isValidNonce(nonce)) throw new Error('malformed SCRAM server-first-message: invalid nonce');
    // The combined nonce must extend ours; otherwise this is a replay or a
    // different session (RFC 5802 section 5.1, "r" attribute).
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new Error('SCRAM server nonce does not extend the client nonce');
    }
    const salt = decodeBase64Strict(attrs[1]!.value);
    if (salt === null || salt.length === 0) throw new Error('malformed SCRAM server-first-message: invalid salt');
    const iterText = attrs[2]!.value;
    if (!/^[1-9][0-9]{0,9}$/.test(iterText)) {
      throw new Error('malformed SCRAM server-first-message: invalid iteration count');
    }
    const iterations = Number(iterText);
    if (iterations > SCRAM_MAX_ITERATIONS) {
      throw new Error(`SCRAM iteration count ${iterations} exceeds the maximum of ${SCRAM_MAX_ITERATIONS}`);
    }

    let clientKey: Buffer;
    let serverKey: Buffer;
    if ('clientKey' in this.#credential) {
      ({ clientKey, serverKey } = this.#credential);
    } else {
      ({ clientKey, serverKey } = deriveScramKeys(this.#credential.password, salt, iterations));
    }

    // c=biws is base64("n,,"): the gs2 header echoed back, no channel binding data.
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirstMessage},${withoutProof}`;
    const clientSignature = hmacSha256(sha256(clientKey), authMessage);
    const proof = xorBuffers(clientKey, clientSignature);
    this.#expectedServerSignature = hmacSha256(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /**
   * Check server-final-message (AuthenticationSASLFinal). Proves the server knew
   * the verifier, i.e. that we are not talking to an impostor. Throws on `e=`
   * or a signature mismatch.
   */
  verifyServerFinal(serverFinalMessage: string): void {
    if (this.#state !== 'final-sent' || this.#expectedServerSignature === null) {
      throw new Error('SCRAM verifyServerFinal() called out of order');
    }
    this.#state = 'done';
    const attrs = splitAttributes(serverFinalMessage, 'server-final-message');
    const first = attrs[0]!;
    if (first.name === 'e') throw new Error(`SCRAM authentication failed: server reported "${first.value}"`);
    if (first.name !== 'v') throw new Error('malformed SCRAM server-final-message: expected v= or e=');
    const signature = decodeBase64Strict(first.value);
    if (signature === null || signature.length !== SCRAM_KEY_LEN) {
      throw new Error('malformed SCRAM server-final-message: invalid server signature');
    }
    if (!timingSafeEqual(signature, this.#expectedServerSignature)) {
      throw new Error('SCRAM server signature mismatch: the server does not know the password verifier');
    }
  }
}

/** RFC 5802 saslname: "=" and "," are escaped as "=3D" and "=2C". */
function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}
