// Reload diffs: what changed and what needs a restart.

import t from 'tap';
import { diffConfig } from '../../src/config/diff.js';
import { buildConfig, parseConfig } from '../../src/config/load.js';

t.test('identical configs have no changes', async (t) => {
  const text = '[pgbouncer]\nlisten_port=5432\n[databases]\n* = host=cluster\n';
  t.same(diffConfig(parseConfig(text, '/a.ini'), parseConfig(text, '/b.ini')), { changed: [], needsRestart: [] });
});

t.test('reloadable and restart-only settings', async (t) => {
  const old = buildConfig();
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
    },
  });
  const d = diffConfig(old, next);
  t.same([...d.changed].sort(), [
    'admin_listen_addr',
    'admin_listen_port',
    'admin_users',
    'default_pool_size',
    'listen_addr',
    'listen_port',
    'query_wait_timeout',
    'unix_socket_dir',
  ]);
  t.same([...d.needsRestart].sort(), ['admin_listen_addr', 'admin_listen_port', 'listen_addr', 'listen_port', 'unix_socket_dir']);
});

t.test('log_level changes are reported once, under log_level', async (t) => {
  const d = diffConfig(parseConfig('[pgbouncer]\nverbose=0\n', '/a.ini'), parseConfig('[pgbouncer]\nverbose=2\n', '/a.ini'));
  t.same(d, { changed: ['log_level'], needsRestart: [] });
});

t.test('databases and users added, removed or changed', async (t) => {
  const old = parseConfig('[databases]\na = host=x\nb = host=y\nc = host=z\n[users]\nu1 = pool_mode=session\n', '/a.ini');
  const next = parseConfig('[databases]\na = host=x\nb = host=y port=6000\nd = host=w\n[users]\nu2 = pool_mode=session\n', '/a.ini');
  t.same(diffConfig(old, next), {
    changed: ['databases.b', 'databases.c', 'databases.d', 'users.u1', 'users.u2'],
    needsRestart: [],
  });
});

t.test('a password change counts as a change', async (t) => {
  const d = diffConfig(
    parseConfig("[databases]\na = user=u password=one\n", '/a.ini'),
    parseConfig("[databases]\na = user=u password=two\n", '/a.ini'),
  );
  t.same(d.changed, ['databases.a']);
});
