// The `options` startup parameter, read as PostgreSQL reads it: words split at unescaped spaces,
// backslash escapes, -c name=value in one word or two, --name=value with '-' read as '_', and a
// clear error for anything pgrelay cannot honour.

import t from 'tap';
import { parseOptions, splitOptions } from '../../src/proxy/startup-options.js';

t.test('words split at unescaped whitespace; a backslash escapes the next character', async (t) => {
  t.same(splitOptions('  -c a=1\t--b=2  '), ['-c', 'a=1', '--b=2']);
  t.same(splitOptions('-c search_path=my\\ schema,public'), ['-c', 'search_path=my schema,public']);
  t.same(splitOptions('-c x=back\\\\slash'), ['-c', 'x=back\\slash']);
  t.same(splitOptions(''), []);
});

t.test('-c in one word or two, --name=value, names lower case with - read as _', async (t) => {
  t.same(parseOptions('-c TimeZone=UTC -cstatement_timeout=5s --search-path=a,b'), [
    { name: 'timezone', value: 'UTC' },
    { name: 'statement_timeout', value: '5s' },
    { name: 'search_path', value: 'a,b' },
  ]);
  t.same(parseOptions('-c myapp.tenant=42 -c application_name=with\\ space'), [
    { name: 'myapp.tenant', value: '42' },
    { name: 'application_name', value: 'with space' },
  ]);
  t.same(parseOptions('-c empty='), [{ name: 'empty', value: '' }], 'an empty value is a value');
});

t.test('what pgrelay cannot honour is named', async (t) => {
  t.throws(() => parseOptions('-B 128'), { code: 'PGRELAY_UNSUPPORTED_STARTUP_PARAMETER', message: /unsupported switch in startup parameter "options": -B/ });
  t.throws(() => parseOptions('-c work_mem'), { message: /-c work_mem requires a value/ });
  t.throws(() => parseOptions('--work_mem'), { message: /--work_mem requires a value/ });
  t.throws(() => parseOptions('-c'), { message: /requires a value/ });
  t.throws(() => parseOptions("-c bad;name=1"), { message: /invalid configuration parameter name "bad;name"/ });
  t.throws(() => parseOptions('plain'), { message: /unsupported switch .*"plain"/ });
});
