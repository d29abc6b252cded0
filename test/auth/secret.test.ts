// Unit tests for src/auth/secret.ts: classifying stored secrets like PgBouncer.

import t from 'tap';
import { decodeBase64Strict, parseSecret } from '../../src/auth/secret.js';

// The verifier PostgreSQL stores for password "pencil" with RFC 7677's salt.
const PENCIL =
  'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=';

t.test('SCRAM verifier', async (t) => {
  const s = parseSecret(PENCIL);
  t.equal(s.kind, 'scram');
  if (s.kind !== 'scram') return;
  t.equal(s.iterations, 4096);
  t.equal(s.salt.toString('base64'), 'W22ZaJ0SNY7soEsUEjb6gQ==');
  t.equal(s.storedKey.length, 32);
  t.equal(s.serverKey.length, 32);
  t.equal(s.serverKey.toString('base64'), 'wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=');
});

t.test('md5 hash', async (t) => {
  t.same(parseSecret('md53175bce1d3201d16594cebf9d7eb3f9d'), { kind: 'md5', hash: 'md53175bce1d3201d16594cebf9d7eb3f9d' });
  t.same(parseSecret('md53175BCE1D3201D16594CEBF9D7EB3F9D'), { kind: 'md5', hash: 'md53175bce1d3201d16594cebf9d7eb3f9d' }, 'upper-case hex normalised');
});

t.test('everything else is plain', async (t) => {
  for (const p of ['', 'secret', 'md5', 'md53175bce1d3201d16594cebf9d7eb3f9', 'md53175bce1d3201d16594cebf9d7eb3f9dx', 'md5zz75bce1d3201d16594cebf9d7eb3f9d', 'scram-sha-256$x', 'SCRAM-SHA-256']) {
    t.same(parseSecret(p), { kind: 'plain', password: p }, JSON.stringify(p));
  }
});

t.test('malformed SCRAM verifiers throw without echoing the secret', async (t) => {
  const [, rest] = PENCIL.split('SCRAM-SHA-256$') as [string, string];
  const [params, keys] = rest.split('$') as [string, string];
  const [, salt] = params.split(':') as [string, string];
  const [stored, server] = keys.split(':') as [string, string];
  const bad: Record<string, string> = {
    'missing keys': `SCRAM-SHA-256$4096:${salt}`,
    'extra $': `SCRAM-SHA-256$4096:${salt}$${stored}:${server}$x`,
    'no salt separator': `SCRAM-SHA-256$4096${salt}$${stored}:${server}`,
    'non-numeric iterations': `SCRAM-SHA-256$abc:${salt}$${stored}:${server}`,
    'negative iterations': `SCRAM-SHA-256$-1:${salt}$${stored}:${server}`,
    'zero iterations': `SCRAM-SHA-256$0:${salt}$${stored}:${server}`,
    'huge iterations': `SCRAM-SHA-256$99999999999:${salt}$${stored}:${server}`,
    'empty salt': `SCRAM-SHA-256$4096:$${stored}:${server}`,
    'bad salt base64': `SCRAM-SHA-256$4096:W22Z*J0SNY7soEsUEjb6gQ==$${stored}:${server}`,
    'missing key separator': `SCRAM-SHA-256$4096:${salt}$${stored}${server}`,
    'short StoredKey': `SCRAM-SHA-256$4096:${salt}$${salt}:${server}`,
    'short ServerKey': `SCRAM-SHA-256$4096:${salt}$${stored}:${salt}`,
    'unpadded key': `SCRAM-SHA-256$4096:${salt}$${stored.replace(/=$/, '')}:${server}`,
  };
  for (const [what, s] of Object.entries(bad)) {
    const err = t.throws(() => parseSecret(s), /malformed SCRAM-SHA-256 secret/, what) as unknown as Error;
    t.notOk(err.message.includes(stored) || err.message.includes(server), `${what}: message has no key material`);
  }
});

t.test('decodeBase64Strict', async (t) => {
  t.same(decodeBase64Strict('biws'), Buffer.from('n,,'));
  t.same(decodeBase64Strict(''), Buffer.alloc(0));
  t.equal(decodeBase64Strict('biw'), null, 'missing padding');
  t.equal(decodeBase64Strict('bi ws'), null, 'whitespace');
  t.equal(decodeBase64Strict('b-ws'), null, 'base64url alphabet');
  t.equal(decodeBase64Strict('bi=s'), null, 'padding in the middle');
});
