// INI reader: PgBouncer's syntax rules, %include, and errors carrying file:line:reason.

import t from 'tap';
import { join } from 'node:path';
import { parseIni, readIniFile } from '../../src/config/ini.js';
import { ConfigError } from '../../src/config/types.js';

t.test('sections, entries, comments and blank lines', async (t) => {
  const text = [
    '; leading comment',
    '# hash comment',
    '',
    '[PgBouncer]',
    'Listen_Port = 6432',
    'pool_mode=transaction',
    '   max_client_conn   =   50   ',
    '  ; indented comment',
    '[databases]',
    'MyDb = host=a port=1',
    'other=host=b',
  ].join('\n');
  const sections = parseIni(text, '/etc/x.ini');
  t.equal(sections.length, 2);
  const [main, dbs] = sections;
  t.equal(main!.name, 'pgbouncer', 'section names are lower-cased');
  t.equal(main!.line, 4);
  t.same(
    main!.entries.map((e) => [e.key, e.value, e.line]),
    [
      ['listen_port', '6432', 5],
      ['pool_mode', 'transaction', 6],
      ['max_client_conn', '50', 7],
    ],
    'keys lower-cased, values trimmed, line numbers kept',
  );
  t.same(
    dbs!.entries.map((e) => [e.key, e.value]),
    [
      ['MyDb', 'host=a port=1'],
      ['other', 'host=b'],
    ],
    'database names keep their case; value after the first "=" kept verbatim',
  );
  t.equal(main!.entries[0]!.file, '/etc/x.ini');
});

t.test('values are kept verbatim (no unquoting, no inline comments)', async (t) => {
  const [s] = parseIni('[pgbouncer]\nserver_check_query=;\na = "quoted" ; not a comment\nb =\n', 'f.ini');
  t.same(
    s!.entries.map((e) => [e.key, e.value]),
    [
      ['server_check_query', ';'],
      ['a', '"quoted" ; not a comment'],
      ['b', ''],
    ],
  );
});

t.test('CRLF line endings and a BOM', async (t) => {
  const [s] = parseIni('\uFEFF[pgbouncer]\r\nlisten_port = 1\r\n', 'f.ini');
  t.equal(s!.name, 'pgbouncer');
  t.same(s!.entries.map((e) => [e.key, e.value, e.line]), [['listen_port', '1', 2]]);
});

t.test('quoted keys', async (t) => {
  const [s] = parseIni(`[databases]\n'my db' = host=a\n"we""ird" = host=b\n"x y"=host=c`, 'f.ini');
  t.same(
    s!.entries.map((e) => e.key),
    ['my db', 'we"ird', 'x y'],
  );
});

t.test('repeated section headers merge', async (t) => {
  const sections = parseIni('[databases]\na=host=x\n[pgbouncer]\nb=1\n[databases]\nc=host=y\n', 'f.ini');
  t.equal(sections.length, 2);
  t.same(sections[0]!.entries.map((e) => e.key), ['a', 'c']);
  t.equal(sections[0]!.line, 1);
});

t.test('section header followed by a comment is fine', async (t) => {
  const [s] = parseIni('[pgbouncer] ; main\nx=1', 'f.ini');
  t.equal(s!.name, 'pgbouncer');
});

t.test('malformed lines throw ConfigError with file, line and reason', async (t) => {
  const cases: Array<[string, number, RegExp]> = [
    ['[pgbouncer]\nlisten_port 6432\n', 2, /no "="/],
    ['\n\n[pgbouncer\n', 3, /unterminated section header/],
    ['; comment\nlisten_port = 1\n', 2, /before any \[section\]/],
    ['[]\n', 1, /empty section name/],
    ['[pgbouncer]\n= 5\n', 2, /missing key/],
    ['[pgbouncer]\nlisten port = 5\n', 2, /contains whitespace/],
    ["[databases]\n'abc = host=x\n", 2, /unterminated quoted key/],
    ["[databases]\n'abc' host=x\n", 2, /expected "=" after key/],
    ['[pgbouncer] junk\n', 1, /unexpected text after section header/],
  ];
  for (const [text, line, reason] of cases) {
    let caught: unknown;
    try {
      parseIni(text, '/cfg/bad.ini');
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof ConfigError, `throws ConfigError for ${JSON.stringify(text)}`);
    const e = caught as ConfigError;
    t.equal(e.file, '/cfg/bad.ini');
    t.equal(e.line, line, `line ${line}`);
    t.match(e.reason, reason);
    t.equal(e.message, `/cfg/bad.ini:${line}: ${e.reason}`);
    t.equal(e.code, 'PGRELAY_CONFIG_INVALID');
  }
});

t.test('%include', async (t) => {
  const dir = t.testdir({
    'main.ini': '[pgbouncer]\nlisten_port = 1\n%include conf.d/extra.ini\nmax_client_conn = 3\n',
    'conf.d': {
      'extra.ini': '; included\ndefault_pool_size = 2\n[databases]\nincdb = host=inc\n',
    },
  });
  const sections = readIniFile(join(dir, 'main.ini'));
  const main = sections.find((s) => s.name === 'pgbouncer')!;
  const dbs = sections.find((s) => s.name === 'databases')!;
  t.same(
    main.entries.map((e) => [e.key, e.line]),
    [
      ['listen_port', 2],
      ['default_pool_size', 2],
    ],
    'included file continues the current section',
  );
  t.equal(main.entries[1]!.file, join(dir, 'conf.d', 'extra.ini'), 'entries remember the file they came from');
  t.same(
    dbs.entries.map((e) => e.key),
    ['incdb', 'max_client_conn'],
    'a section opened inside an include stays open afterwards, as in PgBouncer',
  );
});

t.test('%include errors name the including file and line', async (t) => {
  const dir = t.testdir({
    'missing.ini': '[pgbouncer]\n\n%include nope.ini\n',
    'a.ini': '[pgbouncer]\n%include b.ini\n',
    'b.ini': 'x = 1\n%include a.ini\n',
    'empty.ini': '%include\n',
    'badinc.ini': '[pgbouncer]\n%include broken.ini\n',
    'broken.ini': 'ok = 1\nbroken line\n',
  });
  t.throws(() => readIniFile(join(dir, 'missing.ini')), {
    name: 'ConfigError',
    file: join(dir, 'missing.ini'),
    line: 3,
    reason: /cannot read %include file .*nope\.ini: ENOENT/,
  });
  t.throws(() => readIniFile(join(dir, 'a.ini')), { name: 'ConfigError', file: join(dir, 'b.ini'), line: 2, reason: /%include cycle/ });
  t.throws(() => readIniFile(join(dir, 'empty.ini')), { name: 'ConfigError', line: 1, reason: /needs a file path/ });
  t.throws(() => readIniFile(join(dir, 'badinc.ini')), { name: 'ConfigError', file: join(dir, 'broken.ini'), line: 2, reason: /no "="/ });
});

t.test('%include depth limit', async (t) => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 15; i++) files[`f${i}.ini`] = `%include f${i + 1}.ini\n`;
  files['f15.ini'] = '[pgbouncer]\n';
  const dir = t.testdir(files);
  t.throws(() => readIniFile(join(dir, 'f0.ini')), { name: 'ConfigError', reason: /nested more than 10 levels/ });
});

t.test('unreadable top-level file', async (t) => {
  t.throws(() => readIniFile('/nonexistent/pgrelay.ini'), {
    name: 'ConfigError',
    file: '/nonexistent/pgrelay.ini',
    line: 0,
    message: /^\/nonexistent\/pgrelay\.ini: cannot read config file: ENOENT/,
  });
});

t.test('custom readFile and preserveKeyCase', async (t) => {
  const files: Record<string, string> = { '/v/inc.ini': 'Key = 2\n' };
  const sections = parseIni('[custom]\nKey = 1\n%include inc.ini\n', '/v/main.ini', {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`no ${p}`);
      return text;
    },
    preserveKeyCase: (s) => s === 'custom',
  });
  t.same(
    sections[0]!.entries.map((e) => [e.key, e.value, e.file]),
    [
      ['Key', '1', '/v/main.ini'],
      ['Key', '2', '/v/inc.ini'],
    ],
  );
});
