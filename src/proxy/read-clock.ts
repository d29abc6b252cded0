// The precise clock as the forwarding path reads it: at most once per socket read. A transaction
// stamps its link, its query times and its release; read for each of them, the clock was six
// calls per transaction, and it showed in profiles. Within one read callback those moments are
// microseconds apart, so they share one reading; outside a read (a link query's answer, a timer)
// every call reads the clock afresh, so no stamp is ever older than the read it belongs to.

// The module's export, not the global: globalThis.performance is a lazy getter that runs on
// every access.
import { performance } from 'node:perf_hooks';

/** performance.timeOrigin, read once: stamp + ORIGIN is wall-clock ms (for SHOW SERVERS). */
export const CLOCK_ORIGIN = performance.timeOrigin;

let inRead = false;
let stamp = 0;

/** A read callback begins: the next readClock() reads the clock, later ones reuse it. */
export function beginRead(): void {
  inRead = true;
  stamp = -1;
}

/** The read callback ends: readClock() reads the clock on every call again. */
export function endRead(): void {
  inRead = false;
}

/** performance.now(), shared by every caller within one read callback. */
export function readClock(): number {
  if (!inRead) return performance.now();
  if (stamp < 0) stamp = performance.now();
  return stamp;
}

/**
 * Wall-clock milliseconds (Date.now's scale) from the read's clock: what the pools stamp on
 * waits, hand-outs and releases. Date.now() is a call into the runtime from optimized code
 * (about 370 instructions); this shares the read's one reading. Everything the janitor's sweeps
 * compare reads this clock too (the pools' and clients' ages, server lifetimes, the coarse clock,
 * PAUSE's auto-resume, auth_query's cache and lookup connections, the log limiter's windows, SHOW's
 * ages): it runs on the monotonic clock from the process's start, so a step of the system clock
 * moves none of those durations, and mixing it with Date.now() would.
 */
export function wallClock(): number {
  return CLOCK_ORIGIN + readClock();
}
