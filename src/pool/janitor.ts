// The one periodic timer: refreshes the coarse clock and runs every sweep (pool timeouts, client
// timeouts) a few times a second, like PgBouncer's janitor. Connections keep no periodic timers;
// the only per-connection timers are one-shot deadlines on rare paths (a query of pgrelay's own,
// a socket being closed, a server login).

import { wallClock } from '../proxy/read-clock.js';

export type Sweep = (now: number) => void;

export class Janitor {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly clock: { now: number },
    private readonly sweeps: readonly Sweep[],
    private readonly intervalMs = 333,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** One sweep now (also used by tests to avoid waiting for the timer). */
  tick(): void {
    // The pools' clock (see registry.ts): what the sweeps compare with their stamps.
    const now = wallClock();
    this.clock.now = now;
    for (const sweep of this.sweeps) sweep(now);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
