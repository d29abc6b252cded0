// The server hand-off: linkQuery (server_check_query only past server_check_delay, the SET replay
// only when the parameter signatures differ), prepareLinked's outcomes, and the departure policy
// of returnAfterDeparture, with a recording server; then the link query as a scripted backend
// sees it through a real pgrelay.

import t from 'tap';
import { linkQuery, prepareLinked, returnAfterDeparture, type Departure } from '../../src/proxy/server-handoff.js';
import type { ServerConn } from '../../src/proxy/server-conn.js';
import { ServerQueryError } from '../../src/proxy/internal-query.js';
import { paramsSignature } from '../../src/proxy/session-params.js';
import { buildConfig } from '../../src/config/load.js';
import type { Settings } from '../../src/config/types.js';
import { TxStatus } from '../../src/protocol/message-types.js';
import { Disconnect, ErrorCode } from '../../src/errors.js';
import { startRelay } from '../harness/relay.js';
import { query, types, WireClient } from '../harness/wire-client.js';
import { commandComplete, parameterStatus, readyForQuery, startScriptedBackend, type ReceivedMessage } from '../harness/scripted-backend.js';

const settingsWith = (s: Partial<Settings>): Settings => buildConfig({ settings: s }).settings;

/** What linkQuery reads of a server. */
function idleServer(idleSince: number, params: Record<string, string>): ServerConn {
  const map = new Map(Object.entries(params));
  return { idleSince, params: map, paramsSignature: paramsSignature(map) } as unknown as ServerConn;
}

t.test('linkQuery: the check only past server_check_delay', async (t) => {
  const settings = settingsWith({ serverCheckQuery: ' select 1;; ', serverCheckDelayMs: 30_000 });
  const params = new Map([['client_encoding', 'UTF8']]);
  const sig = paramsSignature(params);
  const server = idleServer(1_000_000, { client_encoding: 'UTF8' });
  t.equal(linkQuery(settings, 1_000_000 + 29_999, server, params, sig), '', 'idle for less than the delay: no check');
  t.equal(linkQuery(settings, 1_000_000 + 30_000, server, params, sig), 'select 1;', 'idle for the delay: checked, trimmed, one semicolon');
  t.equal(linkQuery(settingsWith({ serverCheckDelayMs: 0 }), 1_000_000, server, params, sig), 'select 1;', 'delay 0: every time (the default query)');
  t.equal(linkQuery(settingsWith({ serverCheckQuery: '', serverCheckDelayMs: 0 }), 1_000_000, server, params, sig), '', 'empty server_check_query: never');
  // `now` is the janitor's coarse clock, a few hundred ms behind the precise time the pool
  // stamped on the server when it was released.
  t.equal(linkQuery(settingsWith({ serverCheckDelayMs: 0 }), 1_000_000 - 300, server, params, sig), 'select 1;', 'delay 0 checks even when the coarse clock lags the release time');
});

t.test('linkQuery: the replay only when the signatures differ', async (t) => {
  const settings = settingsWith({ serverCheckDelayMs: 30_000 });
  const now = 1_000_000;
  const server = idleServer(now, { client_encoding: 'UTF8', TimeZone: 'UTC' });
  const client = new Map([
    ['client_encoding', 'UTF8'],
    ['TimeZone', 'Europe/Paris'],
    ['application_name', "it's mine"],
  ]);
  t.equal(linkQuery(settings, now, server, client, paramsSignature(client)), "SET TimeZone TO 'Europe/Paris';SET application_name TO 'it''s mine';", 'only what differs, quoted');
  t.equal(linkQuery(settings, now, server, client, server.paramsSignature), '', "equal signatures: no replay, whatever the maps (the signature is the per-transaction test)");
  const same = new Map([
    ['client_encoding', 'UTF8'],
    ['TimeZone', 'UTC'],
  ]);
  t.equal(linkQuery(settings, now, server, same, paramsSignature(same)), '', 'same values: nothing');
  t.equal(
    linkQuery(settingsWith({ serverCheckDelayMs: 0 }), now, server, client, paramsSignature(client)),
    "select 1;SET TimeZone TO 'Europe/Paris';SET application_name TO 'it''s mine';",
    'check first, then the replay, in one Query',
  );
});

/** A server as returnAfterDeparture and prepareLinked use it, recording what was done to it. */
class RecordingServer {
  calls: string[] = [];
  copyIn = false;
  state = 'active';
  txStatus: number = TxStatus.Idle;
  resetOnRelease = '';
  client: object | null = { id: 1 };
  internal: () => Promise<void> = () => Promise.resolve();
  unlink(): void {
    this.calls.push('unlink');
    this.client = null;
  }
  discard(code: string): void {
    this.calls.push(`discard ${code}`);
  }
  release(): void {
    this.calls.push('release');
  }
  resetThenRelease(queries: readonly string[]): void {
    this.calls.push(`reset ${JSON.stringify(queries)}`);
  }
  runInternal(sql: string): Promise<void> {
    this.calls.push(`run ${sql}`);
    return this.internal();
  }
  endInternal(): void {
    this.calls.push('endInternal');
  }
}

t.test('returnAfterDeparture: reuse only at a protocol boundary', async (t) => {
  const settings = settingsWith({ serverResetQuery: 'DISCARD ALL' });
  const clean: Departure = { outstanding: 0, unsynced: false, atBoundary: true, transactionPooling: true };
  const cases: { name: string; left?: Partial<Departure>; server?: Partial<RecordingServer>; want: string }[] = [
    { name: 'a request unanswered', left: { outstanding: 1 }, want: `discard ${Disconnect.ClientLeftMidRequest}` },
    { name: 'half a message forwarded', left: { atBoundary: false }, want: `discard ${Disconnect.ClientLeftMidRequest}` },
    { name: 'unanswered and in a transaction', left: { outstanding: 2 }, server: { txStatus: TxStatus.InTransaction }, want: `discard ${Disconnect.ClientLeftMidRequest}` },
    { name: 'Parse/Bind/Execute without Sync', left: { unsynced: true }, want: `discard ${Disconnect.ClientLeftUnsynced}` },
    { name: 'COPY open', server: { copyIn: true }, want: `discard ${Disconnect.ClientLeftBusy}` },
    { name: "one of pgrelay's own queries running", server: { state: 'internal' }, want: `discard ${Disconnect.ClientLeftBusy}` },
    { name: "idle ('I'), transaction pooling", want: 'reset [""]' },
    { name: "idle, server_reset_query_always", server: { resetOnRelease: 'DISCARD ALL' }, want: 'reset ["DISCARD ALL"]' },
    { name: "in a transaction ('T')", server: { txStatus: TxStatus.InTransaction }, want: 'reset ["ROLLBACK",""]' },
    { name: "in a failed transaction ('E')", server: { txStatus: TxStatus.Failed }, want: 'reset ["ROLLBACK",""]' },
    { name: 'session pooling, idle', left: { transactionPooling: false }, want: 'reset ["DISCARD ALL"]' },
    { name: 'session pooling, in a transaction', left: { transactionPooling: false }, server: { txStatus: TxStatus.InTransaction }, want: 'reset ["ROLLBACK","DISCARD ALL"]' },
  ];
  for (const c of cases) {
    const server = Object.assign(new RecordingServer(), c.server);
    returnAfterDeparture(server as unknown as ServerConn, { ...clean, ...c.left }, settings);
    t.same(server.calls, ['unlink', c.want], c.name);
  }
});

t.test('prepareLinked: ready, refused or lost', async (t) => {
  const ready = new RecordingServer();
  t.same(await prepareLinked(ready as unknown as ServerConn, 'select 1;'), { kind: 'ready' });
  t.same(ready.calls, ['run select 1;', 'endInternal'], 'the link stays');

  const refused = new RecordingServer();
  refused.internal = () => Promise.reject(new ServerQueryError('invalid value for parameter "TimeZone"', '22023'));
  const r = await prepareLinked(refused as unknown as ServerConn, "SET TimeZone TO 'Mars';");
  t.equal(r.kind, 'refused');
  t.equal(r.kind === 'refused' && r.error.code, ErrorCode.SessionSettingRefused);
  t.equal(r.kind === 'refused' && r.error.sqlstate, '22023', "the server's SQLSTATE reaches the client");
  t.same(refused.calls, ["run SET TimeZone TO 'Mars';", 'unlink', 'release'], "the server answered and is idle: it goes back to the pool");

  const refusedInTx = new RecordingServer();
  refusedInTx.txStatus = TxStatus.Failed;
  refusedInTx.internal = () => Promise.reject(new ServerQueryError('nope', '22023'));
  await prepareLinked(refusedInTx as unknown as ServerConn, 'SET x TO 1;');
  t.same(refusedInTx.calls.slice(1), ['unlink', `discard ${Disconnect.PrepareFailed}`], 'not idle after the error: discarded');

  const lost = new RecordingServer();
  lost.internal = () => Promise.reject(new Error('server closed the connection'));
  const l = await prepareLinked(lost as unknown as ServerConn, 'select 1;');
  t.equal(l.kind, 'lost');
  t.equal(l.kind === 'lost' && l.error.code, ErrorCode.ServerPrepareFailed);
  t.same(lost.calls.slice(1), ['unlink', `discard ${Disconnect.PrepareFailed}`]);

  const departed = new RecordingServer();
  departed.internal = () => {
    departed.client = null; // the client left; its departure disposed of the server
    return Promise.reject(new Error('server closed the connection'));
  };
  t.equal((await prepareLinked(departed as unknown as ServerConn, 'select 1;')).kind, 'lost');
  t.same(departed.calls, ['run select 1;'], 'a server the client no longer holds is left alone');
});

t.test('through pgrelay: the backend sees the check and the replay in one Query before the client\'s own', async (t) => {
  const linkReply = (got: readonly ReceivedMessage[]) => {
    const sql = got[0]!.body.toString('utf8', 0, got[0]!.body.length - 1);
    const out = sql.includes('select 1;') ? [commandComplete('SELECT 1')] : [];
    if (sql.includes('SET application_name')) out.push(commandComplete('SET'), parameterStatus('application_name', 'app-b'));
    return [...out, readyForQuery('I')];
  };
  const answer = [commandComplete('SELECT 1'), readyForQuery('I')];
  const backend = await startScriptedBackend({
    scripts: [
      [
        { expect: 'Q', reply: linkReply },
        { expect: 'Q', reply: answer },
        { expect: 'Q', reply: linkReply },
        { expect: 'Q', reply: answer },
        { expect: 'Q', reply: linkReply },
        { expect: 'Q', reply: answer },
      ],
    ],
  });
  const relay = await startRelay(backend, { settings: { defaultPoolSize: 1, serverCheckDelayMs: 0 } });
  t.teardown(async () => {
    await relay.stop();
    await backend.stop();
  });
  const a = await WireClient.connect(relay.port);
  a.send(query('select a'));
  t.equal(types(await a.readUntilReady(1)), 'CZ', "the client sees only its own answer");
  a.end();
  const b = await WireClient.connect(relay.port, { params: { application_name: 'app-b' } });
  b.send(query('select b1'));
  t.equal(types(await b.readUntilReady(1)), 'CZ');
  b.send(query('select b2'));
  t.equal(types(await b.readUntilReady(1)), 'CZ');
  b.end();
  const conn = backend.connections[0]!;
  t.same(
    conn.received.map((m) => m.body.toString('utf8', 0, m.body.length - 1)),
    ['select 1;', 'select a', "select 1;SET application_name TO 'app-b';", 'select b1', 'select 1;', 'select b2'],
    'server_check_delay=0 checks every time; the replay runs once, until the server reports the value',
  );
  t.same(backend.mismatches, []);
});
