// The settings table: value parsers, every default, and the table's own consistency.

import t from 'tap';
import { DEFAULT_SETTINGS, findSetting, SETTINGS_TABLE, UNIMPLEMENTED_PGBOUNCER_SETTINGS } from '../../src/config/settings.js';
import { formatDuration, parseBoolean, parseDuration, parseInteger, parsePath } from '../../src/config/setting-values.js';
import type { Settings } from '../../src/config/types.js';
import { homedir } from 'node:os';

t.test('durations: PgBouncer seconds and unit suffixes, stored as ms', async (t) => {
  const ok: Array<[string, number]> = [
    ['15', 15_000],
    ['0.5', 500],
    ['.25', 250],
    ['0', 0],
    ['10.', 10_000],
    ['500ms', 500],
    ['30s', 30_000],
    ['5min', 300_000],
    ['1h', 3_600_000],
    ['1.5h', 5_400_000],
    ['2 s', 2000],
    ['100MS', 100],
    [' 7 ', 7000],
    ['0.0004', 1],
    ['0.0', 0],
  ];
  for (const [raw, ms] of ok) t.equal(parseDuration(raw), ms, raw);
  for (const raw of ['', '-1', 'abc', '5m', '1d', '1e3', '5 sec', '1,5', '2147484', '25d']) {
    t.throws(() => parseDuration(raw), { name: 'SettingValueError' }, `rejects ${JSON.stringify(raw)}`);
  }
  t.equal(parseDuration('2147483'), 2_147_483_000, 'just under the setTimeout limit (about 24.8 days)');
  t.equal(formatDuration(15_000), '15');
  t.equal(formatDuration(500), '0.5');
  t.equal(formatDuration(0), '0');
});

t.test('booleans', async (t) => {
  for (const v of ['1', 'yes', 'on', 'true', 'TRUE', ' Yes ']) t.equal(parseBoolean(v), true, v);
  for (const v of ['0', 'no', 'off', 'false', 'OFF']) t.equal(parseBoolean(v), false, v);
  for (const v of ['', '2', 'y', 'enabled']) t.throws(() => parseBoolean(v), { name: 'SettingValueError', reason: /invalid boolean/ }, v);
});

t.test('integers', async (t) => {
  t.equal(parseInteger('42', 0, 100), 42);
  t.equal(parseInteger(' 0 ', 0, 100), 0);
  t.throws(() => parseInteger('-1', 0, 100), { name: 'SettingValueError', reason: /invalid integer/ });
  t.throws(() => parseInteger('1.5', 0, 100), { name: 'SettingValueError', reason: /invalid integer/ });
  t.throws(() => parseInteger('0x10', 0, 100), { name: 'SettingValueError', reason: /invalid integer/ });
  t.throws(() => parseInteger('101', 0, 100), { name: 'SettingValueError', reason: /out of range 0\.\.100/ });
  const port = findSetting('listen_port')!;
  t.throws(() => port.parse('0', { baseDir: null }), { name: 'SettingValueError', reason: /out of range 1\.\.65535/ });
  t.throws(() => port.parse('65536', { baseDir: null }), { name: 'SettingValueError', reason: /out of range/ });
  t.equal(port.parse('65535', { baseDir: null }), 65535);
});

t.test('paths', async (t) => {
  t.equal(parsePath('', { baseDir: '/etc/pgrelay' }), null);
  t.equal(parsePath('/abs/file', { baseDir: '/etc/pgrelay' }), '/abs/file');
  t.equal(parsePath('userlist.txt', { baseDir: '/etc/pgrelay' }), '/etc/pgrelay/userlist.txt');
  t.equal(parsePath('../x', { baseDir: '/etc/pgrelay' }), '/etc/x');
  t.equal(parsePath('rel', { baseDir: null }), 'rel');
  t.equal(parsePath('~/u.txt', { baseDir: '/etc' }), `${homedir()}/u.txt`);
});

t.test('enums', async (t) => {
  const ctx = { baseDir: null };
  const pool = findSetting('pool_mode')!;
  t.equal(pool.parse('Session', ctx), 'session');
  t.throws(() => pool.parse('statement', ctx), { name: 'SettingValueError', reason: /not supported by pgrelay/ });
  t.throws(() => pool.parse('bogus', ctx), { name: 'SettingValueError', reason: /invalid pool_mode/ });

  const auth = findSetting('auth_type')!;
  for (const v of ['trust', 'plain', 'md5', 'scram-sha-256', 'SCRAM-SHA-256', 'hba', 'cert']) t.ok(auth.parse(v, ctx), v);
  for (const v of ['pam', 'ldap', 'any']) {
    t.throws(() => auth.parse(v, ctx), { name: 'SettingValueError', reason: new RegExp(`"${v}" is not supported by pgrelay`) }, v);
  }
  t.throws(() => auth.parse('password', ctx), { name: 'SettingValueError', reason: /invalid auth_type/ });

  const level = findSetting('log_level')!;
  t.equal(level.parse('DEBUG', ctx), 'debug');
  t.throws(() => level.parse('verbose', ctx), { name: 'SettingValueError', reason: /invalid log_level/ });

  const verbose = findSetting('verbose')!;
  t.equal(verbose.field, 'logLevel');
  t.equal(verbose.parse('0', ctx), 'info');
  t.equal(verbose.parse('1', ctx), 'debug');
  t.equal(verbose.parse('2', ctx), 'trace');
  t.equal(verbose.parse('5', ctx), 'trace');
});

t.test('listen_addr: comma list, * means 0.0.0.0', async (t) => {
  const s = findSetting('listen_addr')!;
  t.same(s.parse('*', { baseDir: null }), ['0.0.0.0']);
  t.same(s.parse('127.0.0.1, ::1', { baseDir: null }), ['127.0.0.1', '::1']);
  t.same(s.parse('', { baseDir: null }), []);
});

t.test('every default', async (t) => {
  const expected: Settings = {
    listenAddr: ['127.0.0.1'],
    listenPort: 6432,
    unixSocketDir: null,
    poolMode: 'transaction',
    maxClientConn: 100,
    defaultPoolSize: 20,
    minPoolSize: 0,
    reservePoolSize: 0,
    reservePoolTimeoutMs: 5000,
    maxDbConnections: 0,
    maxUserConnections: 0,
    autodbIdleTimeoutMs: 3_600_000,
    maxPreparedStatements: 200,
    serverIdleTimeoutMs: 600_000,
    serverLifetimeMs: 3_600_000,
    serverConnectTimeoutMs: 500,
    serverLoginRetryMs: 15_000,
    serverLoginTimeoutMs: 5000,
    serverLoginHedgeMs: 100,
    serverLoginParallel: 8,
    queryWaitTimeoutMs: 120_000,
    clientLoginTimeoutMs: 60_000,
    clientIdleTimeoutMs: 0,
    idleTransactionTimeoutMs: 0,
    serverResetQuery: 'DISCARD ALL',
    serverResetQueryAlways: false,
    serverCheckQuery: 'select 1',
    serverCheckDelayMs: 30_000,
    serverCleanupTimeoutMs: 5000,
    authType: 'md5',
    authFile: null,
    adminUsers: [],
    statsUsers: [],
    ignoreStartupParameters: [],
    applicationNameAddHost: false,
    maxPacketSize: 2_147_483_647,
    pktBuf: 4096,
    logfile: null,
    pidfile: null,
    logLevel: 'info',
    logConnections: true,
    logDisconnections: true,
    logPoolerErrors: true,
    tcpKeepalive: true,
    adminListenAddr: '127.0.0.1',
    adminListenPort: 0,
    adminToken: null,
    adminTokenFile: null,
    pauseDrainTimeoutMs: 30_000,
    pauseMaxDurationMs: 60_000,
    shutdownTimeoutMs: 30_000,
    statsPeriodMs: 60_000,
    logFormat: 'json',
    logTimeFormat: 'epoch',
    clientTlsSslmode: 'disable',
    clientTlsKeyFile: null,
    clientTlsCertFile: null,
    clientTlsCaFile: null,
    clientTlsProtocols: 'tlsv1.2,tlsv1.3',
    clientTlsCiphers: 'default',
    clientTls13Ciphers: '',
    clientTlsEcdhcurve: 'auto',
    clientTlsDheparams: 'auto',
    serverTlsSslmode: 'prefer',
    serverTlsCaFile: null,
    serverTlsKeyFile: null,
    serverTlsCertFile: null,
    serverTlsProtocols: 'tlsv1.2,tlsv1.3',
    serverTlsCiphers: 'default',
    serverTls13Ciphers: '',
    authHbaFile: null,
    authUser: null,
    authQuery: 'SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin',
    authDbname: null,
    authQueryTimeoutMs: 5000,
    authQueryCacheTtlMs: 10_000,
    authQueryPoolSize: 2,
    tlsFileCheckPeriodMs: 0,
  };
  t.same(DEFAULT_SETTINGS, expected);
  t.strictSame(Object.keys(DEFAULT_SETTINGS).sort(), Object.keys(expected).sort(), 'no extra fields');
  t.ok(Object.isFrozen(DEFAULT_SETTINGS));
  t.ok(Object.isFrozen(DEFAULT_SETTINGS.listenAddr));
});

t.test('table consistency', async (t) => {
  const keys = SETTINGS_TABLE.map((s) => s.key);
  t.equal(new Set(keys).size, keys.length, 'INI keys are unique');
  const primaries = SETTINGS_TABLE.filter((s) => s.aliasOf === undefined);
  t.equal(new Set(primaries.map((s) => s.field)).size, primaries.length, 'one primary key per field');
  t.same(
    primaries.map((s) => s.field).sort(),
    Object.keys(DEFAULT_SETTINGS).sort(),
    'every Settings field has a key',
  );
  for (const s of SETTINGS_TABLE) {
    t.ok(s.description.length > 10, `${s.key} has a description`);
    t.match(s.key, /^[a-z][a-z0-9_]*$/, `${s.key} is a lower-case INI key`);
    t.notOk(UNIMPLEMENTED_PGBOUNCER_SETTINGS.has(s.key), `${s.key} is not also listed as unimplemented`);
    if (s.aliasOf === undefined) {
      const formatted = (s.format as (v: unknown) => string)(DEFAULT_SETTINGS[s.field]);
      t.same(s.parse(formatted, { baseDir: null }), DEFAULT_SETTINGS[s.field], `${s.key} default round-trips`);
    }
  }
  const restart = SETTINGS_TABLE.filter((s) => !s.reload).map((s) => s.key).sort();
  t.same(restart, [
    'admin_listen_addr',
    'admin_listen_port',
    'listen_addr',
    'listen_port',
    'log_format',
    'log_time_format',
    'logfile',
    'pidfile',
    'pkt_buf',
    'pool_mode',
    'unix_socket_dir',
  ]);
  t.same(SETTINGS_TABLE.filter((s) => s.secret).map((s) => s.key), ['admin_token']);
  t.same(
    SETTINGS_TABLE.filter((s) => s.origin === 'pgrelay').map((s) => s.key).sort(),
    [
      'admin_listen_addr',
      'admin_listen_port',
      'admin_token',
      'admin_token_file',
      'auth_query_cache_ttl',
      'auth_query_pool_size',
      'auth_query_timeout',
      'log_format',
      'log_level',
      'log_time_format',
      'pause_drain_timeout',
      'pause_max_duration',
      'server_cleanup_timeout',
      'server_login_hedge_interval',
      'server_login_parallel',
      'server_login_timeout',
      'shutdown_timeout',
      'tls_file_check_period',
    ],
  );
  t.equal(findSetting('LISTEN_PORT')?.key, 'listen_port', 'lookup is case-insensitive');
  t.equal(findSetting('nope'), undefined);
});
