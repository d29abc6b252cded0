// Every Prometheus metric pgrelay exports, declared once on its own registry. Gauges and counters
// are filled at scrape time from the admin snapshots and the hot path's plain counters; only the
// histograms are fed as events happen (observeWait, observeDrain, observePaused).

import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Control, PauseResult } from '../control/contract.js';
import { VERSION } from '../version.js';
import { buildPoolView, type PoolView } from './pool-view.js';
import { EventHistogram } from './event-histogram.js';
import { scrapedCounter, scrapedLabeledCounter, scrapedPoolCounter, type PoolSample } from './scraped-counter.js';

/** Counters the proxy core keeps as plain fields (cheap to bump); read only when scraped. */
export interface ProxyCounters {
  readonly clientsAccepted: number;
  readonly clientsRejected: number;
  readonly transactions: number;
  readonly queries: number;
  readonly bytesFromClients: number;
  readonly bytesToClients: number;
  readonly cancelsForwarded: number;
  readonly cancelsIgnored: number;
  readonly serverConnects: number;
  readonly serverConnectFailures: number;
  /** "side:code" → count (ProxyStats.countDisconnect); codes come from the Disconnect catalogue. */
  readonly disconnects: ReadonlyMap<string, number>;
  /** ErrorCode → logins refused with it (wrong password, unknown database, too many clients ...). */
  readonly loginFailures?: ReadonlyMap<string, number>;
  readonly autoResumes: number;
  /** database → logins refused because the server was not writable. */
  readonly writeGateRejections: ReadonlyMap<string, number>;
  /** Prepared-statement tracking: Parse messages sent to servers, statements found prepared already, evictions. */
  readonly preparesSent?: number;
  readonly preparedHits?: number;
  readonly preparedEvictions?: number;
}

/** A pool's traffic counters (the pool's own stats), read at scrape time. */
export interface PoolTraffic {
  readonly assignments: number;
  readonly transactions: number;
  readonly queries: number;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly transactionTimeUs: number;
  readonly queryTimeUs: number;
  readonly waitTimeUs: number;
  readonly waits: number;
}

/** What the metrics read at scrape time. */
export interface MetricsSource {
  readonly control: Pick<Control, 'pools' | 'clients' | 'servers' | 'state' | 'stats' | 'databases' | 'config'>;
  counters(): ProxyCounters;
  /** Every pool's counters; a retired pool's have no user (summed per database). */
  poolTraffic(): Iterable<{ readonly database: string; readonly user?: string; readonly stats: PoolTraffic }>;
}

/** The user label of counters kept from pools that no longer exist. */
export const RETIRED_USER = '(retired)';

const PREFIX = 'pgrelay_';

// Seconds. A healthy pool hands out servers in well under a millisecond; the tail is
// query_wait_timeout (120 s by default).
const WAIT_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
// A drain ends when the last transaction ends; pause_drain_timeout is 30 s by default.
const DRAIN_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
// A switchover pauses for seconds; pause_max_duration (60 s by default) bounds a forgotten pause.
const PAUSED_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600];

export class Metrics {
  private readonly registry = new Registry();
  private readonly waitSeconds: EventHistogram<'database'>;
  private readonly drainSeconds: Histogram<'result'>;
  private readonly pausedSeconds: Histogram;
  /** The pool view of the scrape in progress; built once, read by several gauges. */
  private view: PoolView | null = null;

  constructor(source: MetricsSource) {
    const r = this.registry;
    // Process metrics (CPU, memory, heap, GC, event-loop lag) on this registry, not the global one,
    // under their standard names (process_*, nodejs_*) so that stock Node dashboards work.
    collectDefaultMetrics({ register: r });

    const view = (): PoolView => (this.view ??= buildPoolView(source.control));
    new Gauge({
      name: `${PREFIX}clients`,
      help: 'Client connections by pool and state.',
      labelNames: ['database', 'user', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of view().pools.values()) {
          for (const [state, n] of p.clients) this.set({ database: p.database, user: p.user, state }, n);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}servers`,
      help: 'Server connections by pool and state.',
      labelNames: ['database', 'user', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of view().pools.values()) {
          for (const [state, n] of p.servers) this.set({ database: p.database, user: p.user, state }, n);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}clients_waiting`,
      help: 'Clients waiting for a server connection, by pool.',
      labelNames: ['database', 'user'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of view().pools.values()) this.set({ database: p.database, user: p.user }, p.waiting);
      },
    });
    new Gauge({
      name: `${PREFIX}client_oldest_wait_seconds`,
      help: 'How long the longest-waiting client of a pool has waited for a server (0 = none waiting).',
      labelNames: ['database', 'user'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of view().pools.values()) this.set({ database: p.database, user: p.user }, p.oldestWaitSeconds);
      },
    });
    new Gauge({
      name: `${PREFIX}paused`,
      help: 'Whether a database is paused (1) or not (0); database="*" is the global pause.',
      labelNames: ['database'],
      registers: [r],
      collect() {
        this.reset();
        for (const [database, paused] of view().paused) this.set({ database }, paused ? 1 : 0);
      },
    });

    // Observed on every transaction that had to wait, so it must cost next to nothing.
    this.waitSeconds = new EventHistogram(r, `${PREFIX}client_wait_seconds`, 'Time a client waited for a server connection, observed when it got one.', 'database', WAIT_BUCKETS);
    this.drainSeconds = new Histogram({
      name: `${PREFIX}pause_drain_seconds`,
      help: 'Time a PAUSE took to drain, by result (drained, timeout, resumed, ignored).',
      labelNames: ['result'],
      buckets: DRAIN_BUCKETS,
      registers: [r],
    });
    this.pausedSeconds = new Histogram({
      name: `${PREFIX}pause_duration_seconds`,
      help: 'Time between a PAUSE and the RESUME (or auto-resume) that lifted it.',
      buckets: PAUSED_BUCKETS,
      registers: [r],
    });

    const c = (): ProxyCounters => source.counters();
    scrapedCounter(r, `${PREFIX}clients_accepted_total`, 'Client connections accepted.', () => c().clientsAccepted);
    scrapedCounter(r, `${PREFIX}clients_rejected_total`, 'Client connections refused (max_client_conn, shutdown).', () => c().clientsRejected);
    // Traffic per pool, as SHOW STATS counts it (one query per Query or Sync); the user of a pool
    // that retired is RETIRED_USER, so a database's sum never goes back.
    const traffic = (get: (s: PoolTraffic) => number) => (): PoolSample[] =>
      [...source.poolTraffic()].map((p) => [{ database: p.database, user: p.user ?? RETIRED_USER }, get(p.stats)]);
    scrapedPoolCounter(r, `${PREFIX}transactions_total`, 'Transactions completed through pgrelay, by pool.', traffic((s) => s.transactions));
    scrapedPoolCounter(r, `${PREFIX}queries_total`, 'Queries sent through pgrelay (a Query, or a Sync closing extended-protocol messages), by pool.', traffic((s) => s.queries));
    scrapedPoolCounter(r, `${PREFIX}bytes_received_total`, 'Bytes received from clients, by pool.', traffic((s) => s.bytesReceived));
    scrapedPoolCounter(r, `${PREFIX}bytes_sent_total`, 'Bytes sent to clients, by pool.', traffic((s) => s.bytesSent));
    scrapedPoolCounter(r, `${PREFIX}server_assignments_total`, 'Server connections handed to clients, by pool.', traffic((s) => s.assignments));
    scrapedPoolCounter(r, `${PREFIX}client_waits_total`, 'Times a client waited for a server connection, by pool.', traffic((s) => s.waits));
    scrapedPoolCounter(r, `${PREFIX}client_wait_seconds_total`, 'Time clients waited for a server connection, by pool.', traffic((s) => s.waitTimeUs / 1e6));
    scrapedPoolCounter(r, `${PREFIX}transaction_seconds_total`, 'Time clients held a server connection (a transaction), by pool.', traffic((s) => s.transactionTimeUs / 1e6));
    scrapedPoolCounter(r, `${PREFIX}query_seconds_total`, 'Time from each query to the ReadyForQuery answering it, by pool.', traffic((s) => s.queryTimeUs / 1e6));
    scrapedLabeledCounter(r, `${PREFIX}cancel_requests_total`, 'CancelRequests received, by outcome.', 'result', () => [
      ['forwarded', c().cancelsForwarded],
      ['ignored', c().cancelsIgnored],
    ]);
    scrapedCounter(r, `${PREFIX}server_connects_total`, 'Server connections opened and logged in.', () => c().serverConnects);
    scrapedCounter(r, `${PREFIX}server_connect_failures_total`, 'Server connections that failed to connect or log in.', () => c().serverConnectFailures);
    scrapedCounter(r, `${PREFIX}auto_resumes_total`, 'Pauses lifted automatically after pause_max_duration.', () => c().autoResumes);
    scrapedCounter(r, `${PREFIX}prepared_statement_prepares_total`, 'Parse messages pgrelay sent to servers for named prepared statements (first use on a server, or again after eviction).', () => c().preparesSent ?? 0);
    scrapedCounter(r, `${PREFIX}prepared_statement_hits_total`, 'Named prepared statements a client used that its server had prepared already.', () => c().preparedHits ?? 0);
    scrapedCounter(r, `${PREFIX}prepared_statement_evictions_total`, 'Prepared statements closed on a server beyond max_prepared_statements.', () => c().preparedEvictions ?? 0);
    scrapedLabeledCounter(r, `${PREFIX}write_gate_rejections_total`, 'Server logins refused because the server was not writable, by database.', 'database', () => c().writeGateRejections);
    scrapedLabeledCounter(r, `${PREFIX}client_login_failures_total`, 'Client logins refused, by reason code (PGRELAY_AUTH_FAILED, PGRELAY_NO_SUCH_DATABASE, ...).', 'reason', () => c().loginFailures ?? new Map());
    // Keys are "side:code"; the codes are a closed catalogue (errors.ts), so the set is bounded.
    scrapedPoolCounter(r, `${PREFIX}disconnects_total`, 'Connections closed, by side (client, server) and reason code.', () =>
      [...c().disconnects].map(([key, n]): PoolSample => {
        const at = key.indexOf(':');
        return [{ side: at < 0 ? 'unknown' : key.slice(0, at), reason: at < 0 ? key : key.slice(at + 1) }, n];
      }),
    ['side', 'reason']);

    // Configuration, so that saturation ratios can be computed (clients / max_client_conn,
    // servers / pool size).
    new Gauge({
      name: `${PREFIX}max_client_connections`,
      help: 'max_client_conn: most client connections accepted at once.',
      registers: [r],
      collect() {
        const row = source.control.config().find((x) => x.key === 'max_client_conn');
        this.set(row === undefined ? 0 : Number(row.value));
      },
    });
    new Gauge({
      name: `${PREFIX}client_connections`,
      help: 'Client connections open now (logging in, pooled and admin console), what max_client_conn limits.',
      registers: [r],
      collect() {
        this.set(view().clientConnections);
      },
    });
    const perDatabase = (name: string, help: string, get: (d: ReturnType<Control['databases']>[number]) => number): void => {
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['database'],
        registers: [r],
        collect() {
          this.reset();
          for (const d of source.control.databases()) this.set({ database: d.name }, get(d));
        },
      });
    };
    perDatabase('database_pool_size', 'Server connections each pool (user) of a database may open (pool_size or default_pool_size).', (d) => d.poolSize);
    perDatabase('database_reserve_pool_size', 'Extra server connections a pool may open after reserve_pool_timeout.', (d) => d.reservePoolSize);
    perDatabase('database_max_connections', 'max_db_connections of a database; 0 = unlimited.', (d) => d.maxConnections);
    new Gauge({
      name: `${PREFIX}build_info`,
      help: 'Always 1; the labels say which pgrelay and which Node.js run.',
      labelNames: ['version', 'node_version'],
      registers: [r],
    }).set({ version: VERSION, node_version: process.version }, 1);
  }

  /** A waiting client got a server after `seconds`. */
  observeWait(seconds: number, database: string): void {
    this.waitSeconds.observe(database, seconds);
  }

  /** A PAUSE call returned after draining for `seconds`. */
  observeDrain(seconds: number, result: PauseResult['result']): void {
    this.drainSeconds.observe({ result }, seconds);
  }

  /** A pause was lifted after lasting `seconds`. */
  observePaused(seconds: number): void {
    this.pausedSeconds.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition. The pool view is built once per scrape and shared by the gauges. */
  async metrics(): Promise<string> {
    // prom-client runs every collect() synchronously inside registry.metrics(), before its first
    // await, so all gauges share one view. Were that to change, a gauge finding no view would build
    // its own: slower and less consistent, never stale.
    this.view = null;
    const text = this.registry.metrics();
    this.view = null;
    return text;
  }
}
