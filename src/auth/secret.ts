// Classifies a stored secret (auth_file entry or pg_authid.rolpassword) the way
// PgBouncer and PostgreSQL do: a SCRAM-SHA-256 verifier, an MD5 hash, or a
// plain-text password.

export const SecretKind = { plain: 'plain', md5: 'md5', scram: 'scram' } as const;
export type SecretKind = (typeof SecretKind)[keyof typeof SecretKind];

export type Secret =
  | { readonly kind: 'plain'; readonly password: string }
  /** `hash` is the full pg_authid form: `'md5'` + 32 lowercase hex digits. */
  | { readonly kind: 'md5'; readonly hash: string }
  | {
      readonly kind: 'scram';
      readonly iterations: number;
      readonly salt: Buffer;
      readonly storedKey: Buffer;
      readonly serverKey: Buffer;
    };

export type ScramSecret = Extract<Secret, { kind: 'scram' }>;

/** Prefix of a SCRAM-SHA-256 verifier as stored by PostgreSQL (and PgBouncer's auth_file). */
export const SCRAM_SECRET_PREFIX = 'SCRAM-SHA-256$';

/** SHA-256 output size: StoredKey and ServerKey are exactly this long (RFC 7677). */
export const SCRAM_KEY_LEN = 32;

// PostgreSQL stores iteration counts in a C int.
const MAX_STORED_ITERATIONS = 2_147_483_647;

const MD5_SECRET_RE = /^md5[0-9a-fA-F]{32}$/;
// RFC 5802 section 7: base64 = *base64-4 [base64-3 / base64-2]. Node's decoder
// silently skips junk, so the shape is checked first.
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64 decode (RFC 5802's grammar, padding required). Returns null for
 * anything that is not canonical base64, so callers can report a clear error.
 */
export function decodeBase64Strict(text: string): Buffer | null {
  if (!BASE64_RE.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/**
 * Classify a stored secret. A string starting with `SCRAM-SHA-256$` must be a
 * well-formed verifier (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`)
 * or this throws: silently treating a mangled verifier as a plain password
 * would make the literal verifier text a valid password. Error messages never
 * contain the secret.
 */
export function parseSecret(s: string): Secret {
  if (s.startsWith(SCRAM_SECRET_PREFIX)) return parseScramSecret(s);
  // PostgreSQL treats exactly "md5" + 32 hex digits as a hash; we also accept
  // upper-case hex (normalised) so a hand-edited auth_file does not silently
  // turn the hash into a plain-text password.
  if (MD5_SECRET_RE.test(s)) return { kind: 'md5', hash: 'md5' + s.slice(3).toLowerCase() };
  return { kind: 'plain', password: s };
}

function parseScramSecret(s: string): ScramSecret {
  const fail = (why: string): Error =>
    new Error(`malformed SCRAM-SHA-256 secret: ${why} (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)`);
  const parts = s.slice(SCRAM_SECRET_PREFIX.length).split('$');
  if (parts.length !== 2) throw fail('wrong number of "$"-separated fields');
  const [params, keys] = parts as [string, string];

  const pc = params.split(':');
  if (pc.length !== 2) throw fail('iteration count and salt must be separated by ":"');
  const [iterText, saltText] = pc as [string, string];
  if (!/^[0-9]{1,10}$/.test(iterText)) throw fail('iteration count is not a decimal number');
  const iterations = Number(iterText);
  if (iterations < 1 || iterations > MAX_STORED_ITERATIONS) throw fail('iteration count out of range');
  const salt = decodeBase64Strict(saltText);
  if (salt === null || salt.length === 0) throw fail('salt is not valid non-empty base64');

  const kc = keys.split(':');
  if (kc.length !== 2) throw fail('StoredKey and ServerKey must be separated by ":"');
  const storedKey = decodeBase64Strict(kc[0]!);
  if (storedKey === null || storedKey.length !== SCRAM_KEY_LEN) throw fail(`StoredKey is not ${SCRAM_KEY_LEN} bytes of base64`);
  const serverKey = decodeBase64Strict(kc[1]!);
  if (serverKey === null || serverKey.length !== SCRAM_KEY_LEN) throw fail(`ServerKey is not ${SCRAM_KEY_LEN} bytes of base64`);

  return { kind: 'scram', iterations, salt, storedKey, serverKey };
}
