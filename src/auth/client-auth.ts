// Authenticating a client to pgrelay per auth_type: trust, plain, md5 or SCRAM-SHA-256, against
// the user's auth_file secret. Failures come after the full exchange, so a probe cannot tell a
// wrong password from a missing user by timing or by where the exchange stops.

import { randomBytes, timingSafeEqual } from 'node:crypto';
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
import { parseSecret, type Secret } from './secret.js';
import { md5Hash, verifyMd5Response, MD5_SALT_LEN } from './md5.js';
import { ScramServerExchange } from './scram-server.js';
import { deriveScramKeys, sha256, SCRAM_SHA_256 } from './scram-client.js';
import type { AuthType } from '../config/types.js';

/** The socket side of a login, provided by the client session. */
export interface AuthIO {
  send(message: Buffer): void;
  /** The next whole typed message from the client. */
  nextMessage(): Promise<Buffer>;
}

export type AuthOutcome =
  | { readonly ok: true; readonly scramKeys: { clientKey: Buffer; serverKey: Buffer } | null }
  | { readonly ok: false; readonly error: PgRelayError };

function wrongPassword(user: string): AuthOutcome {
  return { ok: false, error: new PgRelayError(ErrorCode.AuthFailed, `password authentication failed for user "${user}"`) };
}

function noSuchUser(user: string): AuthOutcome {
  return { ok: false, error: new PgRelayError(ErrorCode.NoSuchUser, `password authentication failed for user "${user}": no such user`) };
}

async function passwordMessage(io: AuthIO): Promise<Buffer> {
  const msg = await io.nextMessage();
  if (msg[0] !== Frontend.PasswordMessage) throw new ProtocolError(`expected a password message, got type ${String.fromCharCode(msg[0]!)}`);
  return msg;
}

/** Runs the exchange for `user`. `storedSecret` is the auth_file entry (undefined: unknown user). */
export async function authenticateClient(io: AuthIO, authType: AuthType, user: string, storedSecret: string | undefined): Promise<AuthOutcome> {
  if (authType === 'trust') return { ok: true, scramKeys: null };
  const secret: Secret | null = storedSecret === undefined ? null : parseSecret(storedSecret);
  // PgBouncer's rule: with auth_type md5, a user whose secret is a SCRAM verifier logs in with SCRAM.
  const method = authType === 'md5' && secret?.kind === 'scram' ? 'scram-sha-256' : authType;
  switch (method) {
    case 'plain':
      return plainExchange(io, user, secret);
    case 'md5':
      return md5Exchange(io, user, secret);
    case 'scram-sha-256':
      return scramExchange(io, user, secret);
  }
  return { ok: false, error: new PgRelayError(ErrorCode.AuthFailed, `unsupported auth_type ${authType}`) };
}

async function plainExchange(io: AuthIO, user: string, secret: Secret | null): Promise<AuthOutcome> {
  io.send(AuthenticationCleartextPassword);
  const msg = await passwordMessage(io);
  const given = readPassword(msg, 0, msg.length);
  if (secret === null) return noSuchUser(user);
  let ok: boolean;
  switch (secret.kind) {
    case 'plain':
      ok = safeEqual(given, secret.password);
      break;
    case 'md5':
      ok = safeEqual(md5Hash(given, user), secret.hash);
      break;
    case 'scram':
      ok = timingSafeEqual(sha256(deriveScramKeys(given, secret.salt, secret.iterations).clientKey), secret.storedKey);
      break;
  }
  return ok ? { ok: true, scramKeys: null } : wrongPassword(user);
}

async function md5Exchange(io: AuthIO, user: string, secret: Secret | null): Promise<AuthOutcome> {
  const salt = randomBytes(MD5_SALT_LEN);
  io.send(authenticationMD5Password(salt));
  const msg = await passwordMessage(io);
  const response = readPassword(msg, 0, msg.length);
  if (secret === null) return noSuchUser(user);
  return verifyMd5Response(secret, user, salt, response) ? { ok: true, scramKeys: null } : wrongPassword(user);
}

async function scramExchange(io: AuthIO, user: string, secret: Secret | null): Promise<AuthOutcome> {
  if (secret?.kind === 'md5') {
    // An md5 hash cannot answer a SCRAM exchange; PostgreSQL refuses this combination too.
    return { ok: false, error: new PgRelayError(ErrorCode.AuthFailed, `password authentication failed for user "${user}": auth_type scram-sha-256 needs a plain or SCRAM secret, auth_file has an md5 hash`) };
  }
  // An unknown user still gets a full exchange, against a throwaway secret.
  const exchange = new ScramServerExchange(secret ?? { kind: 'plain', password: randomBytes(24).toString('base64') });
  io.send(authenticationSASL([SCRAM_SHA_256]));
  const first = await passwordMessage(io);
  const initial = readSASLInitialResponse(first, 0, first.length);
  if (initial.mechanism !== SCRAM_SHA_256) {
    return { ok: false, error: new PgRelayError(ErrorCode.ProtocolViolation, `SASL mechanism ${initial.mechanism} is not supported`) };
  }
  let serverFirst: string;
  try {
    serverFirst = exchange.serverFirst(initial.data);
  } catch (err) {
    return { ok: false, error: new PgRelayError(ErrorCode.ProtocolViolation, `malformed SCRAM client-first-message: ${(err as Error).message}`) };
  }
  io.send(authenticationSASLContinue(serverFirst));
  const final = await passwordMessage(io);
  let result;
  try {
    result = exchange.serverFinal(readSASLResponse(final, 0, final.length));
  } catch (err) {
    return { ok: false, error: new PgRelayError(ErrorCode.ProtocolViolation, `malformed SCRAM client-final-message: ${(err as Error).message}`) };
  }
  if (secret === null) return noSuchUser(user);
  if (!result.ok) return wrongPassword(user);
  io.send(authenticationSASLFinal(result.serverFinal));
  return { ok: true, scramKeys: secret.kind === 'scram' ? { clientKey: result.clientKey, serverKey: secret.serverKey } : null };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
