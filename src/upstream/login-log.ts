// Server logins in the log, once per change of state: while a database's logins keep failing the
// same way at the same server (refused during a restart, read-only behind a read-write gate, a
// node still in recovery during a failover), only the first is logged; the line that ends the
// episode (a login passes, or the failure changes) carries how many there were and for how long.
// With hedged logins every ~100 ms, one line per attempt would bury everything else.

import type { Logger } from 'pino';

interface Episode {
  readonly host: string;
  readonly port: number;
  readonly what: string;
  readonly since: number;
  count: number;
}

export class LoginLog {
  /** Open episodes per database, one per server (a host list is walked on every attempt). */
  private readonly episodes = new Map<string, Map<string, Episode>>();

  constructor(private readonly logger: () => Logger) {}

  /** A login for `database` was refused by its write gate. */
  rejected(database: string, pool: string, host: string, port: number, verdict: string, gate: string, now = Date.now()): void {
    if (!this.open(database, host, port, `write gate: ${verdict}`, now)) return;
    const hint = verdict === 'read-only' && (gate === 'read-write' || gate === 'primary') ? `; if "${database}" is meant for replicas, set target_session_attrs=any, read-only or prefer-standby` : '';
    this.logger().warn(
      { event: 'write-gate', database, pool, host, port, verdict, targetSessionAttrs: gate },
      `write gate: server rejected (${verdict}); clients wait until a server passes or query_wait_timeout${hint}. Repeats are counted, not logged`,
    );
  }

  /** A login for `database` failed before the gate (no connection, an error from the server, a deadline). */
  failed(database: string, pool: string, host: string, port: number, err: Error, now = Date.now()): void {
    // The same failure again, whatever the numbers in its text (ports, milliseconds).
    if (!this.open(database, host, port, err.message.replace(/\d+/g, '#'), now)) return;
    this.logger().warn({ event: 'server-login-failed', database, pool, host, port, err: err.message }, 'server login failed; retrying while clients wait. Repeats are counted, not logged');
  }

  /** A login for `database` passed: end its episodes, if any. */
  passed(database: string, host: string, port: number, now = Date.now()): void {
    const open = this.episodes.get(database);
    if (open === undefined) return;
    this.episodes.delete(database);
    for (const e of open.values()) this.close(database, e, `${host}:${port} passes`, now);
  }

  /** Counts a repeat (false) or starts a new episode for that server, closing its previous one (true: log it). */
  private open(database: string, host: string, port: number, what: string, now: number): boolean {
    const server = `${host}:${port}`;
    let open = this.episodes.get(database);
    if (open === undefined) {
      open = new Map();
      this.episodes.set(database, open);
    }
    const e = open.get(server);
    if (e !== undefined && e.what === what) {
      e.count++;
      return false;
    }
    if (e !== undefined) this.close(database, e, `now ${what}`, now);
    open.set(server, { host, port, what, since: now, count: 1 });
    return true;
  }

  private close(database: string, e: Episode, outcome: string, now: number): void {
    const event = e.what.startsWith('write gate') ? 'write-gate' : 'server-login-failed';
    this.logger().info(
      { event, database, host: e.host, port: e.port, rejections: e.count, forMs: now - e.since },
      `${e.what.startsWith('write gate') ? e.what : 'server login failed'}: ${e.count} time(s) at ${e.host}:${e.port} over ${now - e.since} ms; ${outcome}`,
    );
  }
}
