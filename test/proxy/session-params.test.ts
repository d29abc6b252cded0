// Session parameter bookkeeping: the signature that lets a transaction skip the replay check,
// the SET statements of a replay, and the shared maps of clients with equal values.

import t from 'tap';
import { paramsSignature, quoteLiteral, replaySql, sharedParams } from '../../src/proxy/session-params.js';

const m = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

t.test('equal signatures exactly when the tracked values are equal', async (t) => {
  const a = m({ TimeZone: 'UTC', application_name: 'app' });
  t.equal(paramsSignature(a), paramsSignature(m({ application_name: 'app', TimeZone: 'UTC' })), 'order does not matter');
  t.not(paramsSignature(a), paramsSignature(m({ TimeZone: 'UTC', application_name: 'app2' })));
  t.not(paramsSignature(m({ application_name: '' })), paramsSignature(m({})), 'an empty value is not a missing one');
  t.equal(paramsSignature(m({ TimeZone: 'UTC', work_mem: '1GB' })), paramsSignature(m({ TimeZone: 'UTC' })), 'untracked names are not part of it');
  // A value cannot pose as a separator: ParameterStatus values never contain NUL, and the
  // encoding marks each value as present or missing.
  t.not(paramsSignature(m({ DateStyle: '-', TimeZone: 'UTC' })), paramsSignature(m({ TimeZone: 'UTC' })));
});

t.test('equal signatures mean an empty replay; different ones the SETs that fix it', async (t) => {
  const client = m({ TimeZone: 'Asia/Tokyo', application_name: "o'brien", DateStyle: 'ISO, MDY' });
  const same = new Map(client);
  t.equal(paramsSignature(client), paramsSignature(same));
  t.equal(replaySql(client, same), '');
  const server = m({ TimeZone: 'UTC', application_name: "o'brien", DateStyle: 'ISO, MDY' });
  t.equal(replaySql(client, server), "SET TimeZone TO 'Asia/Tokyo';");
  t.equal(quoteLiteral("o'brien"), "'o''brien'");
  t.equal(quoteLiteral('a\\b'), "E'a\\\\b'");
});

t.test('sharedParams hands out the first map with a given signature', async (t) => {
  const first = m({ application_name: 'shared-test' });
  const second = m({ application_name: 'shared-test' });
  t.equal(sharedParams(paramsSignature(first), first), first, 'the first becomes the shared one');
  t.equal(sharedParams(paramsSignature(second), second), first, 'later equal maps get it instead');
  const other = m({ application_name: 'other-test' });
  t.equal(sharedParams(paramsSignature(other), other), other, 'different values are not merged');
});

t.test('settings PostgreSQL does not report: the difference with what pgrelay set on the server', async (t) => {
  const { settingsSignature, settingsSql } = await import('../../src/proxy/session-params.js');
  const client = m({ search_path: 'a,b', statement_timeout: "5'0" });
  const sig = settingsSignature(client);
  t.equal(settingsSignature(m({ statement_timeout: "5'0", search_path: 'a,b' })), sig, 'order does not matter');
  t.equal(settingsSignature(m({})), '', 'none: the empty signature');
  const server = (had: Record<string, string>, dirty = false) => ({ setByUs: m(had), setByUsSig: settingsSignature(m(had)), setByUsDirty: dirty });
  t.equal(settingsSql(client, sig, server({ search_path: 'a,b', statement_timeout: "5'0" })), '', 'the server has them: nothing runs');
  t.equal(settingsSql(client, sig, server({ search_path: 'a,b', work_mem: '1GB' })), "RESET work_mem;SELECT pg_catalog.set_config('statement_timeout', '5''0', false);", "another client's setting reset, the missing one set");
  t.equal(
    settingsSql(client, sig, server({ search_path: 'a,b', statement_timeout: "5'0" }, true)),
    "SELECT pg_catalog.set_config('search_path', 'a,b', false), pg_catalog.set_config('statement_timeout', '5''0', false);",
    'dirty: everything again',
  );
  t.equal(settingsSql(m({}), '', server({ search_path: 'x' })), 'RESET search_path;', 'a client without settings gets the defaults back');
  t.equal(settingsSql(m({}), '', server({})), '', 'neither has any: nothing');
});
