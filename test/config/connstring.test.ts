// libpq connection-string parsing and host/port lists.

import t from 'tap';
import { ConnStringError, parseConnString, parseHostList, quoteConnValue } from '../../src/config/connstring.js';

t.test('plain key=value pairs', async (t) => {
  t.same(parseConnString('host=cluster port=5432'), [
    { key: 'host', value: 'cluster' },
    { key: 'port', value: '5432' },
  ]);
  t.same(parseConnString(''), []);
  t.same(parseConnString('   '), []);
  t.same(parseConnString('  dbname = app   user= bob '), [
    { key: 'dbname', value: 'app' },
    { key: 'user', value: 'bob' },
  ], 'whitespace around "=" is allowed, as in libpq');
  t.same(parseConnString('Host=x'), [{ key: 'host', value: 'x' }], 'keys are lower-cased');
  t.same(parseConnString('password=a=b;c'), [{ key: 'password', value: 'a=b;c' }], 'unquoted values run to whitespace');
  t.same(parseConnString('password=a\\b'), [{ key: 'password', value: 'a\\b' }], 'unquoted backslash is literal');
});

t.test('quoted values', async (t) => {
  t.same(parseConnString("password='it\\'s a secret' user=x"), [
    { key: 'password', value: "it's a secret" },
    { key: 'user', value: 'x' },
  ]);
  t.same(parseConnString("a='back\\\\slash'"), [{ key: 'a', value: 'back\\slash' }], '\\\\ is one backslash');
  t.same(parseConnString("a='keep \\n literal'"), [{ key: 'a', value: 'keep \\n literal' }], 'other backslashes kept');
  t.same(parseConnString("a='it''s'"), [{ key: 'a', value: "it's" }], "PgBouncer's '' escape");
  t.same(parseConnString("a='' b=1"), [
    { key: 'a', value: '' },
    { key: 'b', value: '1' },
  ], 'quoted empty value');
  t.same(parseConnString("connect_query='SET search_path = app, public'"), [
    { key: 'connect_query', value: 'SET search_path = app, public' },
  ]);
});

t.test('repeated keys are all returned in order', async (t) => {
  t.same(parseConnString('host=a host=b').map((p) => p.value), ['a', 'b']);
});

t.test('errors carry a reason', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['host', /expected "=" after "host"/],
    ['host=a port', /expected "=" after "port"/],
    ['=x', /missing parameter name/],
    ["password='abc", /unterminated quoted value for "password"/],
    ["a='x'y", /unexpected text after the quoted value of "a"/],
    ['host=', /missing value for "host"/],
    ['ho$t=1', /invalid parameter name "ho\$t"/],
  ];
  for (const [text, reason] of bad) {
    t.throws(() => parseConnString(text), { name: 'ConnStringError', reason }, text);
  }
});

t.test('errors never echo text following a password', async (t) => {
  let caught: unknown;
  try {
    parseConnString('user=u password=hunter2 secretrest');
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof ConnStringError);
  t.notMatch((caught as Error).message, /secretrest|hunter2/);
});

t.test('host lists', async (t) => {
  t.same(parseHostList('cluster', '5432'), [{ host: 'cluster', port: 5432 }], 'a DNS name');
  t.same(parseHostList(undefined, undefined), [{ host: '127.0.0.1', port: 5432 }], 'defaults');
  t.same(parseHostList('db1', undefined), [{ host: 'db1', port: 5432 }]);
  t.same(parseHostList(undefined, '6000'), [{ host: '127.0.0.1', port: 6000 }]);
  t.same(parseHostList('a,b', '5432,5433'), [
    { host: 'a', port: 5432 },
    { host: 'b', port: 5433 },
  ]);
  t.same(parseHostList('a, b ,c', '6000'), [
    { host: 'a', port: 6000 },
    { host: 'b', port: 6000 },
    { host: 'c', port: 6000 },
  ], 'one port applies to all hosts');
  t.same(parseHostList('a,,c', '1,,3'), [
    { host: 'a', port: 1 },
    { host: '127.0.0.1', port: 5432 },
    { host: 'c', port: 3 },
  ], 'empty elements take the defaults, as in libpq');
  t.same(parseHostList('::1,10.0.0.1', '5432'), [
    { host: '::1', port: 5432 },
    { host: '10.0.0.1', port: 5432 },
  ]);
  t.throws(() => parseHostList('a,b,c', '1,2'), { name: 'ConnStringError', reason: /2 ports for 3 hosts/ });
  t.throws(() => parseHostList('a', '1,2'), { name: 'ConnStringError', reason: /2 ports for 1 hosts/ });
  t.throws(() => parseHostList('a', 'x'), { name: 'ConnStringError', reason: /invalid port "x"/ });
  t.throws(() => parseHostList('a', '0'), { name: 'ConnStringError', reason: /out of range/ });
  t.throws(() => parseHostList('a', '65536'), { name: 'ConnStringError', reason: /out of range/ });
});

t.test('quoteConnValue round-trips through parseConnString', async (t) => {
  for (const v of ['simple', 'with space', "it's", 'back\\slash', '', "both ' and \\"]) {
    const parsed = parseConnString(`k=${quoteConnValue(v)}`);
    t.same(parsed, [{ key: 'k', value: v }], JSON.stringify(v));
  }
  t.equal(quoteConnValue('plain'), 'plain', 'no quotes when not needed');
});
