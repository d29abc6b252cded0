// Proves test/harness/patroni.ts against real etcd + Patroni: a 2-node cluster with a streaming
// replica, a switchover, before_stop (via patroni-launcher.py) firing on the old primary while its
// PostgreSQL still ran, callbacks' `ACTION ROLE SCOPE` arguments, and a destroy that leaves nothing.
// Nothing is skipped: missing packages are installed when root, else the test fails saying how.

import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import { deadOrZombie, startEtcd, startPatroniCluster } from './patroni.js';
import type { PatroniCluster, PatroniNodeInfo } from './patroni.js';
import { findPgBin } from './pg-cluster.js';

const SCOPE = 'pgrelay-harness';

/** One hook for before_stop and every callback, appending one line per call to the node's
 * hook.log: callbacks log their `ACTION ROLE SCOPE`; before_stop (no arguments) asks its own
 * PostgreSQL whether it is in recovery, sleeps 1 s and asks again — both answering proves it ran
 * before the stop, and synchronously (Patroni waited for it). */
function hookCommand(n: PatroniNodeInfo): string {
  const log = path.join(n.dir, 'hook.log');
  const ask = `${path.join(findPgBin(), 'psql')} -XAtq -h ${n.socketDir} -p ${n.pgPort} -U postgres -d postgres -c "select pg_is_in_recovery()" 2>/dev/null || echo down`;
  const script =
    `if [ $# -eq 0 ]; then a=$(${ask}); sleep 1; b=$(${ask}); ` +
    `echo "$(date +%s%N) $0 before_stop in_recovery=$a after_1s=$b" >> ${log}; ` +
    `else echo "$(date +%s%N) $0 $*" >> ${log}; fi`;
  // Patroni splits this like a shell (shlex) and runs it without one: the script is one argument.
  return `/bin/sh -c '${script}' pgrelay-hook`;
}

function hookLines(n: PatroniNodeInfo): string[] {
  try {
    return fs.readFileSync(path.join(n.dir, 'hook.log'), 'utf8').trimEnd().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function query(cluster: PatroniCluster, n: PatroniNodeInfo, sql: string): Promise<unknown[]> {
  const client = new pg.Client({
    host: n.host,
    port: n.pgPort,
    user: cluster.superuser.user,
    password: cluster.superuser.password,
    database: 'postgres',
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

t.test('startEtcd: healthy on loopback, stop leaves nothing', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  t.match(etcd.clientUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const pid = etcd.pid;
  t.ok(pid, 'etcd pid known');
  const res = await fetch(`${etcd.clientUrl}/health`);
  t.equal(res.status, 200);
  t.match(await res.json(), { health: 'true' });
  await etcd.stop();
  t.ok(deadOrZombie(pid!), 'etcd process gone');
  t.notOk(fs.existsSync(etcd.dir), 'etcd dir removed');
});

t.test('2-node Patroni cluster: streaming replica, switchover, before_stop, callbacks, destroy', async (t) => {
  const t0 = Date.now();
  const cluster = await startPatroniCluster({ nodes: 2, scope: SCOPE, hook: hookCommand });
  t.teardown(() => cluster.destroy());
  t.comment(`cluster healthy ${Date.now() - t0} ms after start`);

  // --- a leader and a streaming replica
  t.equal(cluster.nodes.length, 2);
  const leader = await cluster.leader();
  t.ok(leader, 'a leader');
  t.equal(leader!.name, 'node0', 'node0 (started first) leads');
  const replica = cluster.nodes.find((n) => n.name !== leader!.name)!;
  t.equal(await cluster.psql(leader!, 'SELECT pg_is_in_recovery()'), 'f', 'leader writable');
  t.equal(await cluster.psql(replica, 'SELECT pg_is_in_recovery()'), 't', 'replica in recovery');
  t.equal(
    await cluster.psql(leader!, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
    '1',
    'leader streams to one replica',
  );
  t.same(await query(cluster, leader!, 'SELECT current_user AS u'), [{ u: 'postgres' }], 'superuser password works over TCP (md5)');
  await cluster.psql(leader!, 'CREATE TABLE harness_probe (v text); INSERT INTO harness_probe VALUES (\'before\')');
  await waitFor(
    'the write on the leader to become visible on the replica',
    async () => (await cluster.psql(replica, "SELECT count(*) FROM harness_probe WHERE v = 'before'").catch(() => '0')) === '1',
    10_000,
  );
  t.pass('a write on the leader is visible on the replica');

  const cfg = JSON.parse(fs.readFileSync(cluster.configFile(leader!), 'utf8')) as { postgresql: { before_stop?: string } };
  t.equal(cfg.postgresql.before_stop, hookCommand(leader!), 'config carries before_stop');

  const status = await cluster.patronictl(['list', SCOPE]);
  t.equal(status.code, 0, 'patronictl list works');
  t.match(status.stdout, /node0.*Leader/, 'patronictl sees node0 as leader');

  // --- switchover moves the leader
  const beforeSwitch = hookLines(leader!).length;
  const t1 = Date.now();
  const next = await cluster.switchover();
  const switched = Date.now() - t1;
  t.equal(next.name, replica.name, 'the other node now leads');
  t.equal(await cluster.psql(next, 'SELECT pg_is_in_recovery()'), 'f', 'new leader writable');
  await cluster.waitHealthy(60_000);
  t.comment(`switchover: new primary writable after ${switched} ms (incl. the 1 s hook), cluster healthy after ${Date.now() - t1} ms`);
  t.equal((await cluster.leader())?.name, next.name, 'leader() agrees');
  t.equal(await cluster.psql(leader!, 'SELECT pg_is_in_recovery()'), 't', 'old leader rejoined as a replica');

  // --- before_stop ran on the old primary before its PostgreSQL stopped, then callbacks
  await waitFor('on_role_change replica on the old leader', () => hookLines(leader!).slice(beforeSwitch).some((l) => / on_role_change replica /.test(`${l} `)), 20_000);
  const oldLines = hookLines(leader!).slice(beforeSwitch);
  t.comment(`old leader's hook calls:\n${oldLines.join('\n')}`);
  const stopIdx = oldLines.findIndex((l) => / before_stop /.test(l));
  t.ok(stopIdx >= 0, 'before_stop ran on the old primary');
  t.match(oldLines[stopIdx] ?? '', /in_recovery=f after_1s=f$/, 'its PostgreSQL was up and primary during the hook, and stayed so for 1 s (synchronous)');
  const onStopIdx = oldLines.findIndex((l) => / pgrelay-hook on_stop /.test(l));
  const rejoinIdx = oldLines.findIndex((l) => / on_role_change replica /.test(l));
  t.ok(stopIdx < rejoinIdx, 'before_stop came before the demoted node rejoined');
  if (onStopIdx >= 0) t.ok(stopIdx < onStopIdx, 'before_stop came before on_stop');
  const newLines = hookLines(next);
  t.ok(
    newLines.some((l) => new RegExp(` pgrelay-hook on_role_change (master|primary) ${SCOPE}$`).test(l)),
    'on_role_change master|primary SCOPE on the new primary',
  );
  for (const l of [...hookLines(leader!), ...newLines].filter((x) => !/ before_stop /.test(x))) {
    t.match(l, new RegExp(`^\\d+ pgrelay-hook (on_start|on_stop|on_restart|on_role_change) (master|primary|replica|demoted) ${SCOPE}$`), `callback args: ${l}`);
  }
  t.match(fs.readFileSync(leader!.logFile, 'utf8'), /before_stop script .* exited with 0/, 'the launcher logged the hook in the node log');

  // --- destroy leaves no process and no dir
  const pids = cluster.pids();
  const all = [pids.etcd, ...Object.values(pids.patroni), ...Object.values(pids.postmaster)].filter((p): p is number => p !== undefined);
  t.equal(all.length, 5, `etcd, 2 Patroni, 2 postmasters running: ${JSON.stringify(pids)}`);
  const t2 = Date.now();
  await cluster.destroy();
  t.comment(`destroy took ${Date.now() - t2} ms`);
  for (const pid of all) t.ok(deadOrZombie(pid), `pid ${pid} gone`);
  t.notOk(fs.existsSync(cluster.dir), 'cluster dir removed');
  t.notOk(fs.existsSync(cluster.etcd.dir), 'etcd dir removed');
  await cluster.destroy(); // idempotent (the teardown calls it again)
});
