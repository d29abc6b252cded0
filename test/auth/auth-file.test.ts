// Unit tests for src/auth/auth-file.ts: PgBouncer's auth_file format.

import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAuthFile, parseAuthFile } from '../../src/auth/auth-file.js';

t.test('basic entries, comments, blank lines', async (t) => {
  const text = [
    '; PgBouncer-style comment',
    '# shell-style comment',
    '',
    '   ',
    '"alice" "md53175bce1d3201d16594cebf9d7eb3f9d"',
    '\t"bob"\t\t"plain secret"  ',
    '  ; indented comment',
    '"carol" "SCRAM-SHA-256$4096:c2FsdA==$a:b" "extra" fields ignored',
    '"dave" "x"trailing junk ignored',
  ].join('\n');
  const m = parseAuthFile(text, 'users.txt');
  t.same([...m.entries()], [
    ['alice', 'md53175bce1d3201d16594cebf9d7eb3f9d'],
    ['bob', 'plain secret'],
    ['carol', 'SCRAM-SHA-256$4096:c2FsdA==$a:b'],
    ['dave', 'x'],
  ]);
});

t.test('escaped quotes and empty secret', async (t) => {
  const m = parseAuthFile('"we""ird" "pa""ss""" \n"q" """"\n"empty" ""\n', 'f');
  t.equal(m.get('we"ird'), 'pa"ss"');
  t.equal(m.get('q'), '"');
  t.equal(m.get('empty'), '');
  t.equal(m.size, 3);
});

t.test('CRLF, BOM, last line without newline, later entries win', async (t) => {
  const m = parseAuthFile('\uFEFF"a" "1"\r\n"b" "2"\r\n"a" "3"', 'f');
  t.same([...m.entries()], [['a', '3'], ['b', '2']]);
});

t.test('empty file', async (t) => {
  t.equal(parseAuthFile('', 'f').size, 0);
  t.equal(parseAuthFile('\n\n;x\n', 'f').size, 0);
});

t.test('malformed lines name file:line and hide the secret', async (t) => {
  const SECRET = 'hunter2-SECRET';
  const cases: Array<[string, string, RegExp]> = [
    ['unquoted username', `alice "${SECRET}"`, /expected a double-quoted username/],
    ['unterminated username', `"alice ${SECRET}`, /unterminated quoted username/],
    ['empty username', `"" "${SECRET}"`, /empty username/],
    ['missing secret', `"alice"`, /missing secret for user "alice"/],
    ['missing secret, trailing blanks', `"alice"   `, /missing secret/],
    ['unquoted secret', `"alice" ${SECRET}`, /expected whitespace and a double-quoted secret/],
    ['no space between fields', `"alice"x"${SECRET}"`, /expected whitespace and a double-quoted secret/],
    ['unterminated secret', `"alice" "${SECRET}`, /unterminated quoted secret for user "alice"/],
    ['unterminated secret ending in escaped quote', `"alice" "${SECRET}""`, /unterminated quoted secret/],
  ];
  for (const [what, line, re] of cases) {
    const text = `; header\n"ok" "fine"\n\n${line}\n"later" "x"\n`;
    const err = t.throws(() => parseAuthFile(text, '/etc/pgrelay/userlist.txt'), what) as unknown as Error;
    t.match(err.message, /^\/etc\/pgrelay\/userlist\.txt:4: /, `${what}: file:line prefix`);
    t.match(err.message, re, `${what}: reason`);
    t.notOk(err.message.includes(SECRET), `${what}: secret not in message`);
  }
});

t.test('a quoted field may not span lines', async (t) => {
  t.throws(() => parseAuthFile('"a" "multi\nline"\n', 'f'), /^f:1: unterminated quoted secret/);
});

t.test('loadAuthFile', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'userlist.txt');
  writeFileSync(path, '"u" "p"\n');
  t.same([...loadAuthFile(path)], [['u', 'p']]);

  writeFileSync(path, '"u" "p"\n"v" "unterminated\n');
  t.throws(() => loadAuthFile(path), { message: `${path}:2: unterminated quoted secret for user "v"` });

  const missing = join(dir, 'nope.txt');
  t.throws(() => loadAuthFile(missing), { message: new RegExp(`^cannot read auth_file ${missing}: ENOENT`) });
});

t.test('loadCheckedAuthFile refuses a malformed SCRAM verifier at load, naming the user', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadCheckedAuthFile } = await import('../../src/auth/auth-file.js');
  const dir = mkdtempSync(join(tmpdir(), 'pgrelay-authfile-'));
  const good = join(dir, 'good.txt');
  writeFileSync(good, '"alice" "secret"\n');
  t.equal(loadCheckedAuthFile(good).get('alice'), 'secret');
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, '"bob" "SCRAM-SHA-256$4096:broken"\n');
  t.throws(() => loadCheckedAuthFile(bad), /secret of user "bob"/);
});

t.test('loadCheckedAuthFile warns about every user with an empty secret, and only those', async (t) => {
  const { loadCheckedAuthFile } = await import('../../src/auth/auth-file.js');
  const dir = t.testdir({ 'userlist.txt': '"admin" ""\n"alice" "secret"\n"ops" ""\n' });
  const path = join(dir, 'userlist.txt');
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const secrets = loadCheckedAuthFile(path, { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) });
  t.equal(secrets.get('admin'), '', 'the entry is still loaded (trust may use it)');
  t.same(warnings.map((w) => w.fields['user']), ['admin', 'ops']);
  for (const w of warnings) {
    t.equal(w.fields['file'], path);
    t.match(w.message, /empty secret/);
    t.match(w.message, /never authenticate/);
  }
});
