// Unit tests for SCRAM-SHA-256: src/auth/scram-client.ts and src/auth/scram-server.ts,
// against each other, RFC 7677's test vector, PostgreSQL-generated verifiers and
// node-postgres's client.

import t from 'tap';
import { createRequire } from 'node:module';
import {
  SCRAM_MAX_ITERATIONS,
  SCRAM_SHA_256,
  ScramClientExchange,
  buildScramSecret,
  deriveScramKeys,
  hmacSha256,
  saslPrep,
  sha256,
  xorBuffers,
} from '../../src/auth/scram-client.js';
import { ScramServerExchange } from '../../src/auth/scram-server.js';
import { parseSecret } from '../../src/auth/secret.js';
import type { ScramSecret, Secret } from '../../src/auth/secret.js';

// RFC 7677 section 3.
const RFC = {
  user: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

// Verifiers PostgreSQL 15 generated (ALTER ROLE ... PASSWORD) for non-ASCII
// passwords: pins our SASLprep to the server's, including its raw fallback.
const PG_VERIFIERS: Array<[string, string, string]> = [
  ['\uFB01\uFF50\uFF41\uFF53\uFF53', 'NFKC: ligature + fullwidth',
    'SCRAM-SHA-256$4096:QBrtVwLxBTcFlzEDBkhCNQ==$dXpBCOMLOYR2E28/s4PP3pNOJuT3YGevrrE6ZBFUfIE=:QVNuG5Ctw/qPel3UBYx9K4GUbUgPami36I1chmxCRoo='],
  ['a\u00A0b\u00ADc', 'NBSP to space, soft hyphen dropped',
    'SCRAM-SHA-256$4096:BpzAW1Y5TlS5JlcSve0s2A==$Hy6+UlCaLMImAee+YoGk1icmmPzdO9UbDrzG2mZGDNc=:ZAtXo/RD/n0IN8oGD/tikLfPJfqbFAPmkcCqMInpX6Y='],
  ['\uFB01\u0001', 'prohibited control character: raw bytes',
    'SCRAM-SHA-256$4096:HoDDBHZHdZQFIhfwHadOJg==$9sC+mqpUIdrOxP4VQ126RqEpuv5I5rfsyUeH2ux9hQ8=:2DWQt+srr9k3Jcx7Saus7uwptmk69D3jAnkNV7J38ec='],
  ['\u00AD', 'empty after mapping: raw bytes',
    'SCRAM-SHA-256$4096:RNIDIABtdAI4c44+uF4dKg==$sIyuRKM04QeIpPQidfioNuP/lSzsESIisPVTH7egNhQ=:SFHQoi0ZZL3RBt8mAb9y+bng/xRiCT0ATqP5aBMQFWw='],
  ['\u2168\u{1FFFE}', 'supplementary non-character: raw bytes',
    'SCRAM-SHA-256$4096:AGRU+O/8xGoYwvqP0Ij7hg==$7fOP35AZ/VTBRejNqmjJ8Z9hn/+F/P8E1GFyLK3/c4I=:lZvNOkoUTTKZhIP6GsYKCIKkUVFtspTueZ9XhK+myvI='],
  ['plain ascii\u0007', 'ASCII (even control characters) as is',
    'SCRAM-SHA-256$4096:NHlemTTOskYUbHTVBZvoow==$P2u4uNv/OxjqysrGVdL9yZuKP1Xp+4FohA2B5y4gcgQ=:jRwTQXqSITicsc9H/dv1dquCoik4UJ0xEENAtE7bt3c='],
];

// node-postgres's SCRAM client (untyped CJS), as an independent implementation.
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: object): { response: string };
  continueSession(session: object, password: string, serverData: string, stream?: object): Promise<void>;
  finalizeSession(session: object, serverData: string): void;
};

function scram(s: Secret): ScramSecret {
  if (s.kind !== 'scram') throw new Error('expected a SCRAM secret');
  return s;
}

/** Run a full exchange between our client and server. */
function exchange(client: ScramClientExchange, server: ScramServerExchange) {
  const serverFirst = server.serverFirst(client.clientFirst());
  const result = server.serverFinal(client.clientFinal(serverFirst));
  if (result.ok) client.verifyServerFinal(result.serverFinal);
  return result;
}

t.test('RFC 7677 test vector, client side', async (t) => {
  const c = new ScramClientExchange({ password: RFC.password }, { nonce: RFC.clientNonce, username: RFC.user });
  t.equal(c.clientFirst(), RFC.clientFirst);
  t.equal(c.clientFinal(RFC.serverFirst), RFC.clientFinal);
  t.doesNotThrow(() => c.verifyServerFinal(RFC.serverFinal));

  const bad = new ScramClientExchange({ password: RFC.password }, { nonce: RFC.clientNonce, username: RFC.user });
  bad.clientFirst();
  bad.clientFinal(RFC.serverFirst);
  t.throws(() => bad.verifyServerFinal('v=' + Buffer.alloc(32).toString('base64')), /server signature mismatch/);
});

t.test('RFC 7677 test vector, server side', async (t) => {
  const secret = parseSecret(buildScramSecret(RFC.password, Buffer.from(RFC.salt, 'base64'), 4096));
  const s = new ScramServerExchange(secret, { nonce: RFC.serverNonce });
  t.equal(s.serverFirst(RFC.clientFirst), RFC.serverFirst);
  const r = s.serverFinal(RFC.clientFinal);
  t.same(r.ok && r.serverFinal, RFC.serverFinal);
  // ClientKey = HMAC(SaltedPassword, "Client Key")
  const keys = deriveScramKeys(RFC.password, Buffer.from(RFC.salt, 'base64'), 4096);
  t.same(r.ok && r.clientKey, keys.clientKey, 'recovered ClientKey');
});

t.test('default client-first message', async (t) => {
  const first = new ScramClientExchange({ password: 'x' }).clientFirst();
  t.match(first, /^n,,n=\*,r=[A-Za-z0-9+/]{24}$/);
  t.not(first, new ScramClientExchange({ password: 'x' }).clientFirst(), 'fresh nonce each time');
  t.equal(
    new ScramClientExchange({ password: 'x' }, { nonce: 'abc', username: 'a=b,c' }).clientFirst(),
    'n,,n=a=3Db=2Cc,r=abc',
    'saslname escaping',
  );
  t.equal(SCRAM_SHA_256, 'SCRAM-SHA-256');
});

t.test('client and server agree', async (t) => {
  t.test('plain secret', async (t) => {
    const server = new ScramServerExchange(parseSecret('s3cret'));
    t.ok(exchange(new ScramClientExchange({ password: 's3cret' }), server).ok);
  });

  t.test('plain secret with custom iterations and a fresh salt', async (t) => {
    const s1 = new ScramServerExchange(parseSecret('s3cret'), { iterations: 1000 });
    const first = s1.serverFirst('n,,n=,r=abc');
    t.match(first, /^r=abc[A-Za-z0-9+/]{24},s=[A-Za-z0-9+/]{22}==,i=1000$/);
    const s2 = new ScramServerExchange(parseSecret('s3cret'));
    t.not(s2.serverFirst('n,,n=,r=abc').split(',')[1], first.split(',')[1], 'salt differs per exchange');
  });

  t.test('SCRAM secret', async (t) => {
    const secret = scram(parseSecret(buildScramSecret('s3cret')));
    const r = exchange(new ScramClientExchange({ password: 's3cret' }), new ScramServerExchange(secret));
    t.ok(r.ok);
    t.same(r.ok && r.clientKey, deriveScramKeys('s3cret', secret.salt, secret.iterations).clientKey);
  });

  t.test('non-ASCII password through SASLprep on both sides', async (t) => {
    const secret = parseSecret(buildScramSecret('\uFB01\uFF50\uFF41\uFF53\uFF53'));
    t.ok(exchange(new ScramClientExchange({ password: '\uFB01\uFF50\uFF41\uFF53\uFF53' }), new ScramServerExchange(secret)).ok);
    t.ok(exchange(new ScramClientExchange({ password: 'fipass' }), new ScramServerExchange(secret)).ok, 'NFKC-equivalent');
  });

  t.test('the username in client-first is ignored', async (t) => {
    const secret = parseSecret(buildScramSecret('pw'));
    t.ok(exchange(new ScramClientExchange({ password: 'pw' }, { username: 'someone-else' }), new ScramServerExchange(secret)).ok);
  });

  t.test('wrong password', async (t) => {
    for (const secret of [parseSecret('s3cret'), parseSecret(buildScramSecret('s3cret'))]) {
      const client = new ScramClientExchange({ password: 's3creT' });
      const r = exchange(client, new ScramServerExchange(secret));
      t.same(r, { ok: false, reason: 'SCRAM client proof does not match the stored verifier' }, secret.kind);
    }
  });
});

t.test('key-based login (no plain password)', async (t) => {
  const stored = scram(parseSecret(buildScramSecret('client-password')));

  // 1. A client logs in to pgrelay with its password; pgrelay learns ClientKey.
  const r1 = exchange(new ScramClientExchange({ password: 'client-password' }), new ScramServerExchange(stored));
  if (!r1.ok) throw new Error(r1.reason);

  // 2. pgrelay logs in "upstream" (same verifier) with ClientKey + ServerKey only.
  const keyClient = new ScramClientExchange({ clientKey: r1.clientKey, serverKey: stored.serverKey });
  const r2 = exchange(keyClient, new ScramServerExchange(stored));
  t.ok(r2.ok, 'upstream login with recovered keys');
  t.same(r2.ok && r2.clientKey, r1.clientKey);

  t.test('wrong ClientKey is rejected by the server', async (t) => {
    const c = new ScramClientExchange({ clientKey: Buffer.alloc(32, 7), serverKey: stored.serverKey });
    t.equal(exchange(c, new ScramServerExchange(stored)).ok, false);
  });

  t.test('wrong ServerKey makes the client reject the server', async (t) => {
    const c = new ScramClientExchange({ clientKey: r1.clientKey, serverKey: Buffer.alloc(32, 7) });
    t.throws(() => exchange(c, new ScramServerExchange(stored)), /server signature mismatch/);
  });

  t.test('keys must be 32 bytes', async (t) => {
    t.throws(() => new ScramClientExchange({ clientKey: Buffer.alloc(31), serverKey: stored.serverKey }), /32 bytes/);
    t.throws(() => new ScramClientExchange({ clientKey: r1.clientKey, serverKey: Buffer.alloc(0) }), /32 bytes/);
  });
});

t.test('interop with node-postgres SCRAM client', async (t) => {
  const secret = parseSecret(buildScramSecret('pg-password'));
  for (const [label, stream] of [['gs2 n,,', undefined], ['gs2 y,, (TLS without PLUS)', {}]] as const) {
    const session = pgSasl.startSession([SCRAM_SHA_256], stream);
    t.match(session.response, label === 'gs2 n,,' ? /^n,,/ : /^y,,/);
    const server = new ScramServerExchange(secret);
    const serverFirst = server.serverFirst(session.response);
    await pgSasl.continueSession(session, 'pg-password', serverFirst, stream);
    const r = server.serverFinal((session as unknown as { response: string }).response);
    t.ok(r.ok, label);
    if (r.ok) t.doesNotThrow(() => pgSasl.finalizeSession(session, r.serverFinal), `${label}: client accepts server`);
  }
});

t.test('tampered nonces', async (t) => {
  const secret = parseSecret(buildScramSecret('pw'));

  t.test('client-final nonce differs from the combined nonce: authentication failure', async (t) => {
    const client = new ScramClientExchange({ password: 'pw' });
    const server = new ScramServerExchange(secret);
    const final = client.clientFinal(server.serverFirst(client.clientFirst()));
    const tampered = final.replace(/,r=([^,]*)/, (_m, n: string) => `,r=${n.slice(0, -1)}X`);
    t.same(server.serverFinal(tampered), { ok: false, reason: 'SCRAM nonce mismatch' });
  });

  t.test('server nonce not extending the client nonce: client throws', async (t) => {
    const client = new ScramClientExchange({ password: 'pw' }, { nonce: 'abc' });
    client.clientFirst();
    t.throws(() => client.clientFinal('r=abXdef,s=c2FsdA==,i=4096'), /does not extend the client nonce/);
  });

  t.test('server nonce equal to the client nonce: client throws', async (t) => {
    const client = new ScramClientExchange({ password: 'pw' }, { nonce: 'abc' });
    client.clientFirst();
    t.throws(() => client.clientFinal('r=abc,s=c2FsdA==,i=4096'), /does not extend the client nonce/);
  });
});

t.test('server: malformed client-first-message throws', async (t) => {
  const secret = parseSecret(buildScramSecret('pw'));
  const cases: Array<[string, RegExp]> = [
    ['p=tls-server-end-point,,n=,r=abc', /SCRAM-SHA-256-PLUS/],
    ['', /unexpected channel binding flag/],
    ['x,,n=,r=abc', /unexpected channel binding flag/],
    ['n', /unexpected channel binding flag/],
    ['nn,n=,r=abc', /unexpected channel binding flag/],
    ['n,a=admin,n=,r=abc', /authorization identity/],
    ['n,x,n=,r=abc', /malformed gs2 header/],
    ['n,,', /expected attribute=value/],
    ['n,,m=ext,n=,r=abc', /unsupported extension/],
    ['n,,n=', /expected n=<user>,r=<nonce>/],
    ['n,,r=abc,n=', /expected n=<user>,r=<nonce>/],
    ['n,,n=,x=abc', /expected n=<user>,r=<nonce>/],
    ['n,,n=,r=', /invalid nonce/],
    ['n,,n=,r=ab\u00e9', /invalid nonce/],
    ['n,,n=,r=abc,junk', /expected attribute=value/],
  ];
  for (const [msg, re] of cases) {
    t.throws(() => new ScramServerExchange(secret).serverFirst(msg), re, JSON.stringify(msg));
  }
  t.ok(new ScramServerExchange(secret).serverFirst('n,,n=,r=abc,x=extension').startsWith('r=abc'), 'extensions ignored');
});

t.test('server: malformed client-final-message throws', async (t) => {
  const secret = parseSecret(buildScramSecret('pw'));
  const proof = Buffer.alloc(32).toString('base64');
  const start = (gs2 = 'n,,') => {
    const s = new ScramServerExchange(secret, { nonce: 'SRV' });
    s.serverFirst(`${gs2}n=,r=CLI`);
    return s;
  };
  const cases: Array<[string, RegExp]> = [
    ['', /expected attribute=value/],
    [`c=biws,r=CLISRV`, /expected c=…,r=…,p=…/],
    [`r=CLISRV,c=biws,p=${proof}`, /expected c=…,r=…,p=…/],
    [`c=biws,r=CLISRV,p=${proof},x=1`, /expected c=…,r=…,p=…/],
    [`c=biws,r=CLISRV,p=${proof},p=${proof}`, /proof must be the last attribute/],
    [`c=eSws,r=CLISRV,p=${proof}`, /channel binding check failed/],
    [`c=,r=CLISRV,p=${proof}`, /channel binding check failed/],
    [`c=biws,r=CLISRV,p=${proof.slice(0, -4)}`, /malformed proof/],
    [`c=biws,r=CLISRV,p=not*base64`, /malformed proof/],
  ];
  for (const [msg, re] of cases) t.throws(() => start().serverFinal(msg), re, JSON.stringify(msg));
  t.throws(() => start('y,,').serverFinal(`c=biws,r=CLISRV,p=${proof}`), /channel binding check failed/, 'y,, needs c=eSws');
  t.same(start('y,,').serverFinal(`c=eSws,r=CLISRV,p=${proof}`).ok, false, 'y,, with c=eSws reaches proof check');
});

t.test('server: extensions before the proof are part of AuthMessage', async (t) => {
  const secret = scram(parseSecret(buildScramSecret('pw', Buffer.from('salty'), 4096)));
  const keys = deriveScramKeys('pw', secret.salt, secret.iterations);
  const s = new ScramServerExchange(secret, { nonce: 'SRV' });
  const serverFirst = s.serverFirst('n,,n=,r=CLI');
  const withoutProof = 'c=biws,r=CLISRV,x=some-extension';
  const authMessage = `n=,r=CLI,${serverFirst},${withoutProof}`;
  const proof = xorBuffers(keys.clientKey, hmacSha256(sha256(keys.clientKey), authMessage));
  const r = s.serverFinal(`${withoutProof},p=${proof.toString('base64')}`);
  t.same(r.ok && r.serverFinal, `v=${hmacSha256(keys.serverKey, authMessage).toString('base64')}`);
});

t.test('server: call order and construction', async (t) => {
  const secret = parseSecret(buildScramSecret('pw'));
  const s = new ScramServerExchange(secret);
  t.throws(() => s.serverFinal('c=biws,r=x,p=y'), /out of order/);
  s.serverFirst('n,,n=,r=abc');
  t.throws(() => s.serverFirst('n,,n=,r=abc'), /called twice/);
  s.serverFinal(`c=biws,r=wrong,p=${Buffer.alloc(32).toString('base64')}`);
  t.throws(() => s.serverFinal('c=biws,r=x,p=y'), /out of order/, 'only one final');

  t.throws(() => new ScramServerExchange(parseSecret('md53175bce1d3201d16594cebf9d7eb3f9d')), /MD5 secret/);
  t.throws(() => new ScramServerExchange(secret, { nonce: 'a,b' }), /server nonce/);
  t.throws(() => new ScramServerExchange(parseSecret('pw'), { iterations: 0 }), /iteration count/);
});

t.test('server errors never contain the secret', async (t) => {
  const password = 'very-secret-password';
  for (const secret of [parseSecret(password), parseSecret(buildScramSecret(password))]) {
    const s = new ScramServerExchange(secret);
    s.serverFirst('n,,n=,r=abc');
    const err = t.throws(() => s.serverFinal('c=biws,r=abc,p=***')) as unknown as Error;
    t.notOk(err.message.includes(password));
    if (secret.kind === 'scram') {
      t.notOk(err.message.includes(secret.storedKey.toString('base64')));
      t.notOk(err.message.includes(secret.serverKey.toString('base64')));
    }
  }
});

t.test('client: malformed server messages throw', async (t) => {
  const started = () => {
    const c = new ScramClientExchange({ password: 'pw' }, { nonce: 'CLI' });
    c.clientFirst();
    return c;
  };
  const cases: Array<[string, RegExp]> = [
    ['', /expected attribute=value/],
    ['m=ext,r=CLISRV,s=c2FsdA==,i=4096', /unsupported extension/],
    ['r=CLISRV,s=c2FsdA==', /expected r=,s=,i=/],
    ['s=c2FsdA==,r=CLISRV,i=4096', /expected r=,s=,i=/],
    ['r=CLI\u00e9,s=c2FsdA==,i=4096', /invalid nonce/],
    ['r=CLISRV,s=,i=4096', /invalid salt/],
    ['r=CLISRV,s=c2FsdA,i=4096', /invalid salt/],
    ['r=CLISRV,s=c2FsdA==,i=0', /invalid iteration count/],
    ['r=CLISRV,s=c2FsdA==,i=-1', /invalid iteration count/],
    ['r=CLISRV,s=c2FsdA==,i=4096x', /invalid iteration count/],
    ['r=CLISRV,s=c2FsdA==,i=', /invalid iteration count/],
    ['r=CLISRV,s=c2FsdA==,i=99999999999', /invalid iteration count/],
    [`r=CLISRV,s=c2FsdA==,i=${SCRAM_MAX_ITERATIONS + 1}`, /exceeds the maximum/],
  ];
  for (const [msg, re] of cases) t.throws(() => started().clientFinal(msg), re, JSON.stringify(msg));
  t.match(started().clientFinal('r=CLISRV,s=c2FsdA==,i=1,x=ext'), /^c=biws,r=CLISRV,p=/, 'extensions ignored');

  const finished = () => {
    const c = started();
    c.clientFinal('r=CLISRV,s=c2FsdA==,i=1');
    return c;
  };
  t.throws(() => finished().verifyServerFinal('e=invalid-proof'), /server reported "invalid-proof"/);
  t.throws(() => finished().verifyServerFinal('x=1'), /expected v= or e=/);
  t.throws(() => finished().verifyServerFinal(''), /expected attribute=value/);
  t.throws(() => finished().verifyServerFinal('v=abc'), /invalid server signature/);
  t.throws(() => finished().verifyServerFinal(`v=${Buffer.alloc(16).toString('base64')}`), /invalid server signature/);
});

t.test('client: call order and construction', async (t) => {
  const c = new ScramClientExchange({ password: 'pw' });
  t.throws(() => c.clientFinal('r=x,s=c2FsdA==,i=1'), /out of order/);
  t.throws(() => c.verifyServerFinal('v=x'), /out of order/);
  c.clientFirst();
  t.throws(() => c.clientFirst(), /called twice/);
  t.throws(() => new ScramClientExchange({ password: 'pw' }, { nonce: '' }), /client nonce/);
  t.throws(() => new ScramClientExchange({ password: 'pw' }, { nonce: 'a,b' }), /client nonce/);
  t.throws(() => new ScramClientExchange({ password: 42 } as unknown as { password: string }), /must be a string/);
});

t.test('saslPrep', async (t) => {
  t.equal(saslPrep('pencil'), 'pencil');
  t.equal(saslPrep('a\u0001b'), 'a\u0001b', 'ASCII untouched, even control characters');
  t.equal(saslPrep('\uFB01'), 'fi', 'NFKC');
  t.equal(saslPrep('\uFF50\uFF41\uFF53\uFF53'), 'pass', 'fullwidth');
  t.equal(saslPrep('e\u0301'), '\u00e9', 'composed');
  t.equal(saslPrep('a\u00A0b\u3000c\u200Bd'), 'a b c d', 'non-ASCII spaces (C.1.2) to space');
  t.equal(saslPrep('a\u00ADb\uFE0F\u200Dc'), 'abc', 'B.1 mapped to nothing');
  t.equal(saslPrep('\uFB01\u0001'), '\uFB01\u0001', 'prohibited (C.2.1): raw');
  t.equal(saslPrep('\uFB01\u0085'), '\uFB01\u0085', 'prohibited (C.2.2): raw');
  t.equal(saslPrep('\uFB01\uE000'), '\uFB01\uE000', 'prohibited (C.3): raw');
  t.equal(saslPrep('\uFB01\u{10FFFF}'), '\uFB01\u{10FFFF}', 'prohibited (C.4, plane 16): raw');
  t.equal(saslPrep('\uFB01\uD800'), '\uFB01\uD800', 'lone surrogate (C.5): raw');
  t.equal(saslPrep('\uFB01\u200E'), '\uFB01\u200E', 'prohibited (C.8): raw');
  t.equal(saslPrep('\uFB01\u{E0001}'), '\uFB01\u{E0001}', 'prohibited (C.9): raw');
  t.equal(saslPrep('\u00AD'), '\u00AD', 'empty after mapping: raw');
});

t.test('xorBuffers', async (t) => {
  t.same(xorBuffers(Buffer.from([0xf0, 0x0f]), Buffer.from([0xff, 0xff])), Buffer.from([0x0f, 0xf0]));
  t.throws(() => xorBuffers(Buffer.alloc(1), Buffer.alloc(2)), /length mismatch/);
});

t.test('buildScramSecret matches verifiers generated by PostgreSQL', async (t) => {
  for (const [password, what, verifier] of PG_VERIFIERS) {
    const s = scram(parseSecret(verifier));
    t.equal(buildScramSecret(password, s.salt, s.iterations), verifier, what);
  }
});

t.test('buildScramSecret defaults and validation', async (t) => {
  const s = scram(parseSecret(buildScramSecret('pw')));
  t.equal(s.iterations, 4096);
  t.equal(s.salt.length, 16);
  t.not(buildScramSecret('pw'), buildScramSecret('pw'), 'random salt');
  t.match(buildScramSecret('pw', Buffer.from('salt'), 1), /^SCRAM-SHA-256\$1:c2FsdA==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  t.throws(() => buildScramSecret('pw', Buffer.alloc(0)), /salt must not be empty/);
  t.throws(() => buildScramSecret('pw', undefined, 0), /iteration count/);
  t.throws(() => buildScramSecret('pw', undefined, 1.5), /iteration count/);
  t.throws(() => buildScramSecret('pw', undefined, SCRAM_MAX_ITERATIONS + 1), /iteration count/);
});
