// Each database's role: which servers its write gate accepts, and whether it follows the primary
// (so that a PAUSE, hint or verification for the primary holds it). From target_session_attrs when
// given; else pgrelay's `auto` rule: several hosts or patroni_api = read-write; one host (a
// Service, a VIP, one server) = what its server logins show. A writable server settles it at once
// (read-write from then on). Read-only ones settle it as a read-only pool (any) once they have been
// all there was for LEARN_READ_ONLY_MS: a primary Service can route a login to a replica for a
// moment (a router that has not run its checks yet), a replica Service never to a writable primary.
// Until settled every server is used, and the database follows the primary unless its last server
// was read-only.

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

/** How long read-only logins must be all an auto database has seen before it is settled as a read-only pool. */
export const LEARN_READ_ONLY_MS = 2000;

type Learned = { readonly role: 'primary' | 'replica' | 'pending'; readonly hosts: string; readonly since: number };

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
  /** auto with one host: what its logins showed, per database name (with the hosts it was learned for). */
  private readonly learned = new Map<string, Learned>();

  /** The gate for `database` now. */
  gateOf(database: string, db: DatabaseConfig): Gate {
    const attrs = resolveTargetSessionAttrs(db);
    if (attrs !== 'auto') return attrs as Gate;
    const seen = this.learned.get(database);
    if (seen === undefined || seen.hosts !== hostsKey(db.hosts)) return 'learning';
    return seen.role === 'primary' ? 'read-write' : seen.role === 'replica' ? 'any' : 'learning';
  }

  /**
   * A login for an auto database passed: learn from it. Returns the role when it was settled by
   * this login (news to log), else null.
   */
  learn(database: string, db: DatabaseConfig, writable: boolean, now = Date.now()): 'primary' | 'replica' | null {
    const key = hostsKey(db.hosts);
    let seen = this.learned.get(database);
    if (seen !== undefined && seen.hosts !== key) seen = undefined;
    if (seen !== undefined && seen.role !== 'pending') return null;
    if (writable) {
      this.learned.set(database, { role: 'primary', hosts: key, since: now });
      return 'primary';
    }
    if (seen === undefined) {
      this.learned.set(database, { role: 'pending', hosts: key, since: now });
      return null;
    }
    if (now - seen.since < LEARN_READ_ONLY_MS) return null;
    this.learned.set(database, { role: 'replica', hosts: key, since: now });
    return 'replica';
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
