// What a login without a usable secret (unknown user, empty secret, a hash that cannot answer the
// method) is checked against, so that its exchange looks and costs the same as a real user's.

import { createHmac, randomBytes } from 'node:crypto';
import { SCRAM_DEFAULT_SALT_LEN } from './scram-client.js';

// Drawn once per process, like PgBouncer's mock_auth_nonce: salts derived from it are stable for a
// user name while pgrelay runs, as a stored verifier's are, and unpredictable to clients.
const SALT_KEY = randomBytes(32);

/**
 * The SCRAM salt pgrelay shows for `user` when it has no stored verifier to take one from (a
 * plain secret, or no usable secret at all). Stable per user, so repeated attempts cannot tell
 * such a user from one whose auth_file entry is a SCRAM verifier.
 */
export function stableScramSalt(user: string): Buffer {
  return createHmac('sha256', SALT_KEY).update(user, 'utf8').digest().subarray(0, SCRAM_DEFAULT_SALT_LEN);
}

/** A password nobody can send: fresh random bytes for each failed exchange. */
export function mockPassword(): string {
  return randomBytes(24).toString('base64');
}
