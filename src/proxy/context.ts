// What every client session shares: config, pools, secrets, the cancel-key table, counters and
// the logger. Built once by the app and passed to constructors (no module-level state).

import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { PoolRegistry } from '../pool/registry.js';
import type { Control } from '../admin/control.js';

/** Counters bumped on the hot path as plain fields; metrics read them at scrape time. */
export class ProxyStats {
  clientsAccepted = 0;
  clientsRejected = 0;
  transactions = 0;
  queries = 0;
  bytesFromClients = 0;
  bytesToClients = 0;
  cancelsForwarded = 0;
  cancelsIgnored = 0;
  readonly disconnects = new Map<string, number>();

  countDisconnect(reason: string): void {
    this.disconnects.set(reason, (this.disconnects.get(reason) ?? 0) + 1);
  }
}

/** SCRAM keys learned from a client's successful login, used to log in upstream as that user. */
export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
}

export interface ProxyContext {
  config: Config;
  /** auth_file contents: user → secret (plain, md5..., or SCRAM-SHA-256$...). */
  authSecrets: ReadonlyMap<string, string>;
  readonly registry: PoolRegistry;
  readonly logger: Logger;
  readonly stats: ProxyStats;
  /** Client sessions by the BackendKeyData process id pgrelay gave them. */
  readonly cancelKeys: Map<number, CancelTarget>;
  readonly scramKeys: Map<string, ScramKeys>;
  /** A coarse clock, refreshed by the janitor, for timestamps on the hot path. */
  readonly clock: { now: number };
  /** The admin verbs, for console sessions (set once the app is composed). */
  control?: Control;
  /** Client connections currently open (for max_client_conn). */
  clientCount(): number;
}

/** What a CancelRequest needs from a client session. */
export interface CancelTarget {
  readonly secretKey: number;
  cancel(): void;
}
