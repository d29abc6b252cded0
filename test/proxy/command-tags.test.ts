// onCommandTag: bytes of a CommandComplete in, the server's session record out. Each tag that
// matters changes exactly what it should; every other tag (and the same tags at other offsets
// of a read) changes nothing.

import t from 'tap';
import { onCommandTag, type TaggedServer } from '../../src/proxy/command-tags.js';
import { commandComplete } from '../../src/protocol/backend-messages.js';

interface Fake extends TaggedServer {
  dropped: number;
  statements: { ownDeallocates: number } | null;
  watchesStatements: boolean;
  forwarding: boolean;
}

function fake(over: Partial<Fake> = {}): Fake {
  const f: Fake = {
    setByUs: new Map([['search_path', 'app']]),
    setByUsSig: 'sig',
    setByUsDirty: false,
    sqlStatementsTouched: false,
    statements: { ownDeallocates: 0 },
    watchesStatements: true,
    forwarding: true,
    dropped: 0,
    statementsDropped() {
      f.dropped++;
    },
    ...over,
  };
  return f;
}

/** The frame at an offset inside a larger read, as the scanner hands it over. */
function feed(server: TaggedServer, tag: string, offset = 0): void {
  const frame = commandComplete(tag);
  const buf = Buffer.concat([Buffer.alloc(offset, 0x5a), frame, Buffer.from('Z\0\0\0\x05I')]);
  onCommandTag(server, buf, offset, offset + frame.length);
}

t.test('DISCARD ALL forgets the settings pgrelay SET and drops the statements', async (t) => {
  for (const offset of [0, 3, 17]) {
    const s = fake();
    feed(s, 'DISCARD ALL', offset);
    t.equal(s.setByUs.size, 0);
    t.equal(s.setByUsSig, '');
    t.equal(s.setByUsDirty, false);
    t.equal(s.dropped, 1, `offset ${offset}`);
  }
});

t.test('DEALLOCATE ALL drops the statements and leaves the settings', async (t) => {
  const s = fake();
  feed(s, 'DEALLOCATE ALL');
  t.equal(s.dropped, 1);
  t.equal(s.setByUsSig, 'sig');
});

t.test("DEALLOCATE: pgrelay's own are counted down first, then a client's marks the server", async (t) => {
  const s = fake({ statements: { ownDeallocates: 1 } });
  feed(s, 'DEALLOCATE');
  t.equal(s.statements!.ownDeallocates, 0, "pgrelay's own DEALLOCATE");
  t.equal(s.sqlStatementsTouched, false);
  feed(s, 'DEALLOCATE');
  t.equal(s.sqlStatementsTouched, true, "a client's SQL DEALLOCATE");
  const untracked = fake({ watchesStatements: false });
  feed(untracked, 'DEALLOCATE');
  t.equal(untracked.sqlStatementsTouched, false, 'not marked when nobody watches statements');
});

t.test('PREPARE marks the server only while statements are watched', async (t) => {
  const s = fake();
  feed(s, 'PREPARE');
  t.equal(s.sqlStatementsTouched, true);
  const untracked = fake({ watchesStatements: false });
  feed(untracked, 'PREPARE');
  t.equal(untracked.sqlStatementsTouched, false);
});

t.test("SET and RESET make pgrelay's record dirty only while a client's bytes are forwarded", async (t) => {
  for (const tag of ['SET', 'RESET']) {
    const s = fake();
    feed(s, tag, 5);
    t.equal(s.setByUsDirty, true, tag);
    const own = fake({ forwarding: false });
    feed(own, tag);
    t.equal(own.setByUsDirty, false, `${tag} of pgrelay's own`);
  }
});

t.test('other tags change nothing', async (t) => {
  for (const tag of ['SELECT 1', 'INSERT 0 1', 'UPDATE 3', 'BEGIN', 'COMMIT', 'ROLLBACK', 'SHOW', 'DISCARD PLANS', 'DISCARD TEMP', 'LISTEN', 'CREATE TABLE', 'CLOSE CURSOR']) {
    const s = fake();
    feed(s, tag);
    t.same(
      { size: s.setByUs.size, sig: s.setByUsSig, dirty: s.setByUsDirty, touched: s.sqlStatementsTouched, dropped: s.dropped, own: s.statements!.ownDeallocates },
      { size: 1, sig: 'sig', dirty: false, touched: false, dropped: 0, own: 0 },
      tag,
    );
  }
});
