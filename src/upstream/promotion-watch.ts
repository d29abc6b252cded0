// Finding the new primary while a pause for the primary is in force, by whichever comes first:
// pgrelay's own probes or the hook's hint. Every probe is a hedged login (one every
// server_login_hedge_interval, at most server_login_parallel in flight, each with its own
// deadline), so no single slow attempt can delay the resume.
//
// - The paused node (a before_stop PAUSE names it) is probed on its own address until it is seen
//   not serving: refused, shutting down, read-only. (before_stop runs before the stop: until then
//   the node is still the writable primary, and a resume then would send clients to it again.)
// - A hinted node ("this node may be primary now") is confirmed on its own address: writable, and
//   holding the leader lock when its Patroni REST API is configured.
// - Once either has happened, each group of held databases (one configured address: a host list or
//   a Service) is released as soon as a login THROUGH that address passes the database's write
//   gate; that first server goes to the pool. Clients always go through the configured address.

import type { Logger } from 'pino';
import type { PauseController } from '../pool/pause.js';
import type { PoolEntry, PoolRegistry } from '../pool/registry.js';
import type { HostPort } from '../config/types.js';
import { Disconnect } from '../errors.js';
import type { UpstreamConnector } from './connector.js';
import { groupKey, type NodeScope } from './node-scope.js';
import { isNode, parseNode, type Gate } from './roles.js';
import type { ServerConn } from '../proxy/server-conn.js';

export interface WatchDeps {
  readonly registry: PoolRegistry;
  readonly connector: UpstreamConnector;
  readonly pause: PauseController;
  readonly logger: Logger;
  settings(): { readonly serverLoginHedgeMs: number; readonly serverLoginParallel: number };
}

/**
 * One kind of login, started again and again: about one per interval, a bounded number in flight.
 * The interval is jittered (0.5 to 1.5 times): a router that balances new connections in turn over
 * the old and the new node must not fall into step with another poller (a second pgrelay, a health
 * check) so that every login of ours lands on the old one.
 */
class Hedged {
  inFlight = 0;
  lastAt = 0;
  tries = 0;
  private jitter = 1;
  /** `now`: a new login is due (`soon`: something changed, do not wait for the interval). */
  due(now: number, intervalMs: number, parallel: number, soon = false): boolean {
    return (soon || now - this.lastAt >= Math.max(intervalMs * this.jitter, 1)) && this.inFlight < parallel;
  }
  start<T>(now: number, work: Promise<T>, done: (result: T) => void): void {
    this.inFlight++;
    this.lastAt = now;
    this.tries++;
    this.jitter = 0.5 + Math.random();
    void work.then((r) => {
      this.inFlight--;
      done(r);
    });
  }
}

interface Hint {
  readonly node: string;
  readonly at: number;
  readonly logins: Hedged;
  confirmed: boolean;
  /** It answered, but not as a writable primary (yet): no grace then. */
  answered: boolean;
}

interface Group {
  readonly key: string;
  readonly entry: PoolEntry;
  readonly databases: Set<string>;
}

/** A hinted node unconfirmed this long (no answer on its own address) is trusted as far as the login through the configured address goes. */
const HINT_UNREACHABLE_GRACE_MS = 1000;

export class PromotionWatch {
  private readonly started = Date.now();
  private nodeDown = false;
  private readonly nodeLogins = new Hedged();
  private readonly hints = new Map<string, Hint>();
  private readonly groupLogins = new Map<string, Hedged>();
  private readonly released = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  /**
   * `scope`: the node-tied pause being watched (null: a hint for some other pause, global or per
   * database; then only hints are confirmed).
   */
  constructor(
    private readonly deps: WatchDeps,
    readonly scope: NodeScope | null,
  ) {}

  get done(): boolean {
    return this.stopped;
  }

  start(): void {
    this.tick();
  }

  /** The hook says `node` may be primary now. */
  hint(node: string): void {
    if (!this.hints.has(node)) {
      this.hints.set(node, { node, at: Date.now(), logins: new Hedged(), confirmed: false, answered: false });
      // A host list that names the hinted node tries it first.
      for (const g of this.heldGroups().values()) {
        const h = g.entry.db.hosts.find((x) => isNode(x, node));
        if (h !== undefined) for (const db of g.databases) this.deps.connector.upstreams.set(db, { host: h.host, port: h.port, writable: null, checkedAt: Date.now() });
      }
    }
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The paused pools this watch may release, by configured address. */
  private heldGroups(): Map<string, Group> {
    const groups = new Map<string, Group>();
    for (const entry of this.deps.registry.all()) {
      const database = entry.pool.database;
      if (!entry.pool.isPaused) continue;
      const held = this.scope !== null ? this.scope.includes(database) : this.deps.connector.followsPrimary(database, entry.db);
      if (!held) continue;
      const key = groupKey(entry.db);
      if (this.released.has(key)) continue;
      const g = groups.get(key);
      if (g === undefined) groups.set(key, { key, entry, databases: new Set([database]) });
      else g.databases.add(database);
    }
    return groups;
  }

  private pauseInForce(): boolean {
    const p = this.deps.pause;
    if (this.scope !== null) return p.globalState !== null;
    return p.globalState !== null || p.pausedDatabases().length > 0;
  }

  /** `soon`: the state changed (the node stopped, a hint was confirmed): start the next logins now. */
  private tick(soon = false): void {
    if (this.stopped) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.pauseInForce()) {
      this.stop();
      return;
    }
    // server_login_hedge_interval = 0 (no hedging): one login at a time, every 100 ms.
    const s = this.deps.settings();
    const interval = s.serverLoginHedgeMs > 0 ? s.serverLoginHedgeMs : 100;
    const parallel = s.serverLoginHedgeMs > 0 ? s.serverLoginParallel : 1;
    const now = Date.now();
    const groups = this.heldGroups();
    const anyEntry = groups.values().next().value?.entry;
    if (this.scope !== null && !this.nodeDown && anyEntry !== undefined && this.nodeLogins.due(now, interval, parallel)) this.probeNode(anyEntry, now);
    for (const h of this.hints.values()) {
      if (h.confirmed || anyEntry === undefined || !h.logins.due(now, interval, parallel, soon)) continue;
      // A host list that names the hinted node: a login to it with that database's own gate (and
      // leader check) both confirms the hint and, passing, releases the group at once.
      const named = [...groups.values()].find((g) => g.entry.db.hosts.some((x) => isNode(x, h.node)));
      if (named !== undefined) this.loginToHinted(h, named, now);
      else this.probeHint(h, anyEntry, now);
    }
    // Once a new primary may be there, every client of the held databases waits on the next login
    // through their address: one stream per address (not per pool) runs at twice the pace. Behind a
    // Service, four times, with four times the parallel bound: the Service may still send half of
    // the logins to the old node (it balances over both until its checks mark the old one down, and
    // Patroni's /primary stays 200 for a second after PostgreSQL stopped), where they hang until
    // server_connect_timeout; the bound must not throttle the pace while they do. Behind a
    // Service the logins also start in pairs: a router that balances in turn hands two
    // connections opened together to two different nodes, whereas single logins can fall into
    // step with another client's (a health check, a second pgrelay) and all land on the old node
    // (seen: 140 ms of misses after the Service already routed to the new primary).
    const releasing = this.ready(now);
    if (releasing) {
      for (const g of groups.values()) {
        let logins = this.groupLogins.get(g.key);
        if (logins === undefined) this.groupLogins.set(g.key, (logins = new Hedged()));
        const service = g.entry.db.hosts.length === 1;
        const bound = service ? parallel * 4 : parallel;
        if (logins.due(now, interval / (service ? 4 : 2), bound, soon)) {
          this.loginThrough(g, logins, now);
          if (service && logins.inFlight < bound) this.loginThrough(g, logins, now);
        }
      }
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.tick();
    }, Math.max((releasing ? interval / 4 : interval) / 2, 10));
    this.timer.unref();
  }

  /** Whether a new primary may be there: the paused node stopped serving, or a hinted node is confirmed (or unanswering past the grace). */
  private ready(now: number): boolean {
    if (this.nodeDown) return true;
    for (const h of this.hints.values()) if (h.confirmed || (!h.answered && now - h.at >= HINT_UNREACHABLE_GRACE_MS)) return true;
    return false;
  }

  /** Is the paused node still serving as primary? Any sign it is not (refused, shutting down, read-only) ends phase one. */
  private probeNode(entry: PoolEntry, now: number): void {
    const node = this.scope!.node;
    const address = parseNode(node, entry.db.hosts[0]!.port);
    this.nodeLogins.start(now, this.deps.connector.attempt(entry, address, { gate: 'read-write', leaderApi: null }), (outcome) => {
      if (outcome.kind === 'passed') outcome.server.close(Disconnect.Verification);
      const down = outcome.kind === 'refused' ? outcome.writable === false : outcome.kind === 'failed' && outcome.down;
      if (down && !this.nodeDown && !this.stopped) {
        this.nodeDown = true;
        this.deps.logger.info({ event: 'primary-stopped', node, afterMs: Date.now() - this.started, seen: outcome.kind === 'failed' ? outcome.error.message : 'read-only' }, 'paused node no longer serves as primary; looking for the new one');
        this.tick(true);
      }
    });
  }

  /** The hinted node on its own address: writable, and the Patroni leader when its REST API is known. */
  private probeHint(h: Hint, entry: PoolEntry, now: number): void {
    const address = parseNode(h.node, entry.db.hosts[0]!.port);
    h.logins.start(now, this.deps.connector.attempt(entry, address, { gate: 'read-write', leaderApi: this.patroniApiOf(address) }), (outcome) => {
      if (outcome.kind === 'passed') outcome.server.close(Disconnect.Verification);
      if (outcome.kind === 'refused') h.answered = true;
      if (outcome.kind === 'passed' && !h.confirmed && !this.stopped) {
        h.confirmed = true;
        this.deps.logger.info({ event: 'hint-confirmed', node: h.node, verifyMs: Date.now() - h.at }, 'hinted node is a writable primary');
        this.tick(true);
      }
    });
  }

  /** The hinted node is one of the group's hosts: log in to it as the group's pools would; passing releases the group. */
  private loginToHinted(h: Hint, g: Group, now: number): void {
    const host = g.entry.db.hosts.find((x) => isNode(x, h.node))!;
    const gate = this.gateFor(g);
    h.logins.start(now, this.deps.connector.attempt(g.entry, host, gate === undefined ? {} : { gate }), (outcome) => {
      if (outcome.kind === 'refused') h.answered = true;
      if (outcome.kind !== 'passed') return;
      if (this.stopped || this.released.has(g.key)) {
        outcome.server.close(Disconnect.Verification);
        return;
      }
      if (!h.confirmed) {
        h.confirmed = true;
        this.deps.logger.info({ event: 'hint-confirmed', node: h.node, verifyMs: Date.now() - h.at }, 'hinted node is a writable primary');
      }
      this.release(g, outcome.server, 'hint');
      this.tick(true);
    });
  }

  /**
   * The gate a releasing login must pass: the database's own when it asks for a writable server;
   * else (auto before its first login, any) a writable one, since the pause was for the primary.
   */
  private gateFor(g: Group): Gate | undefined {
    const gate = this.deps.connector.gateOf(g.entry.pool.database, g.entry.db);
    return gate === 'read-write' || gate === 'primary' ? undefined : 'read-write';
  }

  /** The Patroni REST URL configured for this address in any database, or null. */
  private patroniApiOf(address: HostPort): string | null {
    for (const db of this.deps.registry.currentConfig.databases.values()) {
      const i = db.hosts.findIndex((x) => x.host === address.host && x.port === address.port);
      if (i >= 0 && db.patroniApi[i] !== undefined) return db.patroniApi[i]!;
    }
    return null;
  }

  /** A login through the group's configured address, judged by its gate: the first that passes releases the group. */
  private loginThrough(g: Group, logins: Hedged, now: number): void {
    const attempt = this.deps.connector.connect(g.entry, this.gateFor(g)).then(
      (server) => server,
      () => null,
    );
    logins.start(now, attempt, (server: ServerConn | null) => {
      if (server === null) return;
      if (this.stopped || this.released.has(g.key)) {
        server.close(Disconnect.Verification);
        return;
      }
      this.release(g, server, this.nodeDown ? 'probe' : 'hint');
    });
  }

  private release(g: Group, server: ServerConn, how: 'probe' | 'hint'): void {
    this.released.add(g.key);
    const pause = this.deps.pause;
    const state = pause.globalState;
    this.deps.logger.info(
      { event: 'primary-confirmed', node: this.scope?.node ?? [...this.hints.keys()].join(','), via: `${server.address.host}:${server.address.port}`, databases: [...g.databases], how, verifyMs: Date.now() - this.started },
      'new primary confirmed through the configured address; resuming',
    );
    if (this.scope !== null) {
      this.scope.release(g.key);
      pause.reapply();
      // No pool left under the global pause (this scope's or another node's): end it, logged and
      // counted as a resume.
      const stillHeld = [...this.deps.registry.all()].some((e) => e.pool.isPaused && !pause.pausedDatabases().includes(e.pool.database));
      if (!stillHeld && pause.globalState !== null) pause.resume(null);
    } else {
      if (state !== null && this.heldGroups().size === 0) pause.resume(null);
      for (const db of g.databases) if (pause.pausedDatabases().includes(db)) pause.resume(db);
    }
    // The login that proved the address serves the first waiting client.
    if (!g.entry.pool.adopt(this.deps.connector.adopt(g.entry, server))) server.close(Disconnect.Verification);
    if (!this.pauseInForce() || this.heldGroups().size === 0) this.stop();
  }
}
