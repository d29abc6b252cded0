// Each database's role: which servers its write gate accepts, and whether it follows the primary
// (so that a PAUSE, hint or verification for the primary holds it). From target_session_attrs when
// given; else pgrelay's `auto` rule: several hosts or patroni_api = read-write; one host (a
// Service, a VIP, one server) = what its first server login shows, writable → read-write,
// read-only → any (a replica Service, or default_transaction_read_only=on).

import type { DatabaseConfig, HostPort } from '../config/types.js';
import { resolveTargetSessionAttrs } from '../config/databases.js';

/** The gate a server login is judged by; `learning` = auto before the first login (accept, then learn). */
export type Gate = 'read-write' | 'primary' | 'any' | 'read-only' | 'standby' | 'prefer-standby' | 'learning';

/** What a database's last server said about itself, as the connector saw it. */
export interface LastSeen {
  readonly host: string;
  readonly port: number;
  /** null: not known (no login yet, or an old server that reported nothing under gate any). */
  readonly writable: boolean | null;
}

const hostsKey = (hosts: readonly HostPort[]): string => hosts.map((h) => `${h.host}:${h.port}`).join(',');

/** Whether `node` ("host:port" or "host", as the hook names it) is the address `h`. */
export function isNode(h: { host: string; port: number }, node: string): boolean {
  return `${h.host}:${h.port}` === node || h.host === node;
}

/** "host:port" (or "host", with `defaultPort`) → an address. */
export function parseNode(node: string, defaultPort: number): HostPort {
  const i = node.lastIndexOf(':');
  if (i > 0 && /^\d+$/.test(node.slice(i + 1)) && !node.slice(0, i).includes(':')) return { host: node.slice(0, i), port: Number(node.slice(i + 1)) };
  const bracketed = /^\[(.*)\]:(\d+)$/.exec(node);
  if (bracketed !== null) return { host: bracketed[1]!, port: Number(bracketed[2]) };
  return { host: node, port: defaultPort };
}

export class DatabaseRoles {
  /** auto with one host: what the first login showed, per database name (with the hosts it was learned for). */
  private readonly learned = new Map<string, { writable: boolean; hosts: string }>();

  /** The gate for `database` now. */
  gateOf(database: string, db: DatabaseConfig): Gate {
    const attrs = resolveTargetSessionAttrs(db);
    if (attrs !== 'auto') return attrs as Gate;
    const seen = this.learned.get(database);
    if (seen === undefined || seen.hosts !== hostsKey(db.hosts)) return 'learning';
    return seen.writable ? 'read-write' : 'any';
  }

  /** A login for an auto database passed: remember its role. Returns true when this was news. */
  learn(database: string, db: DatabaseConfig, writable: boolean): boolean {
    const key = hostsKey(db.hosts);
    const seen = this.learned.get(database);
    if (seen !== undefined && seen.hosts === key) return false;
    this.learned.set(database, { writable, hosts: key });
    return true;
  }

  forget(database: string): void {
    this.learned.delete(database);
  }

  /**
   * Whether `database` follows the primary: a read-write gate; `any` or a gate still learning
   * unless its last server was read-only; never a read-only, standby or prefer-standby gate.
   */
  followsPrimary(database: string, db: DatabaseConfig, last: LastSeen | undefined): boolean {
    switch (this.gateOf(database, db)) {
      case 'read-write':
      case 'primary':
        return true;
      case 'read-only':
      case 'standby':
      case 'prefer-standby':
        return false;
      case 'any':
      case 'learning':
        return last?.writable !== false;
    }
  }

  /**
   * Whether `node` may be the server of `db`: it is one of the database's hosts and not known to be
   * elsewhere (the current upstream is another host), or the database's one host is a name or
   * address we cannot see through (a Service, a VIP). A host list that does not name the node
   * points elsewhere.
   */
  servedBy(db: DatabaseConfig, node: string, current: LastSeen | undefined): boolean {
    if (db.hosts.some((h) => isNode(h, node))) return current === undefined || isNode(current, node) || !db.hosts.some((h) => isNode(h, `${current.host}:${current.port}`));
    return db.hosts.length === 1;
  }
}
