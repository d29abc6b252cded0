// Reload plans: what changed now, what needs a restart, and the config to run with, in which
// restart-only values keep their running value.

import t from 'tap';
import { planReload } from '../../src/config/diff.js';
import { buildConfig, parseConfig } from '../../src/config/load.js';

t.test('identical configs have no changes', async (t) => {
  const text = '[pgbouncer]\nlisten_port=5432\n[databases]\n* = host=cluster\n';
  const plan = planReload(parseConfig(text, '/a.ini'), parseConfig(text, '/b.ini'));
  t.same({ changed: plan.changed, needsRestart: plan.needsRestart }, { changed: [], needsRestart: [] });
  t.equal(plan.config.file, '/b.ini');
  t.ok(Object.isFrozen(plan.config.settings));
});

t.test('reloadable and restart-only settings', async (t) => {
  const old = buildConfig({ settings: { pidfile: '/run/old.pid' } });
  const next = buildConfig({
    settings: {
      defaultPoolSize: 50,
      listenPort: 7000,
      listenAddr: ['0.0.0.0'],
      adminListenPort: 9000,
      adminListenAddr: '0.0.0.0',
      unixSocketDir: '/run',
      queryWaitTimeoutMs: 1000,
      adminUsers: ['root'],
      poolMode: 'session',
      logfile: '/var/log/pgrelay.log',
      pidfile: '/run/new.pid',
      adminToken: 'rotated',
    },
  });
  const plan = planReload(old, next);
  t.same(plan.changed, ['default_pool_size', 'query_wait_timeout', 'admin_users', 'admin_token'], 'only what takes effect');
  t.same(plan.needsRestart, ['listen_addr', 'listen_port', 'unix_socket_dir', 'pool_mode', 'logfile', 'pidfile', 'admin_listen_addr', 'admin_listen_port']);
  const s = plan.config.settings;
  t.equal(s.defaultPoolSize, 50, 'reloadable values are the new ones');
  t.equal(s.adminToken, 'rotated');
  t.same(
    [s.listenPort, s.listenAddr, s.unixSocketDir, s.poolMode, s.logfile, s.pidfile, s.adminListenAddr, s.adminListenPort],
    [old.settings.listenPort, old.settings.listenAddr, null, 'transaction', null, '/run/old.pid', '127.0.0.1', 0],
    'restart-only values keep their running value (the pidfile to remove at exit is the one written)',
  );
});

t.test('log_level changes are reported once, under log_level', async (t) => {
  const plan = planReload(parseConfig('[pgbouncer]\nverbose=0\n[databases]\n', '/a.ini'), parseConfig('[pgbouncer]\nverbose=2\n[databases]\n', '/a.ini'));
  t.same([plan.changed, plan.needsRestart], [['log_level'], []]);
  t.equal(plan.config.settings.logLevel, 'trace');
});

t.test('databases and users added, removed or changed', async (t) => {
  const old = parseConfig('[pgrelay]\n[databases]\na = host=x\nb = host=y\nc = host=z\n[users]\nu1 = pool_mode=session\n', '/a.ini');
  const next = parseConfig('[pgrelay]\n[databases]\na = host=x\nb = host=y port=6000\nd = host=w\n[users]\nu2 = pool_mode=session\n', '/a.ini');
  const plan = planReload(old, next);
  t.same([plan.changed, plan.needsRestart], [['databases.b', 'databases.c', 'databases.d', 'users.u1', 'users.u2'], []]);
  t.same([...plan.config.databases.keys()], ['a', 'b', 'd']);
  t.same([...plan.config.users.keys()], ['u2']);
});

t.test("an entry's pool_mode needs a restart; the rest of the entry applies", async (t) => {
  const old = parseConfig('[pgrelay]\n[databases]\na = host=x\nb = host=y pool_mode=session\n[users]\nbob = pool_mode=session\n', '/a.ini');
  const next = parseConfig(
    '[pgrelay]\n[databases]\na = host=x pool_mode=session\nb = host=y2 pool_mode=transaction\nc = host=z pool_mode=session\n[users]\nbob = pool_mode=transaction max_user_connections=3\n',
    '/a.ini',
  );
  const plan = planReload(old, next);
  t.same(plan.changed, ['databases.b', 'databases.c', 'users.bob'], 'a changed only its pool_mode; b its host too; c is new');
  t.same(plan.needsRestart, ['databases.a.pool_mode', 'databases.b.pool_mode', 'users.bob.pool_mode']);
  const db = plan.config.databases;
  t.same([db.get('a')!.poolMode, db.get('b')!.poolMode, db.get('c')!.poolMode], [null, 'session', 'session'], 'running modes kept; a new entry has its own');
  t.same(db.get('b')!.hosts, [{ host: 'y2', port: 5432 }]);
  t.same(plan.config.users.get('bob'), { name: 'bob', poolMode: 'session', maxUserConnections: 3 });
  t.ok(Object.isFrozen(db.get('b')), 'the adjusted entry is frozen too');
});

t.test('a password change counts as a change', async (t) => {
  const plan = planReload(
    parseConfig('[pgrelay]\n[databases]\na = user=u password=one\n', '/a.ini'),
    parseConfig('[pgrelay]\n[databases]\na = user=u password=two\n', '/a.ini'),
  );
  t.same(plan.changed, ['databases.a']);
});
