// Authenticating a client to pgrelay per auth_type: trust, plain, md5 or SCRAM-SHA-256, against
// the user's auth_file secret. Every refusal of a password is the same 28P01 message after the
// full exchange, with the same work done: a client cannot tell a wrong password from a missing
// user or an unusable secret. The real reason goes to the caller, for the server log only.

import { timingSafeEqual, randomBytes } from 'node:crypto';
import {
  AuthenticationCleartextPassword,
  authenticationMD5Password,
  authenticationSASL,
  authenticationSASLContinue,
  authenticationSASLFinal,
} from '../protocol/backend-messages.js';
import { Frontend } from '../protocol/message-types.js';
import { ProtocolError, readPassword, readSASLInitialResponse, readSASLResponse } from '../protocol/readers.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import { parseSecret, type ScramSecret, type Secret } from './secret.js';
import { md5Hash, verifyMd5Response, MD5_SALT_LEN } from './md5.js';
import { ScramServerExchange } from './scram-server.js';
import { deriveScramKeys, scramSecretFromPassword, sha256, SCRAM_DEFAULT_ITERATIONS, SCRAM_SHA_256 } from './scram-client.js';
import { mockPassword, stableScramSalt } from './mock-secret.js';
import type { AuthType } from '../config/types.js';

/** The methods this module runs; auth_type hba and cert are resolved by the login before it gets here. */
export type ClientAuthMethod = Exclude<AuthType, 'hba' | 'cert'>;

/** The socket side of a login, provided by the client session. */
export interface AuthIO {
  send(message: Buffer): void;
  /** The next whole typed message from the client. */
  nextMessage(): Promise<Buffer>;
}

/**
 * Why a login was refused; never sent to the client. `unusable_secret`: the stored secret cannot
 * answer this method (an md5 hash under scram-sha-256, as PostgreSQL refuses too).
 */
export type AuthFailureReason = 'no_such_user' | 'empty_secret' | 'unusable_secret' | 'wrong_password' | 'protocol_violation';

export type AuthOutcome =
  | { readonly ok: true; readonly scramKeys: { clientKey: Buffer; serverKey: Buffer } | null }
  | { readonly ok: false; readonly error: PgRelayError; readonly reason: AuthFailureReason };

/** The one answer to every refused password, whatever the reason (PostgreSQL's wording). */
function refused(user: string, reason: AuthFailureReason): AuthOutcome {
  return { ok: false, reason, error: new PgRelayError(ErrorCode.AuthFailed, `password authentication failed for user "${user}"`) };
}

function violation(message: string): AuthOutcome {
  return { ok: false, reason: 'protocol_violation', error: new PgRelayError(ErrorCode.ProtocolViolation, message) };
}

async function passwordMessage(io: AuthIO): Promise<Buffer> {
  const msg = await io.nextMessage();
  if (msg[0] !== Frontend.PasswordMessage) throw new ProtocolError(`expected a password message, got type ${String.fromCharCode(msg[0]!)}`);
  return msg;
}

/**
 * Runs the exchange for `user`. `storedSecret` is the auth_file entry (undefined: unknown user).
 * Only trust ignores secrets: an empty one never authenticates (PgBouncer refuses it too, and
 * PostgreSQL never stores one), which an empty password would otherwise match.
 */
export async function authenticateClient(io: AuthIO, authType: ClientAuthMethod, user: string, storedSecret: string | undefined): Promise<AuthOutcome> {
  if (authType === 'trust') return { ok: true, scramKeys: null };
  let secret: Secret | null = null;
  let missing: AuthFailureReason | null = null;
  if (storedSecret === undefined) missing = 'no_such_user';
  else if (storedSecret === '') missing = 'empty_secret';
  else secret = parseSecret(storedSecret);
  // PgBouncer's rule: with auth_type md5, a user whose secret is a SCRAM verifier logs in with SCRAM.
  const method = authType === 'md5' && secret?.kind === 'scram' ? 'scram-sha-256' : authType;
  if (method === 'scram-sha-256' && secret?.kind === 'md5') {
    // An md5 hash cannot answer a SCRAM exchange; PostgreSQL refuses this combination too.
    secret = null;
    missing = 'unusable_secret';
  }
  switch (method) {
    case 'plain':
      return plainExchange(io, user, secret, missing);
    case 'md5':
      return md5Exchange(io, user, secret, missing);
    case 'scram-sha-256':
      return scramExchange(io, user, secret, missing);
  }
  return { ok: false, reason: 'protocol_violation', error: new PgRelayError(ErrorCode.AuthFailed, `unsupported auth_type ${authType}`) };
}

async function plainExchange(io: AuthIO, user: string, secret: Secret | null, missing: AuthFailureReason | null): Promise<AuthOutcome> {
  io.send(AuthenticationCleartextPassword);
  const msg = await passwordMessage(io);
  const given = readPassword(msg, 0, msg.length);
  // No usable secret: compare against one nobody knows, the same comparison a plain secret gets.
  const against: Secret = secret ?? { kind: 'plain', password: mockPassword() };
  let ok: boolean;
  switch (against.kind) {
    case 'plain':
      ok = safeEqual(given, against.password);
      break;
    case 'md5':
      ok = safeEqual(md5Hash(given, user), against.hash);
      break;
    case 'scram':
      ok = timingSafeEqual(sha256(deriveScramKeys(given, against.salt, against.iterations).clientKey), against.storedKey);
      break;
  }
  if (missing !== null) return refused(user, missing);
  return ok ? { ok: true, scramKeys: null } : refused(user, 'wrong_password');
}

async function md5Exchange(io: AuthIO, user: string, secret: Secret | null, missing: AuthFailureReason | null): Promise<AuthOutcome> {
  const salt = randomBytes(MD5_SALT_LEN);
  io.send(authenticationMD5Password(salt));
  const msg = await passwordMessage(io);
  const response = readPassword(msg, 0, msg.length);
  const ok = verifyMd5Response(secret ?? { kind: 'plain', password: mockPassword() }, user, salt, response);
  if (missing !== null) return refused(user, missing);
  return ok ? { ok: true, scramKeys: null } : refused(user, 'wrong_password');
}

/**
 * The verifier a SCRAM exchange runs against, and one PBKDF2 of SCRAM_DEFAULT_ITERATIONS whatever
 * the case, so that timing does not say which case it is:
 * - a plain secret: its verifier, derived with the user's stable salt (the PBKDF2);
 * - a stored verifier: itself, plus one derivation that is thrown away (the price of not showing
 *   which users exist: about what the client spends on its own side);
 * - no usable secret: a mock verifier from a random password and the user's stable salt, so
 *   repeated attempts show the same salt and iteration count as a real user's would.
 */
function scramVerifier(user: string, secret: Secret | null): ScramSecret {
  const salt = stableScramSalt(user);
  if (secret?.kind === 'scram') {
    deriveScramKeys(mockPassword(), salt, SCRAM_DEFAULT_ITERATIONS);
    return secret;
  }
  return scramSecretFromPassword(secret?.kind === 'plain' ? secret.password : mockPassword(), salt, SCRAM_DEFAULT_ITERATIONS);
}

async function scramExchange(io: AuthIO, user: string, secret: Secret | null, missing: AuthFailureReason | null): Promise<AuthOutcome> {
  const verifier = scramVerifier(user, secret);
  const exchange = new ScramServerExchange(verifier);
  io.send(authenticationSASL([SCRAM_SHA_256]));
  const first = await passwordMessage(io);
  const initial = readSASLInitialResponse(first, 0, first.length);
  if (initial.mechanism !== SCRAM_SHA_256) {
    return { ok: false, reason: 'protocol_violation', error: new PgRelayError(ErrorCode.ProtocolViolation, `SASL mechanism ${initial.mechanism} is not supported`) };
  }
  let serverFirst: string;
  try {
    serverFirst = exchange.serverFirst(initial.data);
  } catch (err) {
    return violation(`malformed SCRAM client-first-message: ${(err as Error).message}`);
  }
  io.send(authenticationSASLContinue(serverFirst));
  const final = await passwordMessage(io);
  let result;
  try {
    result = exchange.serverFinal(readSASLResponse(final, 0, final.length));
  } catch (err) {
    return violation(`malformed SCRAM client-final-message: ${(err as Error).message}`);
  }
  if (missing !== null) return refused(user, missing);
  if (!result.ok) return refused(user, 'wrong_password');
  io.send(authenticationSASLFinal(result.serverFinal));
  return { ok: true, scramKeys: secret?.kind === 'scram' ? { clientKey: result.clientKey, serverKey: verifier.serverKey } : null };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
