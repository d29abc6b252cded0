// The transaction-boundary property, on real PostgreSQL: random client message streams (simple
// and extended queries, named prepared statements that pgrelay tracks from server to server,
// pipelines with and without Sync, Flush, COPY, BEGIN/COMMIT/ROLLBACK, errors), cut at random points by a client that vanishes or by every server connection being
// cut, through pgrelay with a pool smaller than the number of clients. After each case:
// - every client saw exactly what PostgreSQL itself sends for its stream (the same script run
//   straight against PostgreSQL), up to the fault, and a fault only as PostgreSQL could show it:
//   a FATAL, or an ERROR with an idle ReadyForQuery where the client had no transaction open;
// - probe clients on the pool's servers see only their own replies;
// - each client's rows are exactly what PostgreSQL commits for some prefix of what it sent, and
//   include every commit the client saw acknowledged: nothing abandoned is ever committed.
//
// PGRELAY_PROPERTY_RUNS sets the number of cases (`npm run test:soak` runs many more);
// PGRELAY_PROPERTY_SEED replays a failing seed (with PGRELAY_PROPERTY_PATH, the one failing case).

import t from 'tap';
import fc from 'fast-check';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { CutProxy } from '../harness/cut-proxy.js';
import { WireClient, errorFields, pbe, query, sync, types, type WireMessage } from '../harness/wire-client.js';
import { framesWithin, runModel, TABLE, type Frame, type Op, type Stmt } from '../harness/txn-model.js';

const RUNS = Number(process.env['PGRELAY_PROPERTY_RUNS'] ?? 60);
const SEED = process.env['PGRELAY_PROPERTY_SEED'];

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
await cluster.psql(`create table ${TABLE} (tag text)`);
const proxy = await CutProxy.start(cluster);
t.teardown(() => proxy.stop());
const relay = await startRelay(
  { host: '127.0.0.1', port: proxy.port },
  { settings: { defaultPoolSize: 2, queryWaitTimeoutMs: 8000, serverCleanupTimeoutMs: 2000 } },
);
t.teardown(() => relay.stop());

// ---- the cases ----------------------------------------------------------------------------

type Round = Op[];
interface ClientSpec {
  rounds: Round[];
  cut: { kind: 'none' | 'drop' | 'terminate'; round: number; at: number; delayMs: number };
}
interface CaseSpec {
  clients: ClientSpec[];
  /** Cut every server connection this long after the clients start (null: no server fault). */
  serverCutMs: number | null;
}

const simpleStmt = fc.constantFrom<Stmt>('insert', 'insert', 'begin', 'commit', 'rollback', 'select', 'error', 'sleep');
const extendedStmt = fc.constantFrom<Stmt>('insert', 'insert', 'begin', 'commit', 'rollback', 'select', 'error', 'parse-error', 'sleep');
const arbRound: fc.Arbitrary<Round> = fc.oneof(
  fc.array(simpleStmt.map((s): Op => ({ k: 'q', s })), { minLength: 1, maxLength: 3 }),
  fc.array(
    fc.oneof(
      { weight: 5, arbitrary: extendedStmt.map((s): Op => ({ k: 'x', s })) },
      // Named statements: prepared, bound, executed and closed; and the one each client prepared first.
      { weight: 2, arbitrary: extendedStmt.map((s): Op => ({ k: 'xn', s, name: '' })) },
      { weight: 1, arbitrary: fc.constant<Op>({ k: 'xs' }) },
      { weight: 2, arbitrary: fc.constant<Op>({ k: 'sync' }) },
      { weight: 1, arbitrary: fc.constant<Op>({ k: 'flush' }) },
    ),
    { minLength: 1, maxLength: 6 },
  ),
  fc.integer({ min: 1, max: 3 }).map((n): Round => [{ k: 'copy', tags: Array.from({ length: n }, () => '') }]),
);
const arbClient: fc.Arbitrary<ClientSpec> = fc.record({
  rounds: fc.array(arbRound, { minLength: 1, maxLength: 5 }),
  cut: fc.record({
    kind: fc.constantFrom<ClientSpec['cut']['kind']>('none', 'drop', 'drop', 'terminate'),
    round: fc.nat({ max: 5 }),
    at: fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000),
    delayMs: fc.integer({ min: 0, max: 20 }),
  }),
});
const arbCase: fc.Arbitrary<CaseSpec> = fc.record({
  clients: fc.array(arbClient, { minLength: 1, maxLength: 3 }),
  serverCutMs: fc.option(fc.integer({ min: 0, max: 150 }), { freq: 3 }),
});

let caseNo = 0;

/**
 * The client's script with its tags filled in (`prefix` keeps the straight and the proxied run
 * apart with strings of the same length), and a Sync before any simple query that would follow
 * an unsynced extended message (PostgreSQL would fold that query into the pipeline's implicit
 * transaction, which the model does not cover).
 */
function script(spec: ClientSpec, prefix: string, client: number): Round[] {
  let n = 0;
  let names = 0;
  const tag = (): string => `${prefix}${String(caseNo).padStart(5, '0')}-${client}-${String(n++).padStart(3, '0')}`;
  const extendedOp = (op: Op): boolean => op.k === 'x' || op.k === 'xn' || op.k === 'xs';
  let unsynced = false;
  // Every client first prepares "keep" (used by 'xs' ops), in a round of its own.
  const rounds: Round[] = [[{ k: 'prep' }], ...spec.rounds];
  return rounds.map((round) => {
    const out: Op[] = [];
    if (unsynced && !extendedOp(round[0]!) && round[0]!.k !== 'sync' && round[0]!.k !== 'flush') {
      out.push({ k: 'sync' });
      unsynced = false;
    }
    for (const op of round) {
      if (op.k === 'q' || op.k === 'x') out.push(op.s === 'insert' ? { ...op, tag: tag() } : op);
      // A name of its own: one whose Close an error skipped is never used again.
      else if (op.k === 'xn') out.push({ ...op, name: `n${names++}`, ...(op.s === 'insert' ? { tag: tag() } : {}) });
      else if (op.k === 'copy') out.push({ k: 'copy', tags: op.tags.map(() => tag()) });
      else out.push(op);
      if (extendedOp(op)) unsynced = true;
      if (op.k === 'sync' || op.k === 'prep') unsynced = false;
    }
    return out;
  });
}

// ---- running one client ---------------------------------------------------------------------

interface ClientRun {
  /** Everything the client received. */
  got: WireMessage[];
  /** Whole frames sent. */
  sent: number;
  frames: readonly Frame[];
}

const isFault = (m: WireMessage): boolean => {
  if (m.type !== 'E') return false;
  const f = errorFields(m.body);
  return f.get('V') === 'FATAL' || f.get('C') === '08006';
};

async function runClient(port: number, rounds: Round[], cut: ClientSpec['cut'] | null): Promise<ClientRun> {
  const model = runModel(rounds.flat());
  const c = await WireClient.connect(port);
  const got: WireMessage[] = [];
  const signal: { wake: (() => void) | null } = { wake: null };
  const pump = (async () => {
    for (;;) {
      const m = await c.next(60_000).catch(() => null);
      if (m === null) break;
      got.push(m);
      signal.wake?.();
    }
    signal.wake?.();
  })();
  const until = async (done: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!done() && !c.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(1, deadline - Date.now()));
        signal.wake = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  };
  const readies = (): number => got.filter((m) => m.type === 'Z').length;
  let sent = 0;
  let zWanted = 0;
  const cutRound = cut === null || cut.kind === 'none' ? -1 : Math.min(cut.round, rounds.length - 1);
  for (let r = 0; r < rounds.length; r++) {
    const frames = model.frames.slice(sent, sent + framesIn(rounds[r]!));
    const bytes = Buffer.concat(frames.map((f) => f.bytes));
    if (r === cutRound) {
      let k = Math.floor(cut!.at * (bytes.length + 1));
      if (cut!.kind === 'terminate') k = frames.slice(0, framesWithin(frames, k)).reduce((a, f) => a + f.bytes.length, 0);
      if (k > 0) c.socket.write(bytes.subarray(0, k));
      sent += framesWithin(frames, k);
      if (cut!.kind === 'terminate') c.end();
      if (cut!.delayMs > 0) await new Promise((res) => setTimeout(res, cut!.delayMs));
      c.destroy();
      break;
    }
    c.socket.write(bytes);
    sent += frames.length;
    zWanted = model.readies.filter((z) => z.frame < sent).length;
    await until(() => readies() >= zWanted || got.some(isFault), 6000);
    if (c.closed || got.some(isFault)) break;
  }
  if (!c.closed) {
    c.end();
    await until(() => false, 6000); // until the close (the pump reads every reply on the way)
  }
  c.destroy();
  await pump;
  return { got, sent, frames: model.frames };
}

function framesIn(round: Round): number {
  return round.reduce((n, op) => n + (op.k === 'x' ? 3 : op.k === 'xn' ? 4 : op.k === 'xs' || op.k === 'prep' ? 2 : op.k === 'copy' ? op.tags.length + 2 : 1), 0);
}

/**
 * A message as the comparison sees it: its bytes, except that an error or notice leaves out the
 * fields naming PostgreSQL's own source (F file, L line, R routine). When a client binds a statement
 * its server lacks inside a failed transaction block, pgrelay puts the Parse first and PostgreSQL
 * refuses that Parse: the same 25P02, severity and text, raised from exec_parse_message instead of
 * exec_bind_message, and no statement can exist there to let the Bind itself fail.
 */
const hex = (m: WireMessage): string =>
  m.type === 'E' || m.type === 'N'
    ? `${m.type}:${[...errorFields(m.body)].filter(([k]) => k !== 'F' && k !== 'L' && k !== 'R').map(([k, v]) => `${k}=${v}`).join('\0')}`
    : `${m.type}:${m.body.toString('hex')}`;

async function rowsWith(prefix: string): Promise<Set<string>> {
  const out = await cluster.psql(`select tag from ${TABLE} where tag like '${prefix}%' order by tag`);
  return new Set(out === '' ? [] : out.split('\n'));
}

/** Checks one case; returns a description of the first violation, or null. */
async function check(spec: CaseSpec): Promise<string | null> {
  caseNo++;
  const started = Date.now();
  if (process.env['PGRELAY_PROPERTY_TRACE'] !== undefined) process.stderr.write(`case ${caseNo}: ${JSON.stringify(spec)}\n`);
  const direct = spec.clients.map((c, i) => script(c, 'd', i));
  const proxied = spec.clients.map((c, i) => script(c, 'r', i));

  // 1. Straight to PostgreSQL, whole scripts one after the other: the replies to expect, and a
  //    check of the model against the real thing.
  const expected: WireMessage[][] = [];
  for (let i = 0; i < direct.length; i++) {
    const run = await runClient(cluster.port, direct[i]!, null);
    expected.push(run.got);
    const model = runModel(direct[i]!.flat());
    const rows = await rowsWith(`d${String(caseNo).padStart(5, '0')}-${i}-`);
    const want = model.committed[model.frames.length]!;
    if (!sameSet(rows, want)) return `model disagrees with PostgreSQL for client ${i}: committed ${[...rows]} vs model ${[...want]}`;
    const statuses = run.got.filter((m) => m.type === 'Z').map((m) => String.fromCharCode(m.body[0]!));
    if (statuses.join('') !== model.readies.map((z) => z.status).join('')) return `model's ReadyForQuery statuses ${model.readies.map((z) => z.status).join('')} vs PostgreSQL's ${statuses.join('')}`;
  }

  // 2. Through pgrelay, all clients at once, with the cuts.
  let cutTimer: NodeJS.Timeout | null = null;
  if (spec.serverCutMs !== null) cutTimer = setTimeout(() => proxy.cutAll(), spec.serverCutMs);
  const runs = await Promise.all(proxied.map((rounds, i) => runClient(relay.port, rounds, spec.clients[i]!.cut)));
  if (cutTimer !== null) clearTimeout(cutTimer);

  // 3. Probes: whatever a server was left with would show up in their replies (or be committed
  //    by their Sync, which step 4 would see).
  for (let round = 0; round < 2; round++) {
    const probes = await Promise.all([0, 1].map(() => WireClient.connect(relay.port)));
    for (const p of probes) p.send(pbe('select 1'), sync(), query('select 1'));
    for (const p of probes) {
      const reply = await p.readUntilReady(2, 6000).catch((e: Error) => e);
      p.end();
      if (reply instanceof Error) return `probe: ${reply.message}`;
      if (types(reply) !== '12DCZTDCZ') return `probe saw ${types(reply)}`;
    }
  }

  // 4. Per client: replies, fault shape, rows.
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    const want = expected[i]!;
    const f = run.got.findIndex(isFault);
    const before = f < 0 ? run.got : run.got.slice(0, f);
    for (let j = 0; j < before.length; j++) {
      if (j >= want.length || hex(before[j]!) !== hex(want[j]!)) {
        // An error is named by all its fields: the same SQLSTATE and text can come from another
        // place in PostgreSQL (another message reached it).
        const said = (m: WireMessage | undefined): string => (m?.type === 'E' ? ` ${[...errorFields(m.body)].map(([k, v]) => `${k}=${v}`).join(' ')}` : '');
        return `client ${i}: message ${j} is ${before[j]!.type}${said(before[j])} where PostgreSQL sends ${want[j]?.type ?? 'nothing'}${said(want[j])} (got ${types(run.got)}, PostgreSQL ${types(want)})`;
      }
    }
    const model = runModel(proxied[i]!.flat());
    const zs = before.filter((m) => m.type === 'Z');
    const lastStatus = zs.length === 0 ? 'I' : String.fromCharCode(zs[zs.length - 1]!.body[0]!);
    if (f >= 0) {
      const tail = run.got.slice(f);
      const fatal = errorFields(tail[0]!.body).get('V') === 'FATAL';
      if (fatal) {
        if (tail.length !== 1) return `client ${i}: messages after a FATAL (${types(tail)})`;
      } else {
        if (lastStatus !== 'I') return `client ${i}: told ERROR + ReadyForQuery after a server loss while its status was ${lastStatus}`;
        for (let j = 0; j < tail.length; j += 2) {
          const e = tail[j]!;
          const z = tail[j + 1];
          if (e.type !== 'E' || errorFields(e.body).get('C') !== '08006') return `client ${i}: fault tail ${types(tail)}`;
          if (z !== undefined && (z.type !== 'Z' || z.body[0] !== 0x49)) return `client ${i}: fault tail ${types(tail)} not idle`;
        }
      }
    }
    const acked = zs.length === 0 ? 0 : model.readies[zs.length - 1]!.frame + 1;
    const rows = await rowsWith(`r${String(caseNo).padStart(5, '0')}-${i}-`);
    let ok = false;
    for (let j = acked; j <= run.sent && !ok; j++) ok = sameSet(rows, model.committed[j]!);
    if (!ok) {
      return `client ${i}: committed ${[...rows].join(',') || 'nothing'}, which no prefix of what it sent commits (acknowledged up to frame ${acked}, sent ${run.sent}; after all it sent: ${[...model.committed[run.sent]!].join(',') || 'nothing'})`;
    }
  }
  if (process.env['PGRELAY_PROPERTY_TRACE'] !== undefined) process.stderr.write(`case ${caseNo}: ok in ${Date.now() - started} ms\n`);
  return null;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

t.test(`transaction boundaries hold under random streams and cuts (${RUNS} cases)`, async (t) => {
  const failures: string[] = [];
  await fc.assert(
    fc.asyncProperty(arbCase, async (spec) => {
      const problem = await check(spec);
      if (problem !== null) failures.push(problem);
      return problem === null;
    }),
    { numRuns: RUNS, ...(SEED !== undefined ? { seed: Number(SEED) } : {}), ...(process.env['PGRELAY_PROPERTY_PATH'] !== undefined ? { path: process.env['PGRELAY_PROPERTY_PATH'] } : {}), endOnFailure: process.env['PGRELAY_PROPERTY_SHRINK'] === undefined },
  ).then(
    () => {
      t.pass(`${RUNS} cases: every transaction boundary held`);
      t.ok(proxy.cuts > 0 || RUNS < 10, `server connections were cut during the run (${proxy.cuts})`);
    },
    (err: Error) => t.fail(`${failures[0] ?? ''}\n${err.message.split('\n').slice(0, 6).join('\n')}`),
  );
});
