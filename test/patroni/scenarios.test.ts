// pgrelay in front of a real Patroni cluster (etcd + 2 nodes, Debian's packages), wired with the
// shipped hook, under pgbench -c 8 -j 2 for each scenario's whole duration. Planned operations
// must cost zero failed transactions; after kill -9 only the transactions in flight may fail, and
// everything recovers with no manual action. Each scenario records transactions, failures, the
// longest client-visible stall and pgrelay's share of it (new primary writable -> first commit).

import t from 'tap';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { pgbench } from '../harness/pg-cluster.js';
import { startPatroniCluster, type PatroniCluster, type PatroniNodeInfo } from '../harness/patroni.js';
import { startRelay, type Relay } from '../harness/relay.js';
import { firstCommitAfter, longestStall, readPgbenchLogs } from './pgbench-log.js';

const HOOK = resolve('deploy/patroni/pgrelay-hook');
const work = mkdtempSync(join(tmpdir(), 'pgrelay-patroni-'));
chmodSync(work, 0o755);
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const envFile = join(work, 'hook.env');
writeFileSync(envFile, '');
chmodSync(envFile, 0o644);

// before_stop on Debian's Patroni 3.0.2 is fired by the harness's launcher (see patroni-launcher.py).
const cluster: PatroniCluster = await startPatroniCluster({
  nodes: 2,
  hook: (n) => `/bin/sh ${HOOK} --env-file ${envFile} --node 127.0.0.1:${n.pgPort} --pg "host=${n.socketDir} port=${n.pgPort} user=postgres dbname=postgres" --log ${join(n.dir, 'hook.log')}`,
});
t.teardown(() => cluster.destroy());
await cluster.waitHealthy();

const relay: Relay = await startRelay(
  { host: '127.0.0.1', port: cluster.nodes[0]!.pgPort },
  {
    admin: true,
    settings: { defaultPoolSize: 10, maxClientConn: 200, queryWaitTimeoutMs: 60_000, pauseMaxDurationMs: 30_000, serverConnectTimeoutMs: 3000 },
    databases: {
      '*': {
        hosts: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.pgPort })),
        patroniApi: cluster.nodes.map((n) => n.restUrl),
        user: cluster.superuser.user,
        password: cluster.superuser.password,
        targetSessionAttrs: 'read-write',
      },
    },
  },
);
t.teardown(() => relay.stop());
writeFileSync(envFile, `PGRELAY_ADMIN=${relay.adminUrl}\nPGRELAY_TIMEOUT=8\n`);
const conn = ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'];
t.equal((await pgbench([...conn, '-i', '-s', '1', '-q', 'postgres'])).code, 0, 'pgbench -i through pgrelay');

/** Polls every node directly, recording [time, accepted writes?] samples. */
function watchWritable(): { stop(): Promise<Map<string, [number, boolean][]>> } {
  const seen = new Map<string, [number, boolean][]>();
  let running = true;
  const loops = cluster.nodes.map(async (n: PatroniNodeInfo) => {
    const times: [number, boolean][] = [];
    seen.set(n.name, times);
    while (running) {
      const c = new pg.Client({ host: '127.0.0.1', port: n.pgPort, user: cluster.superuser.user, password: cluster.superuser.password, database: 'postgres', connectionTimeoutMillis: 500 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const r = await c.query('select pg_is_in_recovery() as rec');
        times.push([Date.now(), r.rows[0].rec === false]);
      } catch {
        times.push([Date.now(), false]); // down, starting, or refusing connections
      } finally {
        await c.end().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return seen;
    },
  };
}

interface Row {
  scenario: string;
  transactions: number;
  failed: number;
  aborted: number;
  stallMs: number;
  pgrelayShareMs: number | null;
}
const table: Row[] = [];

async function scenario(name: string, action: () => Promise<void>, opts: { mayFailInFlight?: boolean; after?: () => Promise<void> } = {}): Promise<Row> {
  await cluster.waitHealthy(90_000);
  const dir = mkdtempSync(join(work, 'run-'));
  const bench = pgbench([...conn, '-c', '8', '-j', '2', '-T', '22', '-l', '--log-prefix', join(dir, 'tx'), 'postgres'], {}, { timeoutMs: 120_000 });
  await new Promise((r) => setTimeout(r, 2500));
  const watcher = watchWritable();
  const t0 = Date.now();
  await action();
  const r = await bench;
  const writable = await watcher.stop();
  await opts.after?.();
  const end = Date.now();
  const timeline = readPgbenchLogs(dir, 'tx');
  const stall = longestStall(timeline, t0, end);
  // The primary at the end; when it first accepted writes after the stall began.
  const leader = await cluster.waitForLeader(30_000);
  // Writable again = the leader's first writable sample after its last non-writable one before the
  // stall ended (for a restart of the primary, the same node was writable before it stopped).
  const samples = writable.get(leader.name) ?? [];
  const stallEnd = stall.at + stall.ms;
  let lastDown = -1;
  for (let i = 0; i < samples.length && samples[i]![0] <= stallEnd; i++) if (!samples[i]![1]) lastDown = i;
  const up = samples.slice(lastDown + 1).find((s) => s[1]);
  const writableAt = up !== undefined && up[0] >= stall.at ? up[0] : null;
  const first = writableAt === null ? null : firstCommitAfter(timeline, writableAt);
  const aborted = (r.stderr.match(/client \d+ (script \d+ )?aborted/g) ?? []).length;
  const row: Row = {
    scenario: name,
    transactions: timeline.commits.length,
    failed: timeline.failed + aborted,
    aborted,
    stallMs: Math.round(stall.ms),
    pgrelayShareMs: first === null || writableAt === null ? null : Math.round(first - writableAt),
  };
  table.push(row);
  t.comment(`${name}: ${JSON.stringify(row)}`);
  if (aborted > 0 || r.code !== 0) t.comment(`${name}: pgbench said:\n${r.stderr.split('\n').filter((l) => !/^progress|^pgbench \(/.test(l)).slice(-15).join('\n')}`);
  if (!opts.mayFailInFlight) {
    t.equal(r.code, 0, `${name}: pgbench exit 0\n${r.stderr.slice(-2000)}`);
    t.equal(row.failed, 0, `${name}: 0 failed transactions`);
  } else {
    t.ok(aborted <= 8, `${name}: at most the 8 in-flight transactions failed (${aborted})`);
  }
  t.ok(row.transactions > 100, `${name}: ${row.transactions} transactions committed`);
  // Recovery with no manual action: a fresh run through pgrelay works.
  const check = await pgbench([...conn, '-c', '4', '-j', '2', '-T', '2', 'postgres'], {}, { timeoutMs: 60_000 });
  t.equal(check.code, 0, `${name}: pgrelay serves new clients afterwards`);
  return row;
}

t.test('patronictl switchover', async () => {
  await scenario('switchover', async () => {
    await cluster.switchover();
  });
});

t.test('patronictl restart of the replica', async () => {
  await scenario('restart replica', async () => {
    const leader = await cluster.waitForLeader();
    const replica = cluster.nodes.find((n) => n.name !== leader.name)!;
    await cluster.restart(replica.name);
  });
});

t.test('patronictl restart of the primary', async () => {
  await scenario('restart primary', async () => {
    const leader = await cluster.waitForLeader();
    await cluster.restart(leader.name);
  });
});

t.test('patronictl failover --candidate', async () => {
  await scenario('failover --candidate', async () => {
    const leader = await cluster.waitForLeader();
    const replica = cluster.nodes.find((n) => n.name !== leader.name)!;
    await cluster.failover(replica.name);
  });
});

t.test("SIGTERM of the primary's Patroni", async () => {
  let stopped: PatroniNodeInfo | null = null;
  await scenario(
    'SIGTERM primary Patroni',
    async () => {
      const leader = await cluster.waitForLeader();
      stopped = leader;
      await cluster.sigtermPatroni(leader.name);
      await cluster.waitForLeader(60_000);
    },
    { after: async () => { if (stopped !== null) await cluster.startPatroni(stopped.name); } },
  );
});

t.test("kill -9 of the primary's postmaster", async () => {
  await scenario(
    'kill -9 postmaster',
    async () => {
      const leader = await cluster.waitForLeader();
      cluster.kill9Postmaster(leader.name);
      await new Promise((r) => setTimeout(r, 1000));
      await cluster.waitForLeader(60_000);
    },
    { mayFailInFlight: true },
  );
});

t.test("kill -9 of the primary's Patroni", async () => {
  let killed: PatroniNodeInfo | null = null;
  await scenario(
    'kill -9 Patroni',
    async () => {
      const leader = await cluster.waitForLeader();
      killed = leader;
      await cluster.kill9Patroni(leader.name);
      // The leader key expires after ttl (20 s); the other node takes over meanwhile.
      await new Promise((r) => setTimeout(r, 2000));
    },
    { mayFailInFlight: true, after: async () => { if (killed !== null) await cluster.startPatroni(killed.name); } },
  );
});

t.test('summary', async (t) => {
  const lines = ['| scenario | transactions | failed | longest stall (ms) | pgrelay share (ms) |', '| --- | --- | --- | --- | --- |'];
  for (const r of table) lines.push(`| ${r.scenario} | ${r.transactions} | ${r.failed} | ${r.stallMs} | ${r.pgrelayShareMs ?? 'n/a'} |`);
  t.comment('\n' + lines.join('\n'));
  t.ok(table.length >= 5);
});
