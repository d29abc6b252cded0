// Statement messages: reading the names out of Parse/Bind/Describe/Close as pg-protocol writes
// them, rewriting a Bind's statement name while keeping the rest byte for byte, PostgreSQL's
// exact words for 42P05 and 26000, and a HINT added to an ErrorResponse.

import t from 'tap';
import { serialize } from '../../src/protocol/frontend-messages.js';
import { bindPrefix, cstringEnd, duplicateStatementError, errorCode, readBind, readParse, readTarget, unknownStatementError, withHint } from '../../src/protocol/statement-messages.js';
import { errorFields } from '../harness/wire-client.js';

t.test('names read from the frames', async (t) => {
  const p = serialize.parse({ name: 'stmt', text: 'select $1', types: [23] });
  const r = readParse(p, 0, p.length)!;
  t.equal(p.toString('latin1', 5, r.nameEnd), 'stmt');
  t.equal(p.toString('latin1', r.nameEnd + 1, cstringEnd(p, r.nameEnd + 1, p.length)), 'select $1');
  t.equal(readParse(p.subarray(0, 9), 0, 9), null, 'truncated: malformed');
  const b = serialize.bind({ portal: 'por', statement: 'stmt', values: ['x'] });
  const rb = readBind(b, 0, b.length)!;
  t.equal(b.toString('latin1', 5, rb.portalEnd), 'por');
  t.equal(b.toString('latin1', rb.portalEnd + 1, rb.nameEnd), 'stmt');
  const d = serialize.describe({ type: 'S', name: 'stmt' });
  t.same(readTarget(d, 0, d.length), { kind: 0x53, nameEnd: d.length - 1 });
});

t.test('a Bind renamed keeps portal, parameters and formats byte for byte', async (t) => {
  const b = serialize.bind({ portal: 'p1', statement: 'client_name', values: ['one', null, 'three'], binary: false });
  const r = readBind(b, 0, b.length)!;
  const prefix = bindPrefix(b, 0, b.length, r.portalEnd, r.nameEnd, Buffer.from('pgrelay_x\0'));
  const renamed = Buffer.concat([prefix, b.subarray(r.nameEnd + 1)]);
  const want = serialize.bind({ portal: 'p1', statement: 'pgrelay_x', values: ['one', null, 'three'], binary: false });
  t.same(renamed, want);
  t.equal(renamed.readInt32BE(1), renamed.length - 1, 'the length field matches');
});

t.test("PostgreSQL's own words for a bad name", async (t) => {
  const dup = errorFields(duplicateStatementError(Buffer.from('s1')).subarray(5));
  t.same([dup.get('S'), dup.get('V'), dup.get('C'), dup.get('M')], ['ERROR', 'ERROR', '42P05', 'prepared statement "s1" already exists']);
  const unknown = unknownStatementError(Buffer.from('névé'));
  t.equal(errorFields(unknown.subarray(5)).get('M'), 'prepared statement "névé" does not exist');
  t.equal(errorCode(unknown, 0, unknown.length), '26000');
  t.equal(unknown.readInt32BE(1), unknown.length - 1);
});

t.test('withHint adds a HINT field, once', async (t) => {
  const e = unknownStatementError(Buffer.from('x'));
  const hinted = withHint(e, 0, e.length, 'do this');
  t.equal(hinted.readInt32BE(1), hinted.length - 1);
  const f = errorFields(hinted.subarray(5));
  t.equal(f.get('H'), 'do this');
  t.equal(f.get('C'), '26000');
  t.same(withHint(hinted, 0, hinted.length, 'other'), hinted, 'a hint already there stays');
});
