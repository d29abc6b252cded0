// [databases] and [users] entries.

import t from 'tap';
import {
  formatDatabaseEntry,
  formatEntryName,
  parseDatabaseEntry,
  parseUserEntry,
} from '../../src/config/databases.js';
import { parseConnString } from '../../src/config/connstring.js';

const site = { file: '/etc/pgrelay.ini', line: 7 };

t.test('defaults for a bare entry', async (t) => {
  const { database, warnings } = parseDatabaseEntry('app', '', site);
  t.same(database, {
    name: 'app',
    hosts: [{ host: '127.0.0.1', port: 5432 }],
    dbname: null,
    user: null,
    password: null,
    poolSize: null,
    minPoolSize: null,
    reservePoolSize: null,
    poolMode: null,
    maxDbConnections: null,
    serverLifetimeMs: null,
    connectQuery: null,
    applicationName: null,
    clientEncoding: null,
    datestyle: null,
    timezone: null,
    targetSessionAttrs: 'auto',
    patroniApi: [],
    unsupportedKeys: [],
    authUser: null,
    authQuery: null,
    authDbname: null,
  });
  t.same(warnings, []);
});

t.test('every implemented key', async (t) => {
  const { database, warnings } = parseDatabaseEntry(
    'App',
    "host=a,b port=5432,5433 dbname=real user=svc password='p w' pool_size=10 min_pool_size=2 " +
      "reserve_pool=3 pool_mode=session max_db_connections=50 server_lifetime=120 " +
      "connect_query='SET x = 1' application_name=app client_encoding=UTF8 datestyle=ISO " +
      "timezone=UTC target_session_attrs=primary auth_user=lookup auth_query='SELECT usename, passwd FROM pg_shadow WHERE usename=$1' auth_dbname=authdb",
    site,
  );
  t.same(warnings, []);
  t.same(database, {
    name: 'App',
    hosts: [
      { host: 'a', port: 5432 },
      { host: 'b', port: 5433 },
    ],
    dbname: 'real',
    user: 'svc',
    password: 'p w',
    poolSize: 10,
    minPoolSize: 2,
    reservePoolSize: 3,
    poolMode: 'session',
    maxDbConnections: 50,
    serverLifetimeMs: 120_000,
    connectQuery: 'SET x = 1',
    applicationName: 'app',
    clientEncoding: 'UTF8',
    datestyle: 'ISO',
    timezone: 'UTC',
    targetSessionAttrs: 'primary',
    patroniApi: [],
    unsupportedKeys: [],
    authUser: 'lookup',
    authQuery: 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1',
    authDbname: 'authdb',
  });
  t.equal(parseDatabaseEntry('x', 'reserve_pool_size=4', site).database.reservePoolSize, 4, 'reserve_pool_size alias');
});

t.test('the runbook fallback entry', async (t) => {
  const { database } = parseDatabaseEntry('*', 'host=cluster port=5432', site);
  t.same(database.hosts, [{ host: 'cluster', port: 5432 }]);
  t.equal(database.dbname, null);
});

t.test('tuning keys pgrelay lacks warn and are recorded; unknown keys and ones that change meaning fail', async (t) => {
  const { database, warnings } = parseDatabaseEntry('app', 'host=a load_balance_hosts=round-robin keepalives_idle=30 load_balance_hosts=disable', site);
  t.same(database.unsupportedKeys, ['load_balance_hosts', 'keepalives_idle']);
  t.same(database.hosts, [{ host: 'a', port: 5432 }]);
  t.same(
    warnings.map((w) => [w.key, w.section, w.file, w.line]),
    [
      ['load_balance_hosts', 'databases', site.file, 7],
      ['keepalives_idle', 'databases', site.file, 7],
      ['load_balance_hosts', 'databases', site.file, 7],
    ],
  );
  t.match(warnings[0]!.message, /PgBouncer connection parameter "load_balance_hosts" is parsed but not implemented by pgrelay yet; ignored/);
  t.throws(() => parseDatabaseEntry('app', 'host=a hots=typo', site), { name: 'ConfigError', line: 7, reason: /database "app": hots: unknown connection parameter \(did you mean "host"\?\)/ });
  t.throws(() => parseDatabaseEntry('app', 'host=a options=-cx=1', site), { name: 'ConfigError', line: 7, reason: /options: libpq connection parameter that pgrelay does not implement/ });
});

t.test('invalid values are ConfigErrors at the entry line', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['pool_size=abc', /database "app": pool_size: invalid integer "abc"/],
    ['pool_size=-1', /pool_size: invalid integer/],
    ['pool_mode=statement', /pool_mode: .*not supported by pgrelay/],
    ['server_lifetime=forever', /server_lifetime: invalid duration/],
    ['target_session_attrs=master', /target_session_attrs: invalid value "master"/],
    ['host=a,b,c port=1,2', /database "app": port lists 2 ports for 3 hosts/],
    ['port=99999', /out of range/],
    ["password='unterminated", /database "app": unterminated quoted value/],
    ['host', /expected "="/],
  ];
  for (const [connstr, reason] of bad) {
    t.throws(() => parseDatabaseEntry('app', connstr, site), { name: 'ConfigError', file: site.file, line: 7, reason }, connstr);
  }
  t.throws(() => parseDatabaseEntry('pgbouncer', 'host=x', site), { name: 'ConfigError', reason: /reserved for the admin console/ });
});

t.test('target_session_attrs accepts every libpq value', async (t) => {
  for (const v of ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']) {
    t.equal(parseDatabaseEntry('d', `target_session_attrs=${v}`, site).database.targetSessionAttrs, v);
  }
});

t.test('users', async (t) => {
  t.same(parseUserEntry('Bob', 'pool_mode=session max_user_connections=5', site), {
    user: { name: 'Bob', poolMode: 'session', maxUserConnections: 5 },
    warnings: [],
  });
  t.same(parseUserEntry('x', '', site).user, { name: 'x', poolMode: null, maxUserConnections: null });
  const { warnings } = parseUserEntry('x', 'max_user_client_connections=0', site);
  t.same(warnings.map((w) => [w.section, w.key]), [['users', 'max_user_client_connections']]);
  t.match(warnings[0]!.message, /parsed but not implemented by pgrelay yet/);
  t.throws(() => parseUserEntry('x', 'max_user_client_connections=3', site), { name: 'ConfigError', line: 7, reason: /a limit on client connections of this user/ });
  t.throws(() => parseUserEntry('x', 'colour=blue', site), { name: 'ConfigError', line: 7, reason: /user "x": colour: unknown user parameter \(only pool_mode and max_user_connections\)/ });
  t.throws(() => parseUserEntry('x', 'pool_mode=nope', site), { name: 'ConfigError', line: 7, reason: /user "x": pool_mode: invalid pool_mode/ });
  t.throws(() => parseUserEntry('x', 'max_user_connections=x', site), { name: 'ConfigError', reason: /invalid integer/ });
});

t.test('formatting masks the password and parses back', async (t) => {
  const { database } = parseDatabaseEntry(
    'app',
    "host=a,b port=1,2 user=svc password='s3cret pw' connect_query='select 1' server_lifetime=0.5",
    site,
  );
  const text = formatDatabaseEntry(database);
  t.notMatch(text, /s3cret/);
  t.match(text, /password=\*\*\*\*/);
  t.match(text, /host=a,b port=1,2/);
  t.match(text, /connect_query='select 1'/);
  t.match(text, /server_lifetime=0\.5/);
  const again = parseDatabaseEntry('app', text, site).database;
  t.same({ ...again, password: null }, { ...database, password: null }, 'everything but the password round-trips');
  t.equal(again.password, '****');
  const single = formatDatabaseEntry(parseDatabaseEntry('x', 'host=a,b port=7', site).database);
  t.match(single, /port=7 /, 'one shared port prints once');
  t.same(parseConnString(single).find((p) => p.key === 'port'), { key: 'port', value: '7' });
});

t.test('entry names quote when needed', async (t) => {
  t.equal(formatEntryName('app_1.x-y'), 'app_1.x-y');
  t.equal(formatEntryName('*'), '*');
  t.equal(formatEntryName('my db'), '"my db"');
  t.equal(formatEntryName('we"ird'), '"we""ird"');
});

t.test('patroni_api: one URL per host, in order', async (t) => {
  const { database } = parseDatabaseEntry('d', 'host=a,b port=5432,5433 patroni_api=http://a:8008,http://b:8008', site);
  t.same(database.patroniApi, ['http://a:8008', 'http://b:8008']);
  t.throws(() => parseDatabaseEntry('d', 'host=a,b patroni_api=http://a:8008', site), /patroni_api lists 1 URLs for 2 hosts/);
  t.throws(() => parseDatabaseEntry('d', 'host=a patroni_api=ftp://a', site), /not an http\(s\) URL/);
});
