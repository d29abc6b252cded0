// "This node may be primary now" from a Patroni callback, and pgrelay's own search for the new
// primary while a hook's PAUSE is in force: both feed one PromotionWatch, which releases the held
// databases once the new primary is confirmed (see promotion-watch.ts). Also watches the current
// upstream's leader lock, so a split brain (old primary still writable after its Patroni died)
// retires servers on the old node.

import type { Logger } from 'pino';
import { Disconnect } from '../errors.js';
import type { PauseController } from '../pool/pause.js';
import type { PoolRegistry } from '../pool/registry.js';
import type { UpstreamConnector } from './connector.js';
import type { NodeScope } from './node-scope.js';
import { PromotionWatch, type WatchDeps } from './promotion-watch.js';

export interface HintResult {
  readonly node: string;
  /** Paused databases the hint concerns (they follow the primary and the node may serve them). */
  readonly databases: readonly string[];
  /** Whether anything was paused when the hint arrived (a resume follows confirmation). */
  readonly paused: boolean;
  readonly verifying: boolean;
}

export class PrimaryHints {
  /** The searches in progress: one per hook PAUSE for a node (two nodes' pauses may overlap), or one for hints. */
  private readonly watches = new Set<PromotionWatch>();
  private watching = false;
  private readonly deps: WatchDeps;

  constructor(
    private readonly registry: PoolRegistry,
    private readonly connector: UpstreamConnector,
    private readonly pause: PauseController,
    private readonly logger: Logger,
    settings: WatchDeps['settings'],
  ) {
    this.deps = { registry, connector, pause, logger, settings };
  }

  /** A hook's PAUSE for one node took effect: look for the new primary until the pause ends. */
  watchPause(scope: NodeScope): void {
    this.prune();
    for (const w of this.watches) if (w.scope?.node === scope.node) w.stop(); // the same node paused again: the new scope replaces it
    this.prune();
    const watch = new PromotionWatch(this.deps, scope);
    this.watches.add(watch);
    watch.start();
  }

  private prune(): void {
    for (const w of this.watches) if (w.done) this.watches.delete(w);
  }

  hint(node: string, role = 'primary'): HintResult {
    const databases = new Set<string>();
    for (const e of this.registry.all()) {
      const database = e.pool.database;
      if (e.pool.isPaused && this.connector.followsPrimary(database, e.db) && this.connector.servedBy(database, e.db, node)) databases.add(database);
    }
    const paused = this.pause.globalState !== null || this.pause.pausedDatabases().length > 0;
    this.logger.info({ event: 'primary-hint', node, role, databases: [...databases], paused }, 'primary hint received');
    if (paused) {
      this.prune();
      if (this.watches.size === 0) {
        const watch = new PromotionWatch(this.deps, null);
        this.watches.add(watch);
        watch.start();
      }
      for (const w of this.watches) w.hint(node);
    }
    return { node, databases: [...databases], paused, verifying: paused };
  }

  /** Stops the search (shutdown). */
  close(): void {
    for (const w of this.watches) w.stop();
    this.watches.clear();
  }

  /** Janitor: when the current upstream no longer holds the Patroni leader lock, retire its servers. */
  watchLeaders(): void {
    if (this.watching) return;
    this.watching = true;
    void this.checkLeaders().finally(() => {
      this.watching = false;
    });
  }

  private async checkLeaders(): Promise<void> {
    const checked = new Set<string>();
    for (const entry of this.registry.all()) {
      const db = entry.db;
      if (db.patroniApi.length === 0 || checked.has(entry.pool.database)) continue;
      checked.add(entry.pool.database);
      const current = this.connector.upstreams.get(entry.pool.database);
      if (current === undefined) continue;
      const i = db.hosts.findIndex((h) => h.host === current.host && h.port === current.port);
      const api = db.patroniApi[i];
      if (api === undefined || (await this.connector.leaderCheck.isLeader(api))) continue;
      this.logger.warn({ event: 'leader-lost', database: entry.pool.database, host: current.host, port: current.port }, 'current upstream no longer holds the Patroni leader lock; retiring its servers');
      this.connector.upstreams.delete(entry.pool.database);
      for (const e of this.registry.all()) if (e.pool.database === entry.pool.database) e.pool.reconnect(Disconnect.LeaderLost);
    }
  }
}
