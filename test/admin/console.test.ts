// The admin console driven byte-for-byte: a fake Control and a fake socket that decodes every
// reply with pg-protocol's parser. Checks PgBouncer's column layouts, PAUSE's three outcomes,
// statement splitting, permissions, and the protocol edges (extended protocol, Terminate,
// queries split across reads or queued behind a running PAUSE).

import t from 'tap';
import { ConsoleSession, MAX_CONSOLE_MESSAGE, MAX_CONSOLE_PENDING } from '../../src/admin/console-session.js';
import { parseStatement, splitStatements } from '../../src/admin/console-parse.js';
import { AdminError } from '../../src/control/contract.js';
import type {
  ClientSnapshot,
  ConfigRow,
  Control,
  DatabaseSnapshot,
  PauseResult,
  PoolSnapshot,
  ResumeResult,
  PrimaryHintResult,
  ServerSnapshot,
  StateSnapshot,
  StatsSnapshot,
} from '../../src/control/contract.js';
import { Oid } from '../../src/protocol/backend-messages.js';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { Parser, type BackendMessage } from '../../src/protocol/backend-parser.js';

// ---- fakes ---------------------------------------------------------------------------------

class FakeControl implements Control {
  paused = false;
  calls: string[] = [];
  pauseReply: Promise<PauseResult> | PauseResult | null = null;
  waitCloseReply: Promise<void> = Promise.resolve();

  pools_: PoolSnapshot[] = [
    { database: 'app', user: 'alice', poolMode: 'transaction', clActive: 6, clWaiting: 3, clIdle: 4, svActive: 2, svIdle: 5, svLogin: 1, maxWaitMs: 2500.5, paused: false },
  ];
  clients_: ClientSnapshot[] = [
    {
      id: 12,
      user: 'alice',
      database: 'app',
      state: 'active',
      addr: '10.0.0.5',
      port: 41234,
      localAddr: '10.0.0.1',
      localPort: 6432,
      connectTime: '2024-05-01T10:00:00.123Z',
      requestTime: '2024-05-01T10:05:00.000Z',
      waitMs: 1500,
      server: 7,
      applicationName: 'billing',
    },
  ];
  servers_: ServerSnapshot[] = [
    {
      id: 7,
      user: 'alice',
      database: 'app',
      state: 'active',
      addr: '10.0.0.9',
      port: 5432,
      localPort: 50000,
      connectTime: '2024-05-01T09:00:00.000Z',
      requestTime: '2024-05-01T10:05:00.000Z',
      closeNeeded: true,
      client: 12,
      remotePid: 4242,
      applicationName: 'billing',
      writable: true,
    },
    {
      id: 8,
      user: 'alice',
      database: 'app',
      state: 'login',
      addr: '10.0.0.9',
      port: 5432,
      localPort: 50001,
      connectTime: '2024-05-01T10:06:00.000Z',
      requestTime: '2024-05-01T10:06:00.000Z',
      closeNeeded: false,
      client: null,
      remotePid: 0,
      applicationName: '',
      writable: null,
    },
  ];
  databases_: DatabaseSnapshot[] = [
    {
      name: 'app',
      hosts: 'db1,db2',
      ports: '5432,5433',
      dbname: 'appdb',
      forceUser: '',
      poolSize: 20,
      minPoolSize: 0,
      reservePoolSize: 2,
      serverLifetimeS: 3600,
      poolMode: 'transaction',
      maxConnections: 0,
      currentConnections: 3,
      currentClientConnections: 9,
      paused: true,
      targetSessionAttrs: 'read-write',
    },
  ];
  stats_: StatsSnapshot[] = [
    {
      database: 'app',
      serverAssignments: 10,
      transactions: 8,
      queries: 30,
      bytesReceived: 1000,
      bytesSent: 5000,
      transactionTimeUs: 8000,
      queryTimeUs: 6000,
      waitTimeUs: 500,
      waits: 4,
      averages: { serverAssignmentsPerSec: 2, transactionsPerSec: 4, queriesPerSec: 12, bytesReceivedPerSec: 100, bytesSentPerSec: 200, transactionTimeUs: 900, queryTimeUs: 300, waitTimeUs: 40 },
    },
  ];

  pause(opts?: { database?: string; timeoutMs?: number }): Promise<PauseResult> {
    this.calls.push(`pause ${opts?.database ?? '*'}`);
    if (opts?.database === 'nope') return Promise.reject(new AdminError('PGRELAY_NO_SUCH_DATABASE', 'no such database: nope', 404));
    if (this.pauseReply === null) throw new Error('unexpected pause');
    return Promise.resolve(this.pauseReply);
  }
  primaryHint(opts: { node: string; role?: string }): PrimaryHintResult {
    return { node: opts.node, databases: [], paused: false, verifying: false };
  }
  resume(opts?: { database?: string }): ResumeResult {
    this.calls.push(`resume ${opts?.database ?? '*'}`);
    const wasPaused = this.paused;
    this.paused = false;
    return { database: opts?.database ?? null, wasPaused, pausedMs: 5, waitingClients: 0 };
  }
  reconnect(database?: string): number {
    this.calls.push(`reconnect ${database ?? '*'}`);
    return 1;
  }
  waitClose(database?: string): Promise<void> {
    this.calls.push(`waitClose ${database ?? '*'}`);
    return this.waitCloseReply;
  }
  kill(database?: string): number {
    this.calls.push(`kill ${database ?? '*'}`);
    return 0;
  }
  reload(): void {
    this.calls.push('reload');
  }
  shutdown(): void {
    this.calls.push('shutdown');
  }
  state(): StateSnapshot {
    return { paused: this.paused, pausedSince: null, autoResumeAt: null, waitingClients: 0, shuttingDown: false, databases: [] };
  }
  pools(): PoolSnapshot[] {
    return this.pools_;
  }
  clients(): ClientSnapshot[] {
    return this.clients_;
  }
  servers(): ServerSnapshot[] {
    return this.servers_;
  }
  databases(): DatabaseSnapshot[] {
    return this.databases_;
  }
  stats(): StatsSnapshot[] {
    return this.stats_;
  }
  config(): ConfigRow[] {
    return [{ key: 'pool_mode', value: 'transaction', default: 'transaction', changeable: true }];
  }
  users(): { name: string; poolMode: string }[] {
    return [{ name: 'alice', poolMode: '' }];
  }
  version(): string {
    return '0.1.0';
  }
  ready(): boolean {
    return true;
  }
}

/** A compact view of one backend message, easy to compare with t.same. */
type Msg =
  | { T: string[]; types: number[] }
  | { D: (string | null)[] }
  | { C: string }
  | { Z: string }
  | { E: string; severity: string; message: string; detail?: string }
  | { N: string; severity: string; detail?: string }
  | { I: true };

function view(m: BackendMessage): Msg {
  const any = m as unknown as Record<string, unknown>;
  switch (m.name) {
    case 'rowDescription': {
      const fields = any['fields'] as { name: string; dataTypeID: number }[];
      return { T: fields.map((f) => f.name), types: fields.map((f) => f.dataTypeID) };
    }
    case 'dataRow':
      return { D: any['fields'] as (string | null)[] };
    case 'commandComplete':
      return { C: any['text'] as string };
    case 'readyForQuery':
      return { Z: any['status'] as string };
    case 'error': {
      const out: Msg = { E: any['code'] as string, severity: any['severity'] as string, message: any['message'] as string };
      if (any['detail'] !== undefined) out.detail = any['detail'] as string;
      return out;
    }
    case 'notice': {
      const out: Msg = { N: any['message'] as string, severity: any['severity'] as string };
      if (any['detail'] !== undefined) out.detail = any['detail'] as string;
      return out;
    }
    case 'emptyQuery':
      return { I: true };
    default:
      throw new Error(`unexpected message ${m.name}`);
  }
}

class FakeIO {
  closed: string | null = null;
  writes = 0;
  private msgs: Msg[] = [];
  private readonly parser = new Parser();
  write(buf: Buffer): boolean {
    this.writes++;
    this.parser.parse(buf, (m) => this.msgs.push(view(m)));
    return true;
  }
  close(reason: string): void {
    this.closed = reason;
  }
  take(): Msg[] {
    const m = this.msgs;
    this.msgs = [];
    return m;
  }
}

function setup(admin = true): { control: FakeControl; io: FakeIO; session: ConsoleSession } {
  const control = new FakeControl();
  const io = new FakeIO();
  const session = new ConsoleSession(io, control, { user: admin ? 'pgbouncer_admin' : 'stats', admin });
  return { control, io, session };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Sends one Query and returns the decoded reply once the session has gone quiet. */
async function query(s: { io: FakeIO; session: ConsoleSession }, sql: string): Promise<Msg[]> {
  s.session.onData(serialize.query(sql));
  await settle();
  return s.io.take();
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const columns = (msgs: Msg[]): string[] => (msgs[0] as { T: string[] }).T;
const types = (msgs: Msg[]): number[] => (msgs[0] as { types: number[] }).types;
const rows = (msgs: Msg[]): (string | null)[][] => msgs.filter((m): m is { D: (string | null)[] } => 'D' in m).map((m) => m.D);
/** A row as column -> value, for readable assertions. */
function record(msgs: Msg[], i = 0): Record<string, string | null> {
  const cols = columns(msgs);
  const row = rows(msgs)[i]!;
  return Object.fromEntries(cols.map((c, j) => [c, row[j]!]));
}

const TAIL = [{ C: 'SHOW' }, { Z: 'I' }];

const PAUSE_BASE: PauseResult = { result: 'drained', database: null, drainMs: 12, serversLeft: 0, inTransaction: [], autoResumeAt: null };

// ---- parsing -------------------------------------------------------------------------------

t.test('statements split on ; outside quotes; words, quoted names and SET', async (t) => {
  t.same(splitStatements('SHOW STATE; PAUSE "a;b" ;; RESUME'), ['SHOW STATE', 'PAUSE "a;b"', 'RESUME']);
  t.same(splitStatements(" SET x = 'a;b'; "), ["SET x = 'a;b'"]);
  t.same(splitStatements(' ; '), []);
  t.same(parseStatement('Pause "My ""db"""'), { kind: 'command', text: 'Pause "My ""db"""', verb: 'pause', arg: 'My "db"' });
  t.same(parseStatement('resume App'), { kind: 'command', text: 'resume App', verb: 'resume', arg: 'App' });
  t.same(parseStatement("set application_name to 'x y'"), { kind: 'set', text: "set application_name to 'x y'", key: 'application_name', value: 'x y' });
  t.same(parseStatement('SET a=1'), { kind: 'set', text: 'SET a=1', key: 'a', value: '1' });
  for (const bad of ['PAUSE ""', 'PAUSE a b', 'SET a', 'SET a = ', '= x', "PAUSE 'a'", 'SHOW "unterminated']) {
    t.throws(() => parseStatement(bad), { message: `invalid command '${bad}', use SHOW HELP;` }, bad);
  }
});

// ---- SHOW ----------------------------------------------------------------------------------

t.test('SHOW STATE: key/value rows as psql -tA prints them', async (t) => {
  const s = setup();
  const msgs = await query(s, 'SHOW STATE');
  t.same(msgs, [
    { T: ['key', 'value'], types: [Oid.text, Oid.text] },
    { D: ['active', 'yes'] },
    { D: ['paused', 'no'] },
    { D: ['suspended', 'no'] },
    ...TAIL,
  ]);
  s.control.paused = true;
  t.same(rows(await query(s, 'show state;')), [
    ['active', 'no'],
    ['paused', 'yes'],
    ['suspended', 'no'],
  ]);
});

t.test('SELECT is an alias of SHOW; case and trailing ; do not matter', async (t) => {
  const s = setup();
  for (const sql of ['SELECT STATE', 'select state;', '  Show   State ;  ']) {
    const msgs = await query(s, sql);
    t.same(columns(msgs), ['key', 'value'], sql);
    t.same(msgs.slice(-2), TAIL, sql);
  }
});

t.test('SHOW POOLS: PgBouncer column order, int8 counters, values', async (t) => {
  const s = setup();
  const msgs = await query(s, 'SHOW POOLS');
  t.same(columns(msgs), [
    'database', 'user', 'cl_active', 'cl_waiting', 'cl_active_cancel_req', 'cl_waiting_cancel_req', 'sv_active', 'sv_active_cancel',
    'sv_being_canceled', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode', 'load_balance_hosts',
  ]);
  t.same(types(msgs), [Oid.text, Oid.text, ...Array(13).fill(Oid.int8), Oid.text, Oid.text]);
  t.same(record(msgs), {
    database: 'app',
    user: 'alice',
    cl_active: '6', // linked + idle, as PgBouncer counts them (Control's clActive)
    cl_waiting: '3',
    cl_active_cancel_req: '0',
    cl_waiting_cancel_req: '0',
    sv_active: '2',
    sv_active_cancel: '0',
    sv_being_canceled: '0',
    sv_idle: '5',
    sv_used: '0',
    sv_tested: '0',
    sv_login: '1',
    maxwait: '2',
    maxwait_us: '500500',
    pool_mode: 'transaction',
    load_balance_hosts: 'disable',
  });
  t.same(msgs.slice(-2), TAIL);
});

const SOCKET_COLUMNS = [
  'type', 'user', 'database', 'replication', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time',
  'wait', 'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id',
];

t.test('SHOW CLIENTS and SHOW SERVERS: shared layout, ptr/link tie client and server', async (t) => {
  const s = setup();
  const clients = await query(s, 'SHOW CLIENTS');
  t.same(columns(clients), SOCKET_COLUMNS);
  const c = record(clients);
  t.match(c, {
    type: 'C',
    user: 'alice',
    database: 'app',
    replication: 'none',
    state: 'active',
    addr: '10.0.0.5',
    port: '41234',
    local_addr: '10.0.0.1',
    local_port: '6432',
    connect_time: '2024-05-01 10:00:00 UTC',
    request_time: '2024-05-01 10:05:00 UTC',
    wait: '1',
    wait_us: '500000',
    close_needed: '0',
    remote_pid: '0',
    tls: '',
    application_name: 'billing',
    prepared_statements: '0',
    id: '12',
  });

  const servers = await query(s, 'SHOW SERVERS');
  t.same(columns(servers), SOCKET_COLUMNS);
  t.equal(rows(servers).length, 2);
  const sv = record(servers, 0);
  t.match(sv, { type: 'S', state: 'active', addr: '10.0.0.9', port: '5432', close_needed: '1', remote_pid: '4242', id: '7', wait: '0' });
  t.equal(c['link'], sv['ptr'], "the client's link is its server's ptr");
  t.equal(sv['link'], c['ptr'], "the server's link is its client's ptr");
  t.not(c['ptr'], sv['ptr']);
  const login = record(servers, 1);
  t.equal(login['state'], 'new', 'a server logging in shows as new, as in PgBouncer');
  t.equal(login['link'], '');
});

t.test('SHOW DATABASES: PgBouncer column order and values', async (t) => {
  const s = setup();
  const msgs = await query(s, 'SHOW DATABASES');
  t.same(columns(msgs), [
    'name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool_size', 'server_lifetime', 'pool_mode',
    'load_balance_hosts', 'max_connections', 'current_connections', 'max_client_connections', 'current_client_connections', 'paused', 'disabled',
    'reserve_pool',
  ]);
  t.same(types(msgs)[2], Oid.int8);
  t.same(rows(msgs)[0], ['app', 'db1,db2', '5432', 'appdb', null, '20', '0', '2', '3600', 'transaction', 'disable', '0', '3', '0', '9', '1', '0', '2']);
});

t.test('SHOW STATS and friends: PgBouncer layouts', async (t) => {
  const s = setup();
  const stats = await query(s, 'SHOW STATS');
  t.same(columns(stats), [
    'database', 'total_server_assignment_count', 'total_xact_count', 'total_query_count', 'total_received', 'total_sent', 'total_xact_time',
    'total_query_time', 'total_wait_time', 'total_client_parse_count', 'total_server_parse_count', 'total_bind_count',
    'avg_server_assignment_count', 'avg_xact_count', 'avg_query_count', 'avg_recv', 'avg_sent', 'avg_xact_time', 'avg_query_time',
    'avg_wait_time', 'avg_client_parse_count', 'avg_server_parse_count', 'avg_bind_count', 'total_requests',
  ]);
  t.same(types(stats), [Oid.text, ...Array(23).fill(Oid.int8)]);
  t.match(record(stats), {
    database: 'app',
    total_server_assignment_count: '10',
    total_xact_count: '8',
    total_query_count: '30',
    total_received: '1000',
    total_sent: '5000',
    total_xact_time: '8000',
    total_query_time: '6000',
    total_wait_time: '500',
    // The avg_ columns are the last stats_period's: rates per second, then µs per item.
    avg_server_assignment_count: '2',
    avg_xact_count: '4',
    avg_query_count: '12',
    avg_recv: '100',
    avg_sent: '200',
    avg_xact_time: '900',
    avg_query_time: '300',
    avg_wait_time: '40',
    total_requests: '30',
  });

  const totals = await query(s, 'SHOW STATS_TOTALS');
  t.same(columns(totals).slice(0, 4), ['database', 'server_assignment_count', 'xact_count', 'query_count']);
  t.equal(columns(totals).length, 12);
  const averages = await query(s, 'SHOW STATS_AVERAGES');
  t.same(columns(averages).slice(-3), ['avg_client_parse_count', 'avg_server_parse_count', 'avg_bind_count']);
  const all = await query(s, 'SHOW TOTALS');
  t.same(columns(all), ['name', 'value']);
  t.same(rows(all)[1], ['total_xact_count', '8']);
});

t.test('SHOW CONFIG, VERSION, LISTS, USERS, HELP', async (t) => {
  const s = setup();
  const config = await query(s, 'SHOW CONFIG');
  t.same(columns(config), ['key', 'value', 'default', 'changeable']);
  t.same(rows(config), [['pool_mode', 'transaction', 'transaction', 'yes']]);

  const version = await query(s, 'SHOW VERSION');
  t.same(columns(version), ['version']);
  t.same(rows(version), [['PgBouncer-compatible pgrelay 0.1.0']]);

  const lists = await query(s, 'SHOW LISTS');
  t.same(columns(lists), ['list', 'items']);
  t.same(
    rows(lists).map((r) => r[0]),
    ['databases', 'users', 'pools', 'free_clients', 'used_clients', 'login_clients', 'free_servers', 'used_servers', 'dns_names', 'dns_zones', 'dns_queries', 'dns_pending'],
  );
  t.same(rows(lists)[7], ['used_servers', '2']);

  const users = await query(s, 'SHOW USERS');
  t.same(columns(users), ['name', 'pool_mode']);
  t.same(rows(users), [['alice', null]]);

  const help = await query(s, 'SHOW HELP');
  t.equal(help.length, 3);
  t.match(help[0], { N: 'Console usage', severity: 'NOTICE', detail: /PAUSE \[<db>\]/ });
  t.same(help.slice(1), TAIL);
});

// ---- PAUSE / RESUME ------------------------------------------------------------------------

t.test('PAUSE replies only once drained', async (t) => {
  const s = setup();
  const d = deferred<PauseResult>();
  s.control.pauseReply = d.promise;
  s.session.onData(serialize.query('PAUSE'));
  await settle();
  t.same(s.io.take(), [], 'nothing before the drain finishes');
  t.same(s.control.calls, ['pause *']);
  d.resolve(PAUSE_BASE);
  await settle();
  t.same(s.io.take(), [{ C: 'PAUSE' }, { Z: 'I' }]);
});

t.test('PAUSE timeout: 08P01 naming the clients still in a transaction; pool stays paused', async (t) => {
  const s = setup();
  s.control.pauseReply = {
    ...PAUSE_BASE,
    result: 'timeout',
    database: 'app',
    drainMs: 5000,
    serversLeft: 2,
    inTransaction: [
      { client: 12, user: 'app', database: 'db', addr: '10.0.0.5', port: 41234, idleMs: 4000 },
      { client: 13, user: 'app', database: 'db', addr: '::1', port: 5555, idleMs: 10 },
    ],
  };
  const msgs = await query(s, 'PAUSE app');
  t.same(s.control.calls, ['pause app']);
  t.equal(msgs.length, 2);
  t.match(msgs[0], {
    E: '08P01',
    severity: 'ERROR',
    message: 'pause drain timed out after 5000 ms; still in a transaction: client 12 (app@db from 10.0.0.5:41234), client 13 (app@db from [::1]:5555)',
    detail: /2 server connection\(s\) still open/,
  });
  t.same(msgs[1], { Z: 'I' });
  t.equal(s.io.closed, null);
  t.same(rows(await query(s, 'SHOW STATE')).length, 3, 'the session stays usable');
});

t.test('PAUSE overtaken by RESUME: still PAUSE, with a warning', async (t) => {
  const s = setup();
  s.control.pauseReply = { ...PAUSE_BASE, result: 'resumed' };
  const msgs = await query(s, 'PAUSE');
  t.equal(msgs.length, 3);
  t.match(msgs[0], { N: /overtaken by RESUME/, severity: 'WARNING' });
  t.same(msgs.slice(1), [{ C: 'PAUSE' }, { Z: 'I' }]);
});

t.test('PAUSE with an auto-resume deadline says so', async (t) => {
  const s = setup();
  s.control.pauseReply = { ...PAUSE_BASE, autoResumeAt: '2024-05-01T10:01:00.000Z' };
  const msgs = await query(s, 'PAUSE');
  t.match(msgs[0], { N: /automatically at 2024-05-01T10:01:00.000Z/ });
  t.same(msgs.slice(1), [{ C: 'PAUSE' }, { Z: 'I' }]);
});

t.test('RESUME, RECONNECT, WAIT_CLOSE, KILL, RELOAD reply with their tag', async (t) => {
  const s = setup();
  s.control.paused = true;
  t.same(await query(s, 'RESUME'), [{ C: 'RESUME' }, { Z: 'I' }]);
  const again = await query(s, 'resume app');
  t.match(again[0], { N: 'database app was not paused' });
  t.same(again.slice(1), [{ C: 'RESUME' }, { Z: 'I' }]);
  t.same(await query(s, 'RECONNECT app'), [{ C: 'RECONNECT' }, { Z: 'I' }]);
  t.same(await query(s, 'WAIT_CLOSE'), [{ C: 'WAIT_CLOSE' }, { Z: 'I' }]);
  t.same(await query(s, 'KILL "app"'), [{ C: 'KILL' }, { Z: 'I' }]);
  t.same(await query(s, 'RELOAD;'), [{ C: 'RELOAD' }, { Z: 'I' }]);
  t.same(s.control.calls, ['resume *', 'resume app', 'reconnect app', 'waitClose *', 'kill app', 'reload']);
  t.match((await query(s, 'RELOAD now'))[0], { E: '08P01', message: "invalid command 'RELOAD now', use SHOW HELP;" });
});

t.test('SHUTDOWN replies before shutting down', async (t) => {
  const s = setup();
  let writesBeforeShutdown = -1;
  s.control.shutdown = () => {
    writesBeforeShutdown = s.io.writes;
  };
  s.session.onData(serialize.query('SHUTDOWN'));
  await settle();
  t.same(s.io.take(), [{ C: 'SHUTDOWN' }, { Z: 'I' }]);
  t.equal(writesBeforeShutdown, 1, 'the reply and ReadyForQuery were written first');
  t.match((await query(s, 'SHUTDOWN WAIT_FOR_CLIENTS'))[0], { C: 'SHUTDOWN' });
  t.match((await query(s, 'SHUTDOWN NOW'))[0], { E: '08P01' });
});

t.test('a double-quoted database name keeps its case and spaces', async (t) => {
  const s = setup();
  s.control.pauseReply = PAUSE_BASE;
  await query(s, 'PAUSE "My ""odd"" db";');
  await query(s, 'RESUME MixedCase');
  t.same(s.control.calls, ['pause My "odd" db', 'resume MixedCase']);
});

t.test('AdminError from Control becomes 08P01 and the session goes on', async (t) => {
  const s = setup();
  const msgs = await query(s, 'PAUSE nope');
  t.same(msgs, [{ E: '08P01', severity: 'ERROR', message: 'no such database: nope' }, { Z: 'I' }]);
  t.equal(s.io.closed, null);
});

// ---- statements ----------------------------------------------------------------------------

t.test('several statements in one Query run in order with one ReadyForQuery', async (t) => {
  const s = setup();
  s.control.pauseReply = PAUSE_BASE;
  const msgs = await query(s, 'SHOW STATE; PAUSE; SHOW VERSION;');
  t.same(
    msgs.filter((m) => 'C' in m || 'Z' in m),
    [{ C: 'SHOW' }, { C: 'PAUSE' }, { C: 'SHOW' }, { Z: 'I' }],
  );
  t.same(rows(msgs.slice(msgs.findIndex((m) => 'C' in m && m.C === 'PAUSE') + 1)), [['PgBouncer-compatible pgrelay 0.1.0']]);

  // The first error ends the query: later statements do not run.
  s.control.paused = true;
  const failed = await query(s, 'RESUME; FOO; RELOAD');
  t.same(failed, [{ C: 'RESUME' }, { E: '08P01', severity: 'ERROR', message: "invalid command 'FOO', use SHOW HELP;" }, { Z: 'I' }]);
  t.notOk(s.control.calls.includes('reload'));
});

t.test('unknown command: 08P01, ReadyForQuery, and the session stays usable', async (t) => {
  const s = setup();
  t.same(await query(s, 'FOO'), [{ E: '08P01', severity: 'ERROR', message: "invalid command 'FOO', use SHOW HELP;" }, { Z: 'I' }]);
  t.match((await query(s, 'SHOW NOTHING'))[0], { E: '08P01', message: "invalid command 'SHOW NOTHING', use SHOW HELP;" });
  t.match((await query(s, 'PAUSE a b'))[0], { E: '08P01' });
  t.match((await query(s, 'PAUSE "unterminated'))[0], { E: '08P01' });
  t.match((await query(s, 'SUSPEND'))[0], { E: '08P01', message: 'SUSPEND is not supported by pgrelay' });
  t.equal(s.io.closed, null);
  t.equal(rows(await query(s, 'SHOW STATE')).length, 3);
});

t.test('empty query: EmptyQueryResponse then ReadyForQuery', async (t) => {
  const s = setup();
  t.same(await query(s, ''), [{ I: true }, { Z: 'I' }]);
  t.same(await query(s, ' ; ;'), [{ I: true }, { Z: 'I' }]);
});

t.test('fake session parameters answer SHOW and ignore SET, as PgBouncer does for drivers', async (t) => {
  const s = setup(false);
  t.same(await query(s, 'SHOW client_encoding'), [{ T: ['client_encoding'], types: [Oid.text] }, { D: ['UTF-8'] }, ...TAIL]);
  const set = await query(s, "SET extra_float_digits = '3'");
  t.same(set.slice(1), [{ C: 'SET' }, { Z: 'I' }]);
  t.match((await query(s, 'SET pool_mode TO session'))[0], { E: '08P01', message: 'admin access needed' });
});

// ---- permissions ---------------------------------------------------------------------------

t.test('a stats user may SHOW but not PAUSE', async (t) => {
  const s = setup(false);
  s.control.pauseReply = PAUSE_BASE;
  t.same(await query(s, 'PAUSE'), [{ E: '08P01', severity: 'ERROR', message: 'admin access needed' }, { Z: 'I' }]);
  t.same(s.control.calls, []);
  for (const verb of ['RESUME', 'RELOAD', 'KILL app', 'SHUTDOWN', 'RECONNECT', 'WAIT_CLOSE']) {
    t.match((await query(s, verb))[0], { message: 'admin access needed' }, verb);
  }
  t.same(s.control.calls, []);
  t.equal(rows(await query(s, 'SHOW POOLS')).length, 1);
});

// ---- protocol edges ------------------------------------------------------------------------

t.test('extended query protocol is refused and the connection closed', async (t) => {
  for (const msg of [serialize.parse({ text: 'SHOW STATE' }), serialize.bind(), serialize.execute(), serialize.sync(), serialize.flush(), serialize.describe({ type: 'S' })]) {
    const s = setup();
    s.session.onData(Buffer.concat([msg, serialize.query('SHOW STATE')]));
    await settle();
    t.same(s.io.take(), [{ E: '08P01', severity: 'FATAL', message: 'extended query protocol not supported by the admin console' }]);
    t.ok(s.io.closed);
    s.session.onData(serialize.query('SHOW STATE'));
    await settle();
    t.same(s.io.take(), [], 'nothing after close');
  }
});

t.test('Terminate closes without a reply', async (t) => {
  const s = setup();
  s.session.onData(serialize.end());
  await settle();
  t.same(s.io.take(), []);
  t.equal(s.io.closed, 'client sent Terminate');
});

t.test('a query split across many reads, and several in one read', async (t) => {
  const s = setup();
  const bytes = Buffer.concat([serialize.query('SHOW STATE'), serialize.query('SHOW VERSION')]);
  for (let i = 0; i < bytes.length; i++) s.session.onData(bytes.subarray(i, i + 1));
  await settle();
  const msgs = s.io.take();
  t.same(
    msgs.filter((m) => 'C' in m || 'Z' in m),
    [{ C: 'SHOW' }, { Z: 'I' }, { C: 'SHOW' }, { Z: 'I' }],
  );
  t.same(rows(msgs), [['active', 'yes'], ['paused', 'no'], ['suspended', 'no'], ['PgBouncer-compatible pgrelay 0.1.0']]);
});

t.test('queries sent behind a running PAUSE wait their turn', async (t) => {
  const s = setup();
  const d = deferred<PauseResult>();
  s.control.pauseReply = d.promise;
  s.session.onData(Buffer.concat([serialize.query('PAUSE'), serialize.query('SHOW STATE'), serialize.query('RESUME')]));
  await settle();
  t.same(s.io.take(), []);
  t.same(s.control.calls, ['pause *'], 'RESUME has not run yet');
  d.resolve(PAUSE_BASE);
  await settle();
  const msgs = s.io.take();
  t.same(
    msgs.filter((m) => 'C' in m || 'Z' in m),
    [{ C: 'PAUSE' }, { Z: 'I' }, { C: 'SHOW' }, { Z: 'I' }, { C: 'RESUME' }, { Z: 'I' }],
  );
  t.same(s.control.calls, ['pause *', 'resume *']);
});

t.test('a sync statement reply is one write; an async one flushes what came before', async (t) => {
  const s = setup();
  await query(s, 'SHOW STATE; SHOW VERSION');
  t.equal(s.io.writes, 1);
  const d = deferred<PauseResult>();
  s.control.pauseReply = d.promise;
  s.session.onData(serialize.query('SHOW STATE; PAUSE'));
  await settle();
  t.same(s.io.take().filter((m) => 'C' in m), [{ C: 'SHOW' }], 'SHOW STATE is sent while PAUSE drains');
  d.resolve(PAUSE_BASE);
  await settle();
  t.same(s.io.take(), [{ C: 'PAUSE' }, { Z: 'I' }]);
});

t.test('the connection closing during a PAUSE stops all writes', async (t) => {
  const s = setup();
  const d = deferred<PauseResult>();
  s.control.pauseReply = d.promise;
  s.session.onData(serialize.query('PAUSE'));
  await settle();
  s.session.onClose();
  d.resolve(PAUSE_BASE);
  await settle();
  t.equal(s.io.writes, 0);
});

t.test('an oversized message is refused and the connection closed', async (t) => {
  const s = setup();
  s.session.onData(serialize.query('SHOW STATE ' + ' '.repeat(MAX_CONSOLE_MESSAGE)));
  await settle();
  const msgs = s.io.take();
  t.equal(msgs.length, 1);
  t.match(msgs[0], { E: '08P01', severity: 'FATAL' });
  t.ok(s.io.closed);
});

t.test('too much input queued behind a running PAUSE closes the connection', async (t) => {
  const s = setup();
  s.control.pauseReply = deferred<PauseResult>().promise;
  s.session.onData(serialize.query('PAUSE'));
  const q = serialize.query('SHOW STATE ' + ' '.repeat(60000));
  for (let sent = 0; sent <= MAX_CONSOLE_PENDING; sent += q.length) s.session.onData(q);
  await settle();
  t.match(s.io.take(), [{ E: '08P01', severity: 'FATAL', message: /too much input/ }]);
  t.ok(s.io.closed);
});

t.test('a message type the console does not speak closes the connection', async (t) => {
  const s = setup();
  s.session.onData(serialize.copyData(Buffer.from('x')));
  await settle();
  t.match(s.io.take(), [{ E: '08P01', severity: 'FATAL', message: "unsupported message type 'd' for the admin console" }]);
  t.ok(s.io.closed);
});

t.test('a Query without its terminating NUL is a protocol violation', async (t) => {
  const s = setup();
  const bad = Buffer.from([0x51, 0, 0, 0, 8, 0x41, 0x42, 0x43, 0x44]);
  s.session.onData(bad);
  await settle();
  t.match(s.io.take(), [{ E: '08P01', severity: 'FATAL' }]);
  t.ok(s.io.closed);
});
