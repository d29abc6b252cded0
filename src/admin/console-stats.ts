// SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS in PgBouncer 1.25's layouts (src/stats.c),
// filled from Control.stats(). Times are microseconds, bytes are bytes, as in PgBouncer. SHOW
// STATS ends with 1.7's total_requests, for exporters that still read it.
//
// The avg_ columns are PgBouncer's: over the last completed stats_period, counts and bytes per
// second, and times per transaction, per query and per server assignment; 0 until a period has
// ended. Prepared-statement counters are not tracked and read 0.

import type { Control, StatsAverages, StatsSnapshot } from '../control/contract.js';
import { NO_AVERAGES } from '../metrics/stats-period.js';
import { int, table, text, type Col, type ShowItem } from './console-result.js';

/** The figures behind every layout, in PgBouncer's PgStats terms. */
interface Figures {
  readonly database: string;
  readonly serverAssignments: number;
  readonly xacts: number;
  readonly queries: number;
  readonly received: number;
  readonly sent: number;
  readonly xactTimeUs: number;
  readonly queryTimeUs: number;
  readonly waitTimeUs: number;
  readonly averages: StatsAverages;
}

function figures(s: StatsSnapshot): Figures {
  return {
    database: s.database,
    serverAssignments: s.serverAssignments,
    xacts: s.transactions,
    queries: s.queries,
    received: s.bytesReceived,
    sent: s.bytesSent,
    xactTimeUs: s.transactionTimeUs,
    queryTimeUs: s.queryTimeUs,
    waitTimeUs: s.waitTimeUs,
    averages: s.averages ?? NO_AVERAGES,
  };
}

const zero = (): number => 0;

/** The eleven total_ columns of SHOW STATS (after database), under the given names. */
function totalCols(names: readonly string[]): Col<Figures>[] {
  const getters: ((f: Figures) => number)[] = [
    (f) => f.serverAssignments,
    (f) => f.xacts,
    (f) => f.queries,
    (f) => f.received,
    (f) => f.sent,
    (f) => f.xactTimeUs,
    (f) => f.queryTimeUs,
    (f) => f.waitTimeUs,
    zero, // client parse count
    zero, // server parse count
    zero, // bind count
  ];
  return getters.map((get, i) => int(names[i]!, get));
}

/** The eleven avg_ columns of SHOW STATS, under the given names. */
function avgCols(names: readonly string[]): Col<Figures>[] {
  const getters: ((f: Figures) => number)[] = [
    (f) => f.averages.serverAssignmentsPerSec,
    (f) => f.averages.transactionsPerSec,
    (f) => f.averages.queriesPerSec,
    (f) => f.averages.bytesReceivedPerSec,
    (f) => f.averages.bytesSentPerSec,
    (f) => f.averages.transactionTimeUs,
    (f) => f.averages.queryTimeUs,
    (f) => f.averages.waitTimeUs,
    zero, // client parse count
    zero, // server parse count
    zero, // bind count
  ];
  return getters.map((get, i) => int(names[i]!, get));
}

const TOTAL_NAMES = [
  'total_server_assignment_count',
  'total_xact_count',
  'total_query_count',
  'total_received',
  'total_sent',
  'total_xact_time',
  'total_query_time',
  'total_wait_time',
  'total_client_parse_count',
  'total_server_parse_count',
  'total_bind_count',
] as const;

const AVG_NAMES = [
  'avg_server_assignment_count',
  'avg_xact_count',
  'avg_query_count',
  'avg_recv',
  'avg_sent',
  'avg_xact_time',
  'avg_query_time',
  'avg_wait_time',
  'avg_client_parse_count',
  'avg_server_parse_count',
  'avg_bind_count',
] as const;

// STATS_TOTALS and STATS_AVERAGES use the same short names, except for the last three averages.
const SHORT_NAMES = ['server_assignment_count', 'xact_count', 'query_count', 'bytes_received', 'bytes_sent', 'xact_time', 'query_time', 'wait_time'] as const;

const database = text<Figures>('database', (f) => f.database);

// PgBouncer 1.7's name for total_query_count, last: exporters written for it (Debian's
// prometheus-pgbouncer-exporter 1.7 reads it) work unchanged, positions keep 1.25's layout.
const totalRequests = int<Figures>('total_requests', (f) => f.queries);

const STATS_COLS = [database, ...totalCols(TOTAL_NAMES), ...avgCols(AVG_NAMES), totalRequests];
const STATS_TOTALS_COLS = [database, ...totalCols([...SHORT_NAMES, 'client_parse_count', 'server_parse_count', 'bind_count'])];
const STATS_AVERAGES_COLS = [database, ...avgCols([...SHORT_NAMES, 'avg_client_parse_count', 'avg_server_parse_count', 'avg_bind_count'])];

function sum(all: readonly Figures[]): Figures {
  const add = (k: keyof Omit<Figures, 'database' | 'averages'>): number => all.reduce((n, f) => n + f[k], 0);
  const rate = (k: keyof StatsAverages): number => all.reduce((n, f) => n + f.averages[k], 0);
  // Rates add up across databases; times per item are weighted by the items behind them.
  const weighted = (k: keyof StatsAverages, by: keyof StatsAverages): number => {
    const items = rate(by);
    return items > 0 ? all.reduce((n, f) => n + f.averages[k] * f.averages[by], 0) / items : 0;
  };
  return {
    database: '',
    serverAssignments: add('serverAssignments'),
    xacts: add('xacts'),
    queries: add('queries'),
    received: add('received'),
    sent: add('sent'),
    xactTimeUs: add('xactTimeUs'),
    queryTimeUs: add('queryTimeUs'),
    waitTimeUs: add('waitTimeUs'),
    averages: {
      serverAssignmentsPerSec: rate('serverAssignmentsPerSec'),
      transactionsPerSec: rate('transactionsPerSec'),
      queriesPerSec: rate('queriesPerSec'),
      bytesReceivedPerSec: rate('bytesReceivedPerSec'),
      bytesSentPerSec: rate('bytesSentPerSec'),
      transactionTimeUs: weighted('transactionTimeUs', 'transactionsPerSec'),
      queryTimeUs: weighted('queryTimeUs', 'queriesPerSec'),
      waitTimeUs: weighted('waitTimeUs', 'serverAssignmentsPerSec'),
    },
  };
}

// SHOW TOTALS: one name/value row per figure, summed over every database; PgBouncer names the
// rows after its PgStats fields (total_client_bytes, not total_received).
const TOTALS_NAMES = [
  'server_assignment_count',
  'xact_count',
  'query_count',
  'client_bytes',
  'server_bytes',
  'xact_time',
  'query_time',
  'wait_time',
  'ps_client_parse_count',
  'ps_server_parse_count',
  'ps_bind_count',
] as const;

function showTotals(control: Control): Buffer[] {
  const total = sum(control.stats().map(figures));
  const rows: [string, number][] = [
    ...totalCols(TOTALS_NAMES.map((n) => `total_${n}`)).map((c): [string, number] => [c.name, Number(c.get(total))]),
    ...avgCols(TOTALS_NAMES.map((n) => `avg_${n}`)).map((c): [string, number] => [c.name, Number(c.get(total))]),
  ];
  return table<[string, number]>([text('name', (r) => r[0]), int('value', (r) => r[1])], rows);
}

export function showStatsItems(): [string, ShowItem][] {
  return [
    ['stats', (control) => table(STATS_COLS, control.stats().map(figures))],
    ['stats_totals', (control) => table(STATS_TOTALS_COLS, control.stats().map(figures))],
    ['stats_averages', (control) => table(STATS_AVERAGES_COLS, control.stats().map(figures))],
    ['totals', showTotals],
  ];
}
