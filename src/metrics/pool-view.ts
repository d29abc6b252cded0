// One scrape's view of the pools, folded from the admin snapshots: clients and servers counted by
// (database, user, state), waiting clients and the oldest wait per pool, and the paused databases.
// Pure: no prom-client, so the folding is tested on plain objects.

import type { Control } from '../control/contract.js';

/** The snapshots a scrape reads. */
export type PoolViewSource = Pick<Control, 'pools' | 'clients' | 'servers' | 'state'>;

export interface PoolKey {
  readonly database: string;
  readonly user: string;
}

export interface PoolCounts extends PoolKey {
  /** state → count; every state in CLIENT_STATES / SERVER_STATES is present, so idle pools show 0. */
  readonly clients: Map<string, number>;
  readonly servers: Map<string, number>;
  waiting: number;
  oldestWaitSeconds: number;
}

export interface PoolView {
  readonly pools: ReadonlyMap<string, PoolCounts>;
  /** Per-database pause flag, plus "*" for the global pause. */
  readonly paused: ReadonlyMap<string, boolean>;
  /** Every client connection of the snapshot, in a pool or not (logging in, admin console). */
  readonly clientConnections: number;
}

// The states a pool always reports, even at zero: a series that vanishes when it reaches 0 breaks
// `rate()` and alerts on it. Other states a snapshot reports (e.g. a client still logging in) are
// added as they appear.
export const CLIENT_STATES = ['active', 'idle', 'waiting'] as const;
export const SERVER_STATES = ['active', 'idle', 'login'] as const;

/** The label value of the global pause in `pgrelay_paused`. */
export const ALL_DATABASES = '*';

export function buildPoolView(source: PoolViewSource): PoolView {
  const pools = new Map<string, PoolCounts>();
  const entry = (database: string, user: string): PoolCounts => {
    const key = `${database}\u0000${user}`;
    let found = pools.get(key);
    if (found === undefined) {
      found = { database, user, clients: zeroes(CLIENT_STATES), servers: zeroes(SERVER_STATES), waiting: 0, oldestWaitSeconds: 0 };
      pools.set(key, found);
    }
    return found;
  };
  for (const p of source.pools()) entry(p.database, p.user);
  // Counted from the per-connection snapshots rather than PoolSnapshot's columns, so states the pool
  // summary has no column for (a client in login) are still counted.
  let clientConnections = 0;
  for (const c of source.clients()) {
    clientConnections++;
    const e = entry(c.database, c.user);
    bump(e.clients, c.state);
    if (c.state === 'waiting') {
      e.waiting++;
      e.oldestWaitSeconds = Math.max(e.oldestWaitSeconds, c.waitMs / 1000);
    }
  }
  for (const s of source.servers()) bump(entry(s.database, s.user).servers, s.state);

  const state = source.state();
  const paused = new Map<string, boolean>();
  // A `[databases]` entry literally named "*" is the fallback template, not a database clients use;
  // its label value is taken by the global pause.
  for (const db of state.databases) if (db.name !== ALL_DATABASES) paused.set(db.name, db.paused);
  paused.set(ALL_DATABASES, state.paused);
  return { pools, paused, clientConnections };
}

function zeroes(states: readonly string[]): Map<string, number> {
  return new Map(states.map((s) => [s, 0]));
}

function bump(counts: Map<string, number>, state: string): void {
  counts.set(state, (counts.get(state) ?? 0) + 1);
}
