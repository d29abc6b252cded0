// MD5 password authentication math (PostgreSQL's AuthenticationMD5Password):
// the stored hash, the salted response a client sends, and its verification.

import { createHash, timingSafeEqual } from 'node:crypto';
import { parseSecret } from './secret.js';
import type { Secret } from './secret.js';

/** AuthenticationMD5Password carries a 4-byte salt. */
export const MD5_SALT_LEN = 4;

function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * What pg_authid stores for an MD5 password: `'md5' + hex(md5(password + user))`.
 * The username is the salt, so the same password hashes differently per role.
 */
export function md5Hash(password: string, user: string): string {
  return 'md5' + md5Hex(Buffer.from(password + user, 'utf8'));
}

/**
 * The PasswordMessage payload answering AuthenticationMD5Password:
 * `'md5' + hex(md5(hex(md5(password + user)) + salt))`.
 *
 * `secret` is a plain password or an MD5 hash (as text or already parsed). Only
 * the hash is needed, which is why an auth_file MD5 entry is enough to log in
 * upstream. A SCRAM verifier cannot produce this and throws.
 */
export function md5Response(secret: string | Secret, user: string, salt: Buffer): string {
  if (salt.length !== MD5_SALT_LEN) {
    throw new Error(`MD5 salt must be ${MD5_SALT_LEN} bytes, got ${salt.length}`);
  }
  const parsed = typeof secret === 'string' ? parseSecret(secret) : secret;
  let hash: string;
  switch (parsed.kind) {
    case 'plain':
      hash = md5Hash(parsed.password, user);
      break;
    case 'md5':
      hash = parsed.hash;
      break;
    case 'scram':
      throw new Error('cannot compute an MD5 response from a SCRAM-SHA-256 secret');
  }
  // hex part of the stored hash (ASCII) followed by the raw salt bytes.
  return 'md5' + md5Hex(Buffer.concat([Buffer.from(hash.slice(3), 'latin1'), salt]));
}

/**
 * Check a client's MD5 PasswordMessage against a stored secret, in constant time
 * with respect to the secret. A SCRAM verifier cannot check an MD5 response (the
 * MD5 hash is not derivable from it), so that is `false`. PostgreSQL instead
 * switches an `md5` pg_hba line to SCRAM for such roles; picking the method from
 * the secret's kind is the caller's job.
 */
export function verifyMd5Response(secret: Secret, user: string, salt: Buffer, response: string): boolean {
  if (secret.kind === 'scram') return false;
  const expected = Buffer.from(md5Response(secret, user, salt), 'latin1');
  const actual = Buffer.from(response, 'utf8');
  if (actual.length !== expected.length) return false;
  return timingSafeEqual(actual, expected);
}
