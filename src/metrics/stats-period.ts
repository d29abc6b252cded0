// PgBouncer's stats_period averages: at the end of each period the per-database totals are
// compared with the previous period's, giving rates per second (transactions, queries, bytes,
// server assignments) and times per item (µs per transaction, per query, per assignment). SHOW
// STATS' avg_ columns read the last completed period, as PgBouncer's do.

import type { StatsAverages, StatsSnapshot } from '../control/contract.js';

type Totals = Pick<StatsSnapshot, 'database' | 'serverAssignments' | 'transactions' | 'queries' | 'bytesReceived' | 'bytesSent' | 'transactionTimeUs' | 'queryTimeUs' | 'waitTimeUs'>;

export const NO_AVERAGES: StatsAverages = Object.freeze({
  serverAssignmentsPerSec: 0,
  transactionsPerSec: 0,
  queriesPerSec: 0,
  bytesReceivedPerSec: 0,
  bytesSentPerSec: 0,
  transactionTimeUs: 0,
  queryTimeUs: 0,
  waitTimeUs: 0,
});

const perItem = (total: number, count: number): number => (count > 0 ? total / count : 0);

export class StatsPeriod {
  private previous: Map<string, Totals> | null = null;
  private previousAt = 0;
  private averages = new Map<string, StatsAverages>();

  /** Ends a period when `periodMs` has passed since the last one (the first call only starts one). */
  sweep(now: number, periodMs: number, totals: () => readonly Totals[]): void {
    if (this.previous !== null && now - this.previousAt < periodMs) return;
    const current = new Map(totals().map((t) => [t.database, t]));
    if (this.previous !== null) {
      const seconds = (now - this.previousAt) / 1000;
      const next = new Map<string, StatsAverages>();
      for (const [database, cur] of current) {
        // A database first seen in this period started from zero.
        const old = this.previous.get(database);
        const d = (k: keyof Omit<Totals, 'database'>): number => Math.max(0, cur[k] - (old?.[k] ?? 0));
        next.set(database, {
          serverAssignmentsPerSec: d('serverAssignments') / seconds,
          transactionsPerSec: d('transactions') / seconds,
          queriesPerSec: d('queries') / seconds,
          bytesReceivedPerSec: d('bytesReceived') / seconds,
          bytesSentPerSec: d('bytesSent') / seconds,
          transactionTimeUs: perItem(d('transactionTimeUs'), d('transactions')),
          queryTimeUs: perItem(d('queryTimeUs'), d('queries')),
          // PgBouncer divides wait time by server assignments (each assignment ends one wait).
          waitTimeUs: perItem(d('waitTimeUs'), d('serverAssignments')),
        });
      }
      this.averages = next;
    }
    this.previous = current;
    this.previousAt = now;
  }

  /** The last completed period's averages of `database` (zeros before one has completed). */
  of(database: string): StatsAverages {
    return this.averages.get(database) ?? NO_AVERAGES;
  }
}
