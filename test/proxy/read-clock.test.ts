// The forwarding path's clock: one reading shared within a read callback, a fresh one outside.

import t from 'tap';
import { beginRead, CLOCK_ORIGIN, endRead, readClock, wallClock } from '../../src/proxy/read-clock.js';

/** Spins until performance.now() has moved on, so that a fresh reading must differ. */
function later(than: number): void {
  while (performance.now() <= than + 0.01) {
    // busy wait: a few microseconds
  }
}

t.test('within one read every caller gets the same reading; the next read gets a new one', async (t) => {
  beginRead();
  const first = readClock();
  later(first);
  t.equal(readClock(), first, 'a second call within the read reuses the reading');
  endRead();
  later(first);
  beginRead();
  const next = readClock();
  t.ok(next > first, 'the next read reads the clock again');
  endRead();
});

t.test('outside a read every call reads the clock', async (t) => {
  const a = readClock();
  later(a);
  const b = readClock();
  t.ok(b > a, 'two calls outside a read see time pass');
  beginRead();
  endRead();
  const c = readClock();
  later(c);
  t.ok(readClock() > c, 'a read that ended leaves no stale reading behind');
});

t.test('readings are performance.now() values: with the origin they are wall-clock time', async (t) => {
  const wall = CLOCK_ORIGIN + readClock();
  t.ok(Math.abs(wall - Date.now()) < 1000, 'origin + reading is within a second of Date.now()');
});

t.test('wallClock is the read clock on Date.now\'s scale: shared within a read, fresh outside', async (t) => {
  t.ok(Math.abs(wallClock() - Date.now()) < 1000, 'within a second of Date.now()');
  beginRead();
  const inRead = wallClock();
  t.equal(inRead, CLOCK_ORIGIN + readClock(), 'the read\'s one reading, with the origin');
  later(inRead - CLOCK_ORIGIN);
  t.equal(wallClock(), inRead, 'a second call within the read reuses it');
  endRead();
  t.ok(wallClock() > inRead, 'after the read a fresh reading');
});
