// "This node may be primary now" from a Patroni callback: pgrelay does not trust the hint, it
// verifies the node itself (login, write gate, Patroni leader lock when configured) and resumes the
// paused pools only once the node passes. Also watches the current upstream's leader lock, so a
// split brain (old primary still writable after its Patroni died) retires servers on the old node.

import type { Logger } from 'pino';
import { Disconnect } from '../errors.js';
import type { PauseController } from '../pool/pause.js';
import type { PoolEntry, PoolRegistry } from '../pool/registry.js';
import type { UpstreamConnector } from './connector.js';
import type { HostPort } from '../config/types.js';

export interface HintResult {
  readonly node: string;
  /** Databases the hint is checked for. */
  readonly databases: readonly string[];
  /** Whether any of them was paused when the hint arrived (a resume follows verification). */
  readonly paused: boolean;
  readonly verifying: boolean;
}

const RETRY_MS = 100;

export class PrimaryHints {
  private readonly running = new Set<string>();
  private watching = false;

  constructor(
    private readonly registry: PoolRegistry,
    private readonly connector: UpstreamConnector,
    private readonly pause: PauseController,
    private readonly logger: Logger,
    private readonly deadlineMs: () => number,
  ) {}

  hint(node: string, role = 'primary'): HintResult {
    const groups = this.candidates(node);
    const databases = [...groups.keys()];
    const paused = this.pause.globalState !== null || databases.some((d) => this.pause.isPaused(d));
    const verifying = paused && !this.running.has(node);
    this.logger.info({ event: 'primary-hint', node, role, databases, paused }, 'primary hint received');
    if (verifying) {
      this.running.add(node);
      void this.verifyLoop(node, groups).finally(() => this.running.delete(node));
    }
    return { node, databases, paused, verifying: verifying || this.running.has(node) };
  }

  /** One pool per database whose hosts include the node (or every database when none lists it: a Service or VIP). */
  private candidates(node: string): Map<string, { entry: PoolEntry; address: HostPort }> {
    const byDb = new Map<string, { entry: PoolEntry; address: HostPort }>();
    const all = [...this.registry.all()];
    for (const entry of all) {
      const address = entry.db.hosts.find((h) => `${h.host}:${h.port}` === node || h.host === node);
      if (address !== undefined && !byDb.has(entry.pool.database)) byDb.set(entry.pool.database, { entry, address });
    }
    if (byDb.size === 0) {
      for (const entry of all) if (!byDb.has(entry.pool.database)) byDb.set(entry.pool.database, { entry, address: entry.db.hosts[0]! });
    }
    return byDb;
  }

  private async verifyLoop(node: string, groups: Map<string, { entry: PoolEntry; address: HostPort }>): Promise<void> {
    const started = Date.now();
    const deadline = started + this.deadlineMs();
    while (Date.now() < deadline) {
      if (this.pause.globalState === null && ![...groups.keys()].some((d) => this.pause.isPaused(d))) return; // resumed meanwhile
      let ok = true;
      for (const { entry, address } of groups.values()) {
        if (!(await this.connector.verify(entry, address))) {
          ok = false;
          break;
        }
      }
      if (ok) {
        this.logger.info({ event: 'primary-confirmed', node, verifyMs: Date.now() - started }, 'new primary verified; resuming');
        if (this.pause.globalState !== null) this.pause.resume(null);
        for (const db of groups.keys()) if (this.pause.isPaused(db)) this.pause.resume(db);
        return;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
    this.logger.warn({ event: 'primary-unconfirmed', node }, 'hinted node never passed verification; the pause ends at pause_max_duration');
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
