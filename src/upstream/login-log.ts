// Server logins in the log, once per change of state: while a database's logins to one server keep
// failing (refused during a restart, read-only behind a read-write gate, a node still in recovery
// during a failover, a router holding the connection), each kind of failure is logged the first
// time only and then counted; the line that ends the episode (a login to the database passes)
// carries the counts and how long it lasted. With hedged logins every ~100 ms, one line per attempt
// would bury everything else.

import type { Logger } from 'pino';

interface Episode {
  readonly host: string;
  readonly port: number;
  readonly since: number;
  /** Count per kind of failure, in the order first seen. */
  readonly counts: Map<string, number>;
}

export class LoginLog {
  /** Open episodes per database, one per server (a host list is walked on every attempt). */
  private readonly episodes = new Map<string, Map<string, Episode>>();

  constructor(private readonly logger: () => Logger) {}

  /** A login for `database` was refused by its write gate. */
  rejected(database: string, pool: string, host: string, port: number, verdict: string, gate: string, now = Date.now()): void {
    if (!this.count(database, host, port, `write gate: ${verdict}`, now)) return;
    const hint = verdict === 'read-only' && (gate === 'read-write' || gate === 'primary') ? `; if "${database}" is meant for replicas, set target_session_attrs=any, read-only or prefer-standby` : '';
    this.logger().warn(
      { event: 'write-gate', database, pool, host, port, verdict, targetSessionAttrs: gate },
      `write gate: server rejected (${verdict}); clients wait until a server passes or query_wait_timeout${hint}. Repeats are counted, not logged`,
    );
  }

  /** A login for `database` failed before the gate (no connection, an error from the server, a deadline). */
  failed(database: string, pool: string, host: string, port: number, err: Error, now = Date.now()): void {
    // The same failure again, whatever the numbers in its text (ports, milliseconds).
    if (!this.count(database, host, port, err.message.replace(/\d+/g, '#'), now)) return;
    this.logger().warn({ event: 'server-login-failed', database, pool, host, port, err: err.message }, 'server login failed; retrying while clients wait. Repeats are counted, not logged');
  }

  /** A login for `database` passed: end its episodes, if any. */
  passed(database: string, host: string, port: number, now = Date.now()): void {
    const open = this.episodes.get(database);
    if (open === undefined) return;
    this.episodes.delete(database);
    for (const e of open.values()) {
      const total = [...e.counts.values()].reduce((a, b) => a + b, 0);
      const kinds = [...e.counts].map(([what, n]) => `${n}× ${what}`).join('; ');
      this.logger().info(
        { event: 'server-login-recovered', database, host: e.host, port: e.port, rejections: total, failures: Object.fromEntries(e.counts), forMs: now - e.since },
        `${total} failed login(s) at ${e.host}:${e.port} over ${now - e.since} ms (${kinds}); ${host}:${port} passes`,
      );
    }
  }

  /** Counts one failure; true when it is the first of its kind in the server's episode (log it). */
  private count(database: string, host: string, port: number, what: string, now: number): boolean {
    let open = this.episodes.get(database);
    if (open === undefined) {
      open = new Map();
      this.episodes.set(database, open);
    }
    const server = `${host}:${port}`;
    let e = open.get(server);
    if (e === undefined) {
      e = { host, port, since: now, counts: new Map() };
      open.set(server, e);
    }
    const n = e.counts.get(what) ?? 0;
    e.counts.set(what, n + 1);
    return n === 0;
  }
}
