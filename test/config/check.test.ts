// What the loader refuses with file:line that PgBouncer refuses too, or that startup would only
// find later: unknown keys and sections (with a suggestion), PgBouncer keys pgrelay lacks that
// change security or meaning, addresses with a port glued on, a write gate that can never pass,
// and a `;` after a value, which is part of the value.

import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { findSetting } from '../../src/config/settings.js';
import { PGBOUNCER_SETTINGS, refusesToIgnore, KeyImpact } from '../../src/config/pgbouncer-keys.js';
import { suggest } from '../../src/config/suggest.js';

const load = (main: string, dbs = '* = host=db\n') => parseConfig(`[databases]\n${dbs}[pgbouncer]\n${main}`, '/etc/p.ini');

t.test('a misspelled key fails at its line with a suggestion', async (t) => {
  t.throws(() => load('listen_port = 6432\npool_modee = session\n'), {
    name: 'ConfigError',
    file: '/etc/p.ini',
    line: 5,
    reason: /unknown key "pool_modee" in \[pgbouncer\] \(did you mean "pool_mode"\?\)/,
  });
  t.throws(() => load('defualt_pool_size = 5\n'), { name: 'ConfigError', line: 4, reason: /did you mean "default_pool_size"/ });
  t.throws(() => load('max_client_con = 5\n'), { name: 'ConfigError', reason: /did you mean "max_client_conn"/ });
  t.throws(() => load('zzzz_qqqq = 1\n'), { name: 'ConfigError', reason: /^unknown key "zzzz_qqqq" in \[pgbouncer\]: not a pgrelay or PgBouncer setting$/ }, 'no far-fetched suggestion');
  t.throws(() => load('', '* = host=db prot=5432\n'), { name: 'ConfigError', line: 2, reason: /database "\*": prot: unknown connection parameter \(did you mean "port"\?\)/ });
  t.throws(() => parseConfig('[databases]\n[pgbouncer]\n[users]\nbob = pool_mod=session\n', '/u.ini'), { name: 'ConfigError', line: 4, reason: /did you mean "pool_mode"/ });
});

t.test('a misspelled section fails instead of leaving zero databases', async (t) => {
  t.throws(() => parseConfig('[database]\napp = host=db\n[pgbouncer]\n', '/s.ini'), {
    name: 'ConfigError',
    line: 1,
    reason: /unknown section \[database\] \(did you mean \[databases\]\?\)/,
  });
  t.throws(() => parseConfig('[databases]\n[pgbouncr]\n', '/s.ini'), { name: 'ConfigError', line: 2, reason: /did you mean \[pgbouncer\]/ });
  t.throws(() => parseConfig('[databases]\n[pgbouncer]\n[fancy]\na = 1\n', '/s.ini'), { name: 'ConfigError', line: 3, reason: /^unknown section \[fancy\]: the sections are/ });
});

t.test('PgBouncer keys pgrelay lacks: security and meaning fail, tuning warns, "off" values load', async (t) => {
  // Only keys the settings table does not implement are classed; others are being implemented.
  const unimplemented = [...PGBOUNCER_SETTINGS.keys()].filter((k) => findSetting(k) === undefined);
  t.ok(unimplemented.length > 10);
  for (const key of unimplemented) {
    const known = PGBOUNCER_SETTINGS.get(key)!;
    const asks = known.impact === KeyImpact.tuning ? '5' : key === 'user' || key === 'auth_user' || key.endsWith('_file') ? 'someone' : key === 'track_extra_parameters' ? 'search_path' : key.endsWith('sslmode') ? 'require' : key === 'unix_socket_mode' ? '0700' : '30';
    if (known.impact === KeyImpact.tuning) {
      const c = load(`${key} = ${asks}\n`);
      t.same(c.warnings.map((w) => [w.line, w.key]), [[4, key]], `${key} (tuning) warns`);
      t.match(c.warnings[0]!.message, /not implemented by pgrelay yet; it has no effect/);
    } else {
      t.ok(refusesToIgnore(known, asks));
      t.throws(() => load(`${key} = ${asks}\n`), { name: 'ConfigError', line: 4, reason: new RegExp(`^"${key}" is a PgBouncer setting that pgrelay does not implement, and ignoring it would change (security|behaviour)`) }, `${key} fails`);
      const off = load(`${key} = 0\n`);
      t.same(off.warnings.map((w) => w.key), [key], `${key} = 0 asks for nothing: a warning only`);
    }
  }
  t.throws(() => load('pool_mode = statement\n'), { name: 'ConfigError', line: 4, reason: /pool_mode "statement" is not supported/ });
  t.throws(() => load('query_timeout = 30\n'), { name: 'ConfigError', reason: /change behaviour: cancels queries/ });
  t.same(load('listen_backlog = 4096\n').warnings.map((w) => w.key), ['listen_backlog']);
});

t.test('[databases] keys pgrelay lacks: options and require_auth fail, keepalives warn', async (t) => {
  t.throws(() => load('', '* = host=db options=-csearch_path=app\n'), { name: 'ConfigError', line: 2, reason: /options: libpq connection parameter that pgrelay does not implement, and ignoring it would change behaviour/ });
  t.throws(() => load('', '* = host=db require_auth=scram-sha-256\n'), { name: 'ConfigError', line: 2, reason: /require_auth: .*change security/ });
  t.throws(() => load('', '* = host=db hostaddr=10.1.1.1\n'), { name: 'ConfigError', reason: /hostaddr: .*the address to connect to/ });
  const c = load('', '* = host=db keepalives_idle=30\n');
  t.same(c.warnings.map((w) => [w.line, w.key]), [[2, 'keepalives_idle']]);
});

t.test('listen_addr and admin_listen_addr: a port glued on, brackets, junk', async (t) => {
  t.throws(() => load('listen_addr = 127.0.0.1:56436\n'), {
    name: 'ConfigError',
    line: 4,
    reason: 'listen_addr "127.0.0.1:56436" includes a port: listen_addr takes addresses only; write 127.0.0.1 and put 56436 in listen_port',
  });
  t.throws(() => load('listen_addr = 10.0.0.1, db.example:6432\n'), { name: 'ConfigError', reason: /"db\.example:6432" includes a port/ });
  t.throws(() => load('listen_addr = [::1]:6432\n'), { name: 'ConfigError', reason: /write ::1 and put 6432 in listen_port/ });
  t.throws(() => load('listen_addr = [::1]\n'), { name: 'ConfigError', reason: /without brackets/ });
  t.throws(() => load('listen_addr = a b\n'), { name: 'ConfigError', reason: /"a b" is not an IP address or a host name/ });
  t.throws(() => load('admin_listen_addr = 0.0.0.0:8080\n'), { name: 'ConfigError', reason: /admin_listen_addr "0\.0\.0\.0:8080" includes a port.*admin_listen_port/ });
  for (const ok of ['*', '0.0.0.0', '::', '::1', '127.0.0.1,::1', 'localhost', 'pgrelay.internal']) {
    t.doesNotThrow(() => load(`listen_addr = ${ok}\n`), ok);
  }
});

t.test('a database whose write gate can never pass fails at its line', async (t) => {
  const ro = "connect_query='SET default_transaction_read_only = on'";
  t.throws(() => load('', `app = host=a target_session_attrs=read-write ${ro}\n`), {
    name: 'ConfigError',
    line: 2,
    reason: /database "app": connect_query makes every server session read-only, so no server can pass target_session_attrs=read-write/,
  });
  t.throws(() => load('', "app = host=a,b connect_query='SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY'\n"), { name: 'ConfigError', reason: /can pass target_session_attrs=read-write/ });
  t.throws(() => load('', `app = host=a target_session_attrs=primary connect_query='select set_config(''default_transaction_read_only'', ''on'', false)'\n`), { name: 'ConfigError', reason: /primary/ });
  // A read-only pool with the same SET is what was meant.
  t.doesNotThrow(() => load('', `app = host=a target_session_attrs=any ${ro}\n`));
  t.doesNotThrow(() => load('', `app = host=a target_session_attrs=read-only ${ro}\n`));
  t.doesNotThrow(() => load('', "app = host=a target_session_attrs=read-write connect_query='SET default_transaction_read_only = off'\n"));
});

t.test('a ";" after a value is part of it: errors and warnings say so', async (t) => {
  // The README's minimal config used to carry these two lines.
  t.throws(() => load('', '* = host=db.internal port=5432          ; fallback for any other database name\n'), {
    name: 'ConfigError',
    line: 2,
    reason: /a ";" after a value is not a comment in pgbouncer\.ini/,
  });
  const c = load('auth_file = userlist.txt               ; "user" "secret" lines, as in PgBouncer\n');
  t.equal(c.settings.authFile, '/etc/userlist.txt               ; "user" "secret" lines, as in PgBouncer', 'PgBouncer reads it the same way');
  t.match(c.warnings.map((w) => [w.line, w.message]), [[4, /auth_file: the value .* contains " ;" \(a ";" after a value is not a comment/]]);
  t.throws(() => load('default_pool_size = 20 ; per pair\n'), { name: 'ConfigError', reason: /invalid integer.*not a comment/ });
  t.same(load('server_check_query = ;\n').warnings, [], 'a value that is only ";" is no inline comment');
});

t.test('suggest: typos only', async (t) => {
  t.equal(suggest('databse', ['databases', 'users']), 'databases');
  t.equal(suggest('listen_prot', ['listen_port', 'listen_addr']), 'listen_port');
  t.equal(suggest('xyz', ['users']), null);
  t.equal(suggest('pool_size', ['default_pool_size', 'host']), 'default_pool_size');
});
