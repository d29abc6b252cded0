// Unit tests for src/auth/md5.ts: PostgreSQL MD5 password hashing and responses.

import t from 'tap';
import { createRequire } from 'node:module';
import { md5Hash, md5Response, verifyMd5Response } from '../../src/auth/md5.js';
import { parseSecret } from '../../src/auth/secret.js';
import { buildScramSecret } from '../../src/auth/scram-client.js';

// node-postgres's own implementation, as an independent cross-check (untyped CJS).
const pgUtils = createRequire(import.meta.url)('pg/lib/crypto/utils.js') as {
  postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string>;
};

const SALT = Buffer.from([0x01, 0x02, 0x03, 0x04]);
// md5(hex(md5("postgres" + "postgres")) + 01 02 03 04), computed independently with Python's hashlib
const RESPONSE = 'md568be9ed08db75f318087ab337aaea044';

t.test('md5Hash: what pg_authid stores', async (t) => {
  t.equal(md5Hash('postgres', 'postgres'), 'md53175bce1d3201d16594cebf9d7eb3f9d');
  t.not(md5Hash('postgres', 'other'), md5Hash('postgres', 'postgres'), 'username salts the hash');
});

t.test('md5Response from a plain password and from the hash agree with node-postgres', async (t) => {
  const expected = await pgUtils.postgresMd5PasswordHash('postgres', 'postgres', SALT);
  t.equal(md5Response('postgres', 'postgres', SALT), expected);
  t.equal(md5Response('md53175bce1d3201d16594cebf9d7eb3f9d', 'postgres', SALT), expected);
  t.equal(md5Response(parseSecret('md53175bce1d3201d16594cebf9d7eb3f9d'), 'postgres', SALT), expected);
  t.equal(md5Response({ kind: 'plain', password: 'postgres' }, 'postgres', SALT), expected);
  t.equal(expected, RESPONSE, 'fixed vector');

  const salt2 = Buffer.from([0xff, 0x00, 0x80, 0x7f]);
  t.equal(md5Response('pässwörd', 'ünïcode', salt2), await pgUtils.postgresMd5PasswordHash('ünïcode', 'pässwörd', salt2), 'non-ASCII and high salt bytes');
});

t.test('md5Response rejects bad input', async (t) => {
  t.throws(() => md5Response('postgres', 'postgres', Buffer.alloc(3)), /salt must be 4 bytes/);
  t.throws(() => md5Response(buildScramSecret('x'), 'postgres', SALT), /cannot compute an MD5 response from a SCRAM-SHA-256 secret/);
});

t.test('verifyMd5Response', async (t) => {
  const plain = parseSecret('postgres');
  const hash = parseSecret('md53175bce1d3201d16594cebf9d7eb3f9d');
  t.ok(verifyMd5Response(plain, 'postgres', SALT, RESPONSE), 'plain secret');
  t.ok(verifyMd5Response(hash, 'postgres', SALT, RESPONSE), 'md5 secret');
  t.notOk(verifyMd5Response(hash, 'postgres', Buffer.from([1, 2, 3, 5]), RESPONSE), 'different salt');
  t.notOk(verifyMd5Response(plain, 'someone', SALT, RESPONSE), 'plain secret hashed with a different user');
  t.notOk(verifyMd5Response(parseSecret('wrong'), 'postgres', SALT, RESPONSE), 'wrong password');
  t.notOk(verifyMd5Response(hash, 'postgres', SALT, RESPONSE.toUpperCase()), 'case matters, as in PostgreSQL');
  t.notOk(verifyMd5Response(hash, 'postgres', SALT, RESPONSE.slice(0, -1)), 'short response');
  t.notOk(verifyMd5Response(hash, 'postgres', SALT, ''), 'empty response');
  t.notOk(verifyMd5Response(hash, 'postgres', SALT, RESPONSE + 'x'), 'long response');
  t.notOk(verifyMd5Response(parseSecret(buildScramSecret('postgres')), 'postgres', SALT, RESPONSE), 'SCRAM secret cannot verify md5');
});
