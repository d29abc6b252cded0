// Unit tests for src/auth/client-auth.ts: a scripted client answers each auth request, so every
// outcome is checked message by message. Covers empty secrets (never authenticate, except trust),
// and that an unknown user cannot be told from a wrong password: same SQLSTATE, same message,
// same exchange, a stable SCRAM salt and the same key-derivation work.

import t from 'tap';
import { authenticateClient, type AuthOutcome, type ClientAuthMethod } from '../../src/auth/client-auth.js';
import { md5Hash, md5Response } from '../../src/auth/md5.js';
import { ScramClientExchange, SCRAM_SHA_256, buildScramSecret } from '../../src/auth/scram-client.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { AuthRequest } from '../../src/protocol/message-types.js';

interface Run {
  outcome: AuthOutcome;
  /** The auth request codes pgrelay sent, in order (3 cleartext, 5 md5, 10/11/12 SASL). */
  requests: number[];
  /** server-first-message, for SCRAM. */
  serverFirst: string | null;
  /** Time spent inside pgrelay's side of the exchange (the client's own work excluded), ms. */
  serverMs: number;
}

/** Runs one exchange: a client that knows `password` answers whatever pgrelay asks. */
async function run(authType: ClientAuthMethod, user: string, stored: string | undefined, password: string): Promise<Run> {
  const requests: number[] = [];
  let last: Buffer | null = null;
  let scram: ScramClientExchange | null = null;
  let serverFirst: string | null = null;
  let clientMs = 0;
  const io = {
    send(m: Buffer): void {
      if (m[0] === 0x52) requests.push(m.readInt32BE(5));
      last = m;
    },
    async nextMessage(): Promise<Buffer> {
      const started = performance.now();
      try {
        const m = last!;
        const code = m.readInt32BE(5);
        switch (code) {
          case AuthRequest.CleartextPassword:
            return serialize.password(password);
          case AuthRequest.MD5Password:
            return serialize.password(md5Response(password, user, m.subarray(9, 13)));
          case AuthRequest.SASL:
            scram = new ScramClientExchange({ password });
            return serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, scram.clientFirst());
          case AuthRequest.SASLContinue:
            serverFirst = m.toString('utf8', 9);
            return serialize.sendSCRAMClientFinalMessage(scram!.clientFinal(serverFirst));
        }
        throw new Error(`unexpected auth request ${code}`);
      } finally {
        clientMs += performance.now() - started;
      }
    },
  };
  const started = performance.now();
  const outcome = await authenticateClient(io, authType, user, stored);
  return { outcome, requests, serverFirst, serverMs: performance.now() - started - clientMs };
}

function failure(r: Run): { sqlstate: string; message: string; code: string } | null {
  return r.outcome.ok ? null : { sqlstate: r.outcome.error.sqlstate, message: r.outcome.error.message, code: r.outcome.error.code };
}

const METHODS: ClientAuthMethod[] = ['plain', 'md5', 'scram-sha-256'];
const verifier = buildScramSecret('alice-secret', Buffer.from('0123456789abcdef'), 4096);

t.test('an empty secret never authenticates, whatever the client sends', async (t) => {
  for (const method of METHODS) {
    for (const password of ['', 'anything']) {
      const r = await run(method, 'admin', '', password);
      t.same(failure(r), { sqlstate: '28P01', message: 'password authentication failed for user "admin"', code: 'PGRELAY_AUTH_FAILED' }, `${method}, password ${JSON.stringify(password)}`);
      t.equal(r.outcome.ok ? null : r.outcome.reason, 'empty_secret', `${method}: the real reason is kept for the log`);
    }
  }
  // The exchange itself looks like a real one: an empty secret is not detectable by what is asked.
  t.same((await run('scram-sha-256', 'admin', '', '')).requests, [AuthRequest.SASL, AuthRequest.SASLContinue]);
  t.same((await run('md5', 'admin', '', '')).requests, [AuthRequest.MD5Password]);
});

t.test('trust ignores secrets, empty or not', async (t) => {
  t.equal((await run('trust', 'admin', '', '')).outcome.ok, true);
  t.equal((await run('trust', 'ghost', undefined, '')).outcome.ok, true);
});

t.test('an unknown user and a wrong password get the same SQLSTATE, message and exchange', async (t) => {
  const secrets: Record<ClientAuthMethod, string> = { plain: 'alice-secret', md5: md5Hash('alice-secret', 'alice'), 'scram-sha-256': verifier, trust: '' };
  for (const method of METHODS) {
    const wrong = await run(method, 'alice', secrets[method], 'nope');
    const unknown = await run(method, 'alice', undefined, 'nope');
    t.same(failure(unknown), failure(wrong), `${method}: same code, SQLSTATE and message`);
    t.same(failure(wrong), { sqlstate: '28P01', message: 'password authentication failed for user "alice"', code: 'PGRELAY_AUTH_FAILED' });
    t.same(unknown.requests, wrong.requests, `${method}: same auth requests`);
    t.equal(unknown.outcome.ok ? null : unknown.outcome.reason, 'no_such_user');
    t.equal(wrong.outcome.ok ? null : wrong.outcome.reason, 'wrong_password');
  }
  // An md5 hash cannot answer SCRAM: refused the same way, not with a message that shows the user exists.
  const md5UnderScram = await run('scram-sha-256', 'alice', md5Hash('alice-secret', 'alice'), 'alice-secret');
  t.same(failure(md5UnderScram), { sqlstate: '28P01', message: 'password authentication failed for user "alice"', code: 'PGRELAY_AUTH_FAILED' });
  t.equal(md5UnderScram.outcome.ok ? null : md5UnderScram.outcome.reason, 'unusable_secret');
  // The right passwords still work.
  for (const method of METHODS) t.equal((await run(method, 'alice', secrets[method], 'alice-secret')).outcome.ok, true, `${method}: right password`);
  t.equal((await run('scram-sha-256', 'alice', 'alice-secret', 'alice-secret')).outcome.ok, true, 'scram against a plain secret');
});

t.test('SCRAM: an unknown user sees a stable salt and the default iteration count, as a real user does', async (t) => {
  const salt = (r: Run): string => /,s=([^,]+),i=(\d+)/.exec(r.serverFirst!)!.slice(1).join(' i=');
  const ghost1 = salt(await run('scram-sha-256', 'ghost', undefined, 'x'));
  const ghost2 = salt(await run('scram-sha-256', 'ghost', undefined, 'y'));
  const other = salt(await run('scram-sha-256', 'ghost2', undefined, 'x'));
  t.equal(ghost1, ghost2, 'same salt on every attempt, like a stored verifier');
  t.not(ghost1, other, 'a different salt per user name');
  t.match(ghost1, / i=4096$/);
  const real1 = salt(await run('scram-sha-256', 'alice', verifier, 'x'));
  t.equal(real1, salt(await run('scram-sha-256', 'alice', verifier, 'y')));
  // A plain secret's verifier is derived with a per-user salt that is stable too.
  const plain1 = salt(await run('scram-sha-256', 'bob', 'bob-secret', 'x'));
  t.equal(plain1, salt(await run('scram-sha-256', 'bob', 'bob-secret', 'y')));
});

t.test('SCRAM: an unknown user costs pgrelay the same key derivation as a real one', async (t) => {
  // Interleaved rounds, medians: the machine is shared, so only a gross difference counts. Before
  // the fix a stored verifier needed no PBKDF2 at all while an unknown user paid for one.
  const kinds: Array<[string, string | undefined]> = [
    ['unknown', undefined],
    ['verifier', verifier],
    ['plain', 'alice-secret'],
    ['empty', ''],
  ];
  const times = new Map<string, number[]>(kinds.map(([k]) => [k, []]));
  for (let i = 0; i < 3; i++) for (const [, s] of kinds) await run('scram-sha-256', 'alice', s, 'nope'); // warm up
  for (let i = 0; i < 25; i++) {
    for (const [k, s] of kinds) times.get(k)!.push((await run('scram-sha-256', 'alice', s, 'nope')).serverMs);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const m = new Map([...times].map(([k, xs]) => [k, median(xs)]));
  t.comment(`median server-side ms: ${JSON.stringify(Object.fromEntries(m))}`);
  for (const [k] of kinds) {
    const ratio = m.get(k)! / m.get('unknown')!;
    t.ok(ratio > 0.4 && ratio < 2.5, `${k} costs about what an unknown user does (ratio ${ratio.toFixed(2)})`);
  }
});
