// The result sets of the admin console's SHOW commands, built from Control's snapshots with
// PgBouncer's column names, column order and value rendering (integers as int8, booleans in
// integer columns as 0/1, times as "YYYY-MM-DD HH:MM:SS UTC", NULL where PgBouncer sends NULL).

import { SqlState } from '../protocol/sqlstate.js';
import type { ClientSnapshot, ConfigRow, Control, DatabaseSnapshot, PoolSnapshot, ServerSnapshot } from '../control/contract.js';
import { commandComplete, noticeResponse } from '../protocol/backend-messages.js';
import { int, pgbTime, table, text, type Col, type ShowItem } from './console-result.js';
import { showStatsItems } from './console-stats.js';

/** Whole seconds and the microsecond remainder, as PgBouncer's wait/wait_us and maxwait/maxwait_us. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
function microsPart(ms: number): number {
  return Math.floor((ms % 1000) * 1000);
}

// SHOW HELP is a NoticeResponse (message "Console usage", the list in DETAIL) and CommandComplete
// SHOW, exactly as PgBouncer sends it; only the commands pgrelay implements are listed.
const HELP = [
  '',
  '\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION',
  '\tSHOW LISTS|STATE',
  '\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS',
  '\tRELOAD',
  '\tPAUSE [<db>]',
  '\tRESUME [<db>]',
  '\tRECONNECT [<db>]',
  '\tWAIT_CLOSE [<db>]',
  '\tKILL [<db>]',
  '\tSHUTDOWN',
].join('\n');

function showHelp(): Buffer[] {
  return [noticeResponse({ severity: 'NOTICE', code: SqlState.SuccessfulCompletion, message: 'Console usage', detail: HELP }), commandComplete('SHOW')];
}

function showState(control: Control): Buffer[] {
  const s = control.state();
  // PgBouncer's three global modes; a pause of single databases leaves "active" yes, as there.
  const rows: [string, boolean][] = [
    ['active', !s.paused],
    ['paused', s.paused],
    ['suspended', false],
  ];
  return table<[string, boolean]>([text('key', (r) => r[0]), text('value', (r) => (r[1] ? 'yes' : 'no'))], rows);
}

/** PgBouncer shows load_balance_hosts only for a multi-host entry; pgrelay tries hosts in order. */
function loadBalanceHosts(hosts: string | undefined): string | null {
  return hosts !== undefined && hosts.includes(',') ? 'disable' : null;
}

function showPools(control: Control): Buffer[] {
  const hosts = new Map(control.databases().map((d) => [d.name, d.hosts]));
  const cols: Col<PoolSnapshot>[] = [
    text('database', (p) => p.database),
    text('user', (p) => p.user),
    // PgBouncer's cl_active counts linked and idle clients alike (its active_client_list);
    // Control's clActive already includes clIdle.
    int('cl_active', (p) => p.clActive),
    int('cl_waiting', (p) => p.clWaiting),
    int('cl_active_cancel_req', () => 0),
    int('cl_waiting_cancel_req', () => 0),
    int('sv_active', (p) => p.svActive),
    int('sv_active_cancel', () => 0),
    int('sv_being_canceled', () => 0),
    int('sv_idle', (p) => p.svIdle),
    int('sv_used', () => 0),
    int('sv_tested', () => 0),
    int('sv_login', (p) => p.svLogin),
    int('maxwait', (p) => seconds(p.maxWaitMs)),
    int('maxwait_us', (p) => microsPart(p.maxWaitMs)),
    text('pool_mode', (p) => p.poolMode),
    text('load_balance_hosts', (p) => loadBalanceHosts(hosts.get(p.database))),
  ];
  return table(cols, control.pools());
}

// SHOW CLIENTS and SHOW SERVERS share one layout. PgBouncer's ptr/link are object addresses that
// tie a client to its server; pgrelay renders ids in two disjoint pointer-like ranges so that a
// client's link equals its server's ptr and the other way round.
const clientPtr = (id: number): string => '0x1' + id.toString(16).padStart(8, '0');
const serverPtr = (id: number): string => '0x2' + id.toString(16).padStart(8, '0');

interface SocketRow {
  readonly type: 'C' | 'S';
  readonly user: string;
  readonly database: string;
  readonly state: string;
  readonly addr: string;
  readonly port: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly connectTime: string;
  readonly requestTime: string;
  readonly waitMs: number;
  readonly closeNeeded: boolean;
  readonly ptr: string;
  readonly link: string;
  readonly remotePid: number;
  readonly applicationName: string;
  readonly preparedStatements: number;
  readonly id: number;
}

const SOCKET_COLS: readonly Col<SocketRow>[] = [
  text('type', (r) => r.type),
  text('user', (r) => r.user),
  text('database', (r) => r.database),
  text('replication', () => 'none'),
  text('state', (r) => r.state),
  text('addr', (r) => r.addr),
  int('port', (r) => r.port),
  text('local_addr', (r) => r.localAddr),
  int('local_port', (r) => r.localPort),
  text('connect_time', (r) => pgbTime(r.connectTime)),
  text('request_time', (r) => pgbTime(r.requestTime)),
  int('wait', (r) => seconds(r.waitMs)),
  int('wait_us', (r) => microsPart(r.waitMs)),
  int('close_needed', (r) => r.closeNeeded),
  text('ptr', (r) => r.ptr),
  text('link', (r) => r.link),
  int('remote_pid', (r) => r.remotePid),
  text('tls', () => ''),
  text('application_name', (r) => r.applicationName),
  int('prepared_statements', (r) => r.preparedStatements),
  int('id', (r) => r.id),
];

function clientRow(c: ClientSnapshot): SocketRow {
  return {
    type: 'C',
    user: c.user,
    database: c.database,
    state: c.state,
    addr: c.addr,
    port: c.port,
    localAddr: c.localAddr,
    localPort: c.localPort,
    connectTime: c.connectTime,
    requestTime: c.requestTime,
    waitMs: c.waitMs,
    closeNeeded: false,
    ptr: clientPtr(c.id),
    link: c.server === null ? '' : serverPtr(c.server),
    remotePid: 0,
    applicationName: c.applicationName,
    preparedStatements: c.preparedStatements ?? 0,
    id: c.id,
  };
}

function serverRow(s: ServerSnapshot): SocketRow {
  return {
    type: 'S',
    user: s.user,
    database: s.database,
    // A server still logging in sits in PgBouncer's new_server_list and shows as "new".
    state: s.state === 'login' ? 'new' : s.state,
    addr: s.addr,
    port: s.port,
    // The snapshot carries no local address for servers.
    localAddr: '',
    localPort: s.localPort,
    connectTime: s.connectTime,
    requestTime: s.requestTime,
    waitMs: 0, // "not used for server connections"
    closeNeeded: s.closeNeeded,
    ptr: serverPtr(s.id),
    link: s.client === null ? '' : clientPtr(s.client),
    remotePid: s.remotePid,
    applicationName: s.applicationName,
    preparedStatements: s.preparedStatements ?? 0,
    id: s.id,
  };
}

function showClients(control: Control): Buffer[] {
  return table(SOCKET_COLS, control.clients().map(clientRow));
}

function showServers(control: Control): Buffer[] {
  return table(SOCKET_COLS, control.servers().map(serverRow));
}

/** PgBouncer's port column is one integer; a multi-host entry lists several, so show the first. */
function firstPort(ports: string): number | null {
  const n = Number.parseInt(ports, 10);
  return Number.isNaN(n) ? null : n;
}

function showDatabases(control: Control): Buffer[] {
  const cols: Col<DatabaseSnapshot>[] = [
    text('name', (d) => d.name),
    text('host', (d) => d.hosts),
    int('port', (d) => firstPort(d.ports)),
    text('database', (d) => d.dbname),
    text('force_user', (d) => (d.forceUser === '' ? null : d.forceUser)),
    int('pool_size', (d) => d.poolSize),
    int('min_pool_size', (d) => d.minPoolSize),
    int('reserve_pool_size', (d) => d.reservePoolSize),
    int('server_lifetime', (d) => d.serverLifetimeS),
    text('pool_mode', (d) => d.poolMode),
    text('load_balance_hosts', (d) => loadBalanceHosts(d.hosts)),
    int('max_connections', (d) => d.maxConnections),
    int('current_connections', (d) => d.currentConnections),
    // Not tracked per database by pgrelay; 0 is PgBouncer's "no limit".
    int('max_client_connections', () => 0),
    int('current_client_connections', (d) => d.currentClientConnections),
    int('paused', (d) => d.paused),
    int('disabled', () => false),
    // PgBouncer 1.18's name for reserve_pool_size (renamed in 1.24), last so that positions keep
    // 1.25's layout: exporters written for 1.18 read it by name.
    int('reserve_pool', (d) => d.reservePoolSize),
  ];
  return table(cols, control.databases());
}

function showConfig(control: Control): Buffer[] {
  return table<ConfigRow>(
    [
      text('key', (r) => r.key),
      text('value', (r) => r.value),
      text('default', (r) => r.default),
      text('changeable', (r) => (r.changeable ? 'yes' : 'no')),
    ],
    control.config(),
  );
}

/**
 * Tools look for "PgBouncer" in this string (and some parse the number after it), so it says
 * what pgrelay is compatible with. Control.version() may return the bare version or a full string.
 */
function showVersion(control: Control): Buffer[] {
  const v = control.version();
  const full = /pgrelay/i.test(v) ? v : `PgBouncer-compatible pgrelay ${v}`;
  return table<string>([text('version', (r) => r)], [full]);
}

function showLists(control: Control): Buffer[] {
  const clients = control.clients();
  // pgrelay keeps no free lists (no slab allocator) and no DNS cache, so those read 0.
  const rows: [string, number][] = [
    ['databases', control.databases().length],
    ['users', control.users().length],
    ['pools', control.pools().length],
    ['free_clients', 0],
    ['used_clients', clients.length],
    ['login_clients', clients.filter((c) => c.state === 'login').length],
    ['free_servers', 0],
    ['used_servers', control.servers().length],
    ['dns_names', 0],
    ['dns_zones', 0],
    ['dns_queries', 0],
    ['dns_pending', 0],
  ];
  return table<[string, number]>([text('list', (r) => r[0]), int('items', (r) => r[1])], rows);
}

function showUsers(control: Control): Buffer[] {
  return table<{ name: string; poolMode: string }>(
    [text('name', (u) => u.name), text('pool_mode', (u) => (u.poolMode === '' ? null : u.poolMode))],
    control.users(),
  );
}

/**
 * Session parameters some drivers SHOW right after connecting; PgBouncer answers them with
 * fixed values so those drivers can use the console (and ignores SET of them).
 */
export const FAKE_PARAMS: ReadonlyMap<string, string> = new Map([
  ['client_encoding', 'UTF-8'],
  ['default_transaction_isolation', 'read committed'],
  ['standard_conforming_strings', 'on'],
  ['datestyle', 'ISO'],
  ['timezone', 'GMT'],
  ['extra_float_digits', '2'],
]);

const ITEMS: ReadonlyMap<string, ShowItem> = new Map<string, ShowItem>([
  ['help', showHelp],
  ['state', showState],
  ['pools', showPools],
  ['clients', showClients],
  ['servers', showServers],
  ['databases', showDatabases],
  ['config', showConfig],
  ['version', showVersion],
  ['lists', showLists],
  ['users', showUsers],
  ...showStatsItems(),
  ...[...FAKE_PARAMS].map(([name, value]): [string, ShowItem] => [name, () => table<string>([text(name, (r) => r)], [value])]),
]);

/** The SHOW item of that name (case-insensitive), or undefined. */
export function showItem(name: string): ShowItem | undefined {
  return ITEMS.get(name.toLowerCase());
}
