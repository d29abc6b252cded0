// What every client session shares: config, pools, secrets, the cancel-key table, counters, the
// logger and the way into the admin console. Built once by the app and passed to constructors;
// the proxy's only module-level state is scratch memory and sharing caches (socket-io.ts,
// session-params.ts, login-status.ts), never configuration.

import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import type { RepeatLog } from '../log-limiter.js';
import type { PoolRegistry } from '../pool/registry.js';
import type { TlsContexts } from '../tls/tls-contexts.js';
import type { HbaRules } from '../auth/hba.js';
import type { SecretLookup } from '../auth/auth-query.js';

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
  /** Prepared-statement tracking: Parse messages sent to servers, statements found already prepared, evictions. */
  preparesSent = 0;
  preparedHits = 0;
  preparedEvictions = 0;
  /** Disconnects by "side:code" (codes from the Disconnect catalogue or errorDisconnect()). */
  readonly disconnects = new Map<string, number>();

  countDisconnect(side: 'client' | 'server', code: string): void {
    const key = `${side}:${code}`;
    this.disconnects.set(key, (this.disconnects.get(key) ?? 0) + 1);
  }

  /** Logins refused, by ErrorCode (a closed catalogue, so the label set is bounded). */
  readonly loginFailures = new Map<string, number>();

  countLoginFailure(code: string): void {
    this.loginFailures.set(code, (this.loginFailures.get(code) ?? 0) + 1);
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
  /** For lines that can repeat without bound (failed logins): rate-limited with a count. */
  readonly repeatLog: RepeatLog;
  /** Client sessions by the BackendKeyData process id pgrelay gave them. */
  readonly cancelKeys: Map<number, CancelTarget>;
  readonly scramKeys: Map<string, ScramKeys>;
  /** TLS of both sides; replaced whole on reload (open connections keep what they negotiated). */
  tls: TlsContexts;
  /** auth_hba_file's rules when auth_type = hba; replaced whole on reload. */
  hba: HbaRules | null;
  /** auth_query lookups for users not in auth_file. */
  readonly authQuery: SecretLookup;
  /**
   * Verifiers auth_query returned for users who then logged in: pgrelay's own login upstream
   * answers with them (an md5 hash; a SCRAM verifier is used through scramKeys).
   */
  readonly queriedSecrets: Map<string, string>;
  /** A coarse clock, refreshed by the janitor, for timestamps on the hot path. */
  readonly clock: { now: number };
  /** Opens an admin console session for a client logged in to the console database. */
  openConsole(io: ConsoleIO, who: ConsoleLogin): ConsoleLink;
  /** Client connections currently open (for max_client_conn). */
  clientCount(): number;
}

/** The client connection, as the admin console sees it. */
export interface ConsoleIO {
  /** Writes protocol bytes to the client. */
  write(buf: Buffer): boolean;
  /** Ends the connection; `reason` is for the log. */
  close(reason: string): void;
}

export interface ConsoleLogin {
  readonly user: string;
  /** True for admin_users; false for stats_users, who may only SHOW. */
  readonly admin: boolean;
  /** The BackendKeyData the client was given. */
  readonly processId: number;
  readonly secretKey: number;
}

/** An open console session, as the client connection drives it. */
export interface ConsoleLink {
  onData(buf: Buffer): void;
  onClose(): void;
}

/** What a CancelRequest needs from a client session. */
export interface CancelTarget {
  readonly secretKey: number;
  cancel(): void;
}
