// The Patroni test bed shared by the scenario test, the repeat measurements, the soak and the
// demo: etcd and a 2-node Patroni cluster wired with the shipped hook, a HAProxy playing the
// primary Service (the runbook topology), and two pgrelay instances behind one hook configuration:
// "direct" names both nodes (host list + patroni_api), "service" names only the HAProxy. Each
// instance carries its own pgbench during a scenario, and every scenario measures both.

import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import pg from 'pg';
import { pgbench, type PgbenchResult } from '../harness/pg-cluster.js';
import { startPatroniCluster, type PatroniCluster } from '../harness/patroni.js';
import { startHaproxy, type Haproxy } from '../harness/patroni-haproxy.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { ServiceProxy } from '../harness/service-proxy.js';
import { firstCommitAfter, longestStall, readPgbenchLogs, type CommitTimeline } from './pgbench-log.js';
import type { Settings } from '../../src/config/types.js';

const HOOK = resolve('deploy/patroni/pgrelay-hook');

export type Topology = 'direct' | 'service';

export interface Instance {
  readonly topology: Topology;
  readonly relay: Relay;
  /** pgbench's connection arguments for this instance. */
  readonly conn: string[];
  /** What the hook is given for this instance: its admin URL, through a relay the test can cut. */
  readonly adminGate: ServiceProxy;
}

export interface Bed {
  readonly cluster: PatroniCluster;
  readonly haproxy: Haproxy;
  readonly instances: readonly Instance[];
  readonly work: string;
  destroy(): Promise<void>;
}

/** pgrelay's settings in the bed: the defaults for every deadline and the hedge interval. */
const RELAY_SETTINGS: Partial<Settings> = { defaultPoolSize: 10, maxClientConn: 200, queryWaitTimeoutMs: 60_000, pauseMaxDurationMs: 30_000 };

export async function startBed(opts: { topologies?: readonly Topology[] } = {}): Promise<Bed> {
  const topologies = opts.topologies ?? ['direct', 'service'];
  const work = mkdtempSync(join(tmpdir(), 'pgrelay-patroni-'));
  chmodSync(work, 0o755);
  const envFile = join(work, 'hook.env');
  writeFileSync(envFile, '');
  chmodSync(envFile, 0o644);
  // before_stop on Debian's Patroni 3.0.2 is fired by the harness's launcher (see patroni-launcher.py).
  const cluster = await startPatroniCluster({
    nodes: 2,
    hook: (n) => `/bin/sh ${HOOK} --env-file ${envFile} --node 127.0.0.1:${n.pgPort} --pg "host=${n.socketDir} port=${n.pgPort} user=postgres dbname=postgres" --log ${join(n.dir, 'hook.log')}`,
  });
  const haproxy = await startHaproxy(cluster);
  const instances: Instance[] = [];
  for (const topology of topologies) {
    const hosts = topology === 'direct' ? cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.pgPort })) : [{ host: haproxy.host, port: haproxy.port }];
    const relay = await startRelay(
      { host: hosts[0]!.host, port: hosts[0]!.port },
      {
        admin: true,
        settings: RELAY_SETTINGS,
        databases: {
          '*': {
            hosts,
            ...(topology === 'direct' ? { patroniApi: cluster.nodes.map((n) => n.restUrl) } : {}),
            user: cluster.superuser.user,
            password: cluster.superuser.password,
          },
        },
      },
    );
    const url = new URL(relay.adminUrl!);
    const adminGate = await ServiceProxy.start({ host: url.hostname, port: Number(url.port) });
    instances.push({ topology, relay, conn: ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'], adminGate });
  }
  // One hook configuration for every instance: the hook calls all of them in parallel.
  writeFileSync(envFile, `PGRELAY_ADMIN="${instances.map((i) => `http://127.0.0.1:${i.adminGate.port}`).join(' ')}"\nPGRELAY_TIMEOUT=8\n`);
  const init = await pgbench([...instances[0]!.conn, '-i', '-s', '1', '-q', 'postgres']);
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  await cluster.psql((await cluster.waitForLeader()).name, 'create table if not exists pgrelay_writes (id bigserial primary key, thread int, at timestamptz default now())');
  return {
    cluster,
    haproxy,
    instances,
    work,
    destroy: async () => {
      const dump = process.env['PGRELAY_PATRONI_DUMP'];
      if (dump !== undefined) {
        for (const n of cluster.nodes) for (const f of [n.logFile, join(n.dir, 'hook.log')]) if (existsSync(f)) copyFileSync(f, join(dump, `${n.name}-${f.split('/').pop()}`));
        copyFileSync(haproxy.logFile, join(dump, 'haproxy.log'));
      }
      for (const i of instances) {
        await i.relay.stop();
        await i.adminGate.stop();
      }
      await haproxy.stop();
      await cluster.destroy();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Watching the cluster: is there a primary (a node writable AND holding the leader lock), and
// does the Service route a login to a writable primary? Samples every ~25 ms.

interface Sample {
  readonly at: number;
  readonly up: boolean;
}

function restPrimary(url: string): Promise<boolean> {
  return new Promise((done) => {
    const req = http.get(`${url}/primary`, { agent: false, timeout: 300, headers: { connection: 'close' } }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
  });
}

async function writable(host: string, port: number, user: string, password: string): Promise<boolean> {
  const c = new pg.Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 500 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query('select pg_is_in_recovery() as rec');
    return r.rows[0].rec === false;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface Watch {
  /** Per node: accepts a write (a login, not in recovery), and holds the leader lock (GET /primary 200), sampled apart. */
  readonly nodes: Map<string, { writable: Sample[]; leader: Sample[] }>;
  /** A login through the Service lands on a writable server. */
  readonly service: Sample[];
}

export function watchCluster(bed: Pick<Bed, 'cluster' | 'haproxy'>): { stop(): Promise<Watch> } {
  const { cluster, haproxy } = bed;
  const { user, password } = cluster.superuser;
  const result: Watch = { nodes: new Map(), service: [] };
  let running = true;
  // A probe starts about every 25 ms whether or not the earlier ones have answered (a login the Service
  // holds while it retries a stopped node would otherwise blind the watch for its whole timeout);
  // each sample is stamped when its answer arrives, and kept in that order.
  const loop = async (samples: Sample[], probe: () => Promise<boolean>): Promise<void> => {
    const inFlight = new Set<Promise<void>>();
    while (running) {
      if (inFlight.size < 40) {
        const p: Promise<void> = probe().then((up) => {
          samples.push({ at: Date.now(), up });
          inFlight.delete(p);
        });
        inFlight.add(p);
      }
      // Jittered: a router that balances connections in turn must not fall into step with pgrelay.
      await new Promise((r) => setTimeout(r, 15 + Math.random() * 20));
    }
    await Promise.all(inFlight);
    samples.sort((a, b) => a.at - b.at);
  };
  // Separate loops for writability and the leader lock, so that a slow answer of one (Patroni's
  // REST API is slow while it promotes) does not delay the samples of the other.
  const loops = cluster.nodes.flatMap((n) => {
    const samples = { writable: [] as Sample[], leader: [] as Sample[] };
    result.nodes.set(n.name, samples);
    return [loop(samples.writable, () => writable('127.0.0.1', n.pgPort, user, password)), loop(samples.leader, () => restPrimary(n.restUrl))];
  });
  loops.push(loop(result.service, () => writable(haproxy.host, haproxy.port, user, password)));
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

/** The longest stretch in [from, to] with no sample up: from the last sample up before it to the first up after it. */
export function longestDown(samples: readonly Sample[], from: number, to: number): { start: number; end: number; ms: number } | null {
  let lastUp: number | null = null;
  let best: { start: number; end: number; ms: number } | null = null;
  let downSeen = false;
  for (const s of samples) {
    if (s.at > to) break;
    if (s.up) {
      if (downSeen && lastUp !== null && s.at >= from) {
        const ms = s.at - lastUp;
        if (best === null || ms > best.ms) best = { start: lastUp, end: s.at, ms };
      }
      lastUp = s.at;
      downSeen = false;
    } else if (s.at >= from || lastUp !== null) {
      downSeen = true;
    }
  }
  return best;
}

/** "Some node is primary" (its latest write sample and its latest leader sample both up), at every sample, in time order. */
export function anyPrimary(watch: Watch): Sample[] {
  const events: { at: number; key: string; up: boolean }[] = [];
  for (const [node, samples] of watch.nodes) {
    for (const s of samples.writable) events.push({ at: s.at, key: `${node} writable`, up: s.up });
    for (const s of samples.leader) events.push({ at: s.at, key: `${node} leader`, up: s.up });
  }
  events.sort((a, b) => a.at - b.at);
  const state = new Map<string, boolean>();
  return events.map((e) => {
    state.set(e.key, e.up);
    return { at: e.at, up: [...watch.nodes.keys()].some((n) => state.get(`${n} writable`) === true && state.get(`${n} leader`) === true) };
  });
}

// ---------------------------------------------------------------------------------------------
// The write client: 8 connections through one instance, each committing a one-row insert every
// ~40 ms. Unlike pgbench, whose client aborts at the first error, it reconnects and goes on, so the
// stall and pgrelay's share stay measurable after an unplanned loss.

export interface WriterResult {
  readonly commits: number[];
  readonly failures: number[];
}

export function startWriter(inst: Instance, threads = 8): { stop(): Promise<WriterResult> } {
  const result = { commits: [] as number[], failures: [] as number[] };
  let running = true;
  const loops = Array.from({ length: threads }, async (_, i) => {
    let c: pg.Client | null = null;
    while (running) {
      try {
        if (c === null) {
          const fresh = new pg.Client({ connectionString: inst.relay.url() });
          fresh.on('error', () => undefined);
          c = fresh;
          await fresh.connect();
        }
        await c.query('insert into pgrelay_writes (thread) values ($1)', [i]);
        result.commits.push(Date.now());
      } catch {
        result.failures.push(Date.now());
        const broken = c;
        c = null;
        void broken?.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    await c?.end().catch(() => undefined);
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

export interface Row {
  readonly scenario: string;
  readonly topology: Topology;
  readonly transactions: number;
  /** Failed transactions (pgbench's log and the write client) plus clients pgbench aborted on an error. */
  readonly failed: number;
  readonly stallMs: number;
  /** Patroni's own no-primary window (no node both writable and holding the leader lock); null when there was none. */
  readonly windowMs: number | null;
  /**
   * pgrelay's share: from the moment a login could reach a writable primary (direct: the new
   * primary is writable and holds the lock; service: the Service first routes a login to a
   * writable primary) to the first commit through this instance. null when there was no gap.
   */
  readonly shareMs: number | null;
  readonly pgbenchExit: number;
  /** A fresh pgbench through this instance after the event worked. */
  readonly servesAfter: boolean;
  readonly notes: string;
}

export interface ScenarioSpec {
  readonly name: string;
  /** The event; resolves once the cluster has a primary again (or the event is done). */
  readonly action: (bed: Bed) => Promise<void>;
  /** pgbench's -T: warm-up (2 s) + the event + a tail. */
  readonly benchSeconds: number;
  readonly after?: (bed: Bed) => Promise<void>;
}

const RATE = 400; // tps per instance: leaves CPU for Patroni, PostgreSQL and both pgrelays on 2 cores

export async function runScenario(bed: Bed, spec: ScenarioSpec): Promise<Row[]> {
  await bed.cluster.waitHealthy(90_000);
  const dir = mkdtempSync(join(bed.work, 'run-'));
  const benches = bed.instances.map((inst) =>
    // -N (simple update: no pgbench_branches/tellers updates): with the default script all clients
    // queue on the one branch row, and a PAUSE's drain then waits on that lock convoy (seen: 2.3 s on
    // a busy 2-core box), which measures lock waits, not the switchover. -n: no VACUUM and TRUNCATE of
    // pgbench's tables at start; both instances' pgbench start together, and one's startup VACUUM or
    // TRUNCATE then waited on the other's (or autovacuum's) locks on a server a PAUSE must drain
    // (seen: a 2.4 s drain before a failover, with this run's pgbench not yet past its start).
    pgbench([...inst.conn, '-n', '-N', '-c', '8', '-j', '2', '-R', String(RATE), '-T', String(spec.benchSeconds), '-l', '--log-prefix', join(dir, inst.topology), 'postgres'], {}, { timeoutMs: (spec.benchSeconds + 120) * 1000 }),
  );
  const writers = bed.instances.map((inst) => startWriter(inst));
  await new Promise((r) => setTimeout(r, 2000));
  const watcher = watchCluster(bed);
  const t0 = Date.now();
  await spec.action(bed);
  const results: PgbenchResult[] = await Promise.all(benches);
  const written = await Promise.all(writers.map((w) => w.stop()));
  const watch = await watcher.stop();
  const end = Date.now();
  await spec.after?.(bed);
  // PGRELAY_PATRONI_DUMP=DIR keeps what each row was computed from, for a closer look.
  const dump = process.env['PGRELAY_PATRONI_DUMP'];
  if (dump !== undefined) {
    const name = `${spec.name.replace(/\W+/g, '-')}-${t0}`;
    writeFileSync(join(dump, `${name}.json`), JSON.stringify({ scenario: spec.name, t0, end, watch: { nodes: Object.fromEntries(watch.nodes), service: watch.service }, writers: written }));
    for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(dump, `${name}.${f}`));
  }
  const primaryGap = longestDown(anyPrimary(watch), t0, end);
  const serviceGap = longestDown(watch.service, t0, end);
  const checks = await Promise.all(bed.instances.map((inst) => pgbench([...inst.conn, '-n', '-c', '4', '-j', '2', '-T', '2', 'postgres'], {}, { timeoutMs: 60_000 })));
  return bed.instances.map((inst, i) => {
    const r = results[i]!;
    const bench: CommitTimeline = readPgbenchLogs(dir, inst.topology);
    const w = written[i]!;
    // pgbench's commits and the write client's, together: the write client covers the time after pgbench's clients aborted.
    const timeline: CommitTimeline = { commits: [...bench.commits, ...w.commits].sort((a, b) => a - b), failed: bench.failed + w.failures.length };
    const stall = longestStall(timeline, t0, end);
    const aborted = (r.stderr.match(/client \d+ (script \d+ )?aborted/g) ?? []).length;
    const upAt = inst.topology === 'direct' ? primaryGap?.end : serviceGap?.end;
    const first = upAt === undefined ? null : firstCommitAfter(timeline, upAt);
    return {
      scenario: spec.name,
      topology: inst.topology,
      transactions: timeline.commits.length,
      failed: timeline.failed + aborted,
      stallMs: Math.round(stall.ms),
      windowMs: primaryGap === null ? null : Math.round(primaryGap.ms),
      shareMs: first === null || upAt === undefined ? null : Math.round(first - upAt),
      pgbenchExit: r.code,
      servesAfter: checks[i]!.code === 0,
      notes: r.code !== 0 || aborted > 0 ? r.stderr.split('\n').filter((l) => /abort|error|FATAL/i.test(l)).slice(0, 3).join(' | ') : '',
    };
  });
}

/** Every scenario of the matrix. `planned` ones must cost zero failed transactions. */
export function scenarios(): (ScenarioSpec & { planned: boolean })[] {
  const replicaOf = async (bed: Bed) => {
    const leader = await bed.cluster.waitForLeader();
    return bed.cluster.nodes.find((n) => n.name !== leader.name)!;
  };
  let stopped: string | null = null;
  /** Brings back the Patroni a scenario stopped or killed. */
  const startStoppedPatroni = async (bed: Bed): Promise<void> => {
    if (stopped !== null) await bed.cluster.startPatroni(stopped);
    stopped = null;
  };
  return [
    { name: 'switchover', planned: true, benchSeconds: 9, action: async (bed) => void (await bed.cluster.switchover()) },
    { name: 'restart replica', planned: true, benchSeconds: 8, action: async (bed) => bed.cluster.restart((await replicaOf(bed)).name) },
    { name: 'restart primary', planned: true, benchSeconds: 9, action: async (bed) => bed.cluster.restart((await bed.cluster.waitForLeader()).name) },
    { name: 'failover --candidate', planned: true, benchSeconds: 9, action: async (bed) => void (await bed.cluster.failover((await replicaOf(bed)).name)) },
    {
      name: "SIGTERM primary's Patroni",
      planned: true,
      benchSeconds: 10,
      action: async (bed) => {
        const leader = await bed.cluster.waitForLeader();
        stopped = leader.name;
        await bed.cluster.sigtermPatroni(leader.name);
        await bed.cluster.waitForLeader(60_000);
      },
      after: startStoppedPatroni,
    },
    {
      name: 'kill -9 postmaster',
      planned: false,
      benchSeconds: 10,
      action: async (bed) => {
        const leader = await bed.cluster.waitForLeader();
        bed.cluster.kill9Postmaster(leader.name);
        await new Promise((r) => setTimeout(r, 1000));
        await bed.cluster.waitForLeader(60_000);
      },
    },
    {
      name: "kill -9 primary's Patroni",
      planned: false,
      benchSeconds: 32,
      action: async (bed) => {
        const leader = await bed.cluster.waitForLeader();
        stopped = leader.name;
        await bed.cluster.kill9Patroni(leader.name);
        // The leader key expires after ttl (20 s); the other node takes over then.
        await new Promise((r) => setTimeout(r, 2000));
      },
      after: startStoppedPatroni,
    },
  ];
}

/** A switchover during which the "service" instance's admin endpoint refuses connections (the hook cannot reach it). */
export function unreachableSwitchover(): ScenarioSpec {
  return {
    name: 'switchover, one instance unreachable by before_stop',
    benchSeconds: 9,
    action: async (bed) => {
      const gate = bed.instances.find((i) => i.topology === 'service')!.adminGate;
      const route = gate.route;
      gate.routeTo('refuse');
      try {
        await bed.cluster.switchover();
      } finally {
        gate.routeTo(route);
      }
    },
  };
}

/** Markdown table of rows. */
export function table(rows: readonly Row[]): string {
  const lines = [
    '| topology | scenario | transactions | failed | longest stall (ms) | no-primary window (ms) | pgrelay share (ms) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) lines.push(`| ${r.topology} | ${r.scenario} | ${r.transactions} | ${r.failed} | ${r.stallMs} | ${r.windowMs ?? '-'} | ${r.shareMs ?? '-'} |`);
  return lines.join('\n');
}
