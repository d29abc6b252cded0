// The databases a hook's PAUSE for one node holds: those that follow the primary (roles.ts) and
// that this node may serve. A database that points elsewhere (a replica Service, a host list
// without the node, a host list whose current upstream is another node) is never held. Groups of
// databases (same configured address) are released one by one as their new primary is confirmed.

import type { PauseScope } from '../pool/pause.js';
import type { DatabaseConfig } from '../config/types.js';
import type { UpstreamConnector } from './connector.js';

/** The configured address of a database, as a key: databases with the same one are confirmed together. */
export function groupKey(db: DatabaseConfig): string {
  return db.hosts.map((h) => `${h.host}:${h.port}`).join(',');
}

export class NodeScope implements PauseScope {
  private readonly released = new Set<string>();
  /**
   * Whether the pause holds each database, decided the first time it is asked (at the PAUSE for
   * the pools that exist, at creation for later ones) and then kept: what it depends on (the
   * current upstream) changes during the very failover the pause is for.
   */
  private readonly decided = new Map<string, boolean>();

  constructor(
    readonly node: string,
    private readonly connector: UpstreamConnector,
    private readonly findDatabase: (name: string) => DatabaseConfig | undefined,
  ) {}

  /** Whether a PAUSE for the node holds `database` at all (before any release). */
  covers(database: string): boolean {
    const db = this.findDatabase(database);
    return db !== undefined && this.connector.followsPrimary(database, db) && this.connector.servedBy(database, db, this.node);
  }

  includes(database: string): boolean {
    const db = this.findDatabase(database);
    if (db === undefined || this.released.has(groupKey(db))) return false;
    let held = this.decided.get(database);
    if (held === undefined) {
      held = this.covers(database);
      this.decided.set(database, held);
    }
    return held;
  }

  /** The databases behind this configured address have a confirmed primary: stop holding them. */
  release(key: string): void {
    this.released.add(key);
  }
}
