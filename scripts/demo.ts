// The README's "run" command: a live demo on loopback. It brings up etcd, a 2-node Patroni cluster
// (Debian's packages) wired with pgrelay's hook, a HAProxy playing the primary Service, and pgrelay
// through the real CLI (dist/main.js) in both topologies: "direct" names both nodes, "service" only
// the HAProxy (`--topology direct|service|both`, default both). It runs pgbench through each
// instance, performs a switchover and a restart of the primary while pgbench runs, prints progress
// (tps, pause/resume events) and a summary that puts Patroni's own no-primary window beside each
// stall, and cleans up. On a terminal it then keeps pgrelay up for psql until Ctrl-C; DEMO_EXIT=1
// ends at once.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { findPgBin, freePort, destroyAll } from '../test/harness/pg-cluster.js';
import { NODE_OPTIONS } from '../src/node-options.js';
import { startPatroniCluster, destroyAllPatroni, type PatroniCluster } from '../test/harness/patroni.js';
import { startHaproxy, type Haproxy } from '../test/harness/patroni-haproxy.js';
import { anyPrimary, longestDown, watchCluster } from '../test/patroni/topology.js';
import { firstCommitAfter, longestStall, readPgbenchLogs } from '../test/patroni/pgbench-log.js';

const { values } = parseArgs({ options: { topology: { type: 'string', default: process.env['DEMO_TOPOLOGY'] ?? 'both' } } });
type Topology = 'direct' | 'service';
const isTopology = (t: string): t is Topology => t === 'direct' || t === 'service';
if (values.topology !== 'both' && !isTopology(values.topology)) {
  console.error(`demo: --topology must be direct, service or both (got ${values.topology})`);
  process.exit(2);
}
const topologies: readonly Topology[] = isTopology(values.topology) ? [values.topology] : ['direct', 'service'];
const BASE_PORT = Number(process.env['PGRELAY_DEMO_PORT'] ?? 6432);
const say = (msg: string): void => console.log(`${new Date().toISOString().slice(11, 23)}  ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

interface Instance {
  readonly topology: Topology;
  readonly port: number;
  readonly adminPort: number;
  process: ChildProcess | null;
}

function ini(cluster: PatroniCluster, haproxy: Haproxy, inst: Instance): string {
  const target =
    inst.topology === 'direct'
      ? `host=${cluster.nodes.map(() => '127.0.0.1').join(',')} port=${cluster.nodes.map((n) => n.pgPort).join(',')} patroni_api=${cluster.nodes.map((n) => n.restUrl).join(',')}`
      : `host=${haproxy.host} port=${haproxy.port}`;
  return `[databases]
* = ${target} user=postgres password=${cluster.superuser.password}

[pgrelay]
listen_addr = 127.0.0.1
listen_port = ${inst.port}
auth_type = trust
pool_mode = transaction
default_pool_size = 10
admin_listen_addr = 127.0.0.1
admin_listen_port = ${inst.adminPort}
pause_max_duration = 30
query_wait_timeout = 60
log_connections = 0
log_disconnections = 0
log_level = warn
`;
}

async function main(): Promise<void> {
  const instances: Instance[] = [];
  for (const [i, topology] of topologies.entries()) {
    const port = BASE_PORT + i;
    if (!(await portFree(port))) throw new Error(`127.0.0.1:${port} is in use; set PGRELAY_DEMO_PORT to another port`);
    instances.push({ topology, port, adminPort: await freePort(), process: null });
  }
  const work = mkdtempSync(join(tmpdir(), 'pgrelay-demo-'));
  chmodSync(work, 0o755);
  const envFile = join(work, 'hook.env');
  writeFileSync(envFile, '');
  chmodSync(envFile, 0o644);
  const hook = resolve('deploy/patroni/pgrelay-hook');

  say('starting etcd and a 2-node Patroni cluster on loopback ...');
  const cluster: PatroniCluster = await startPatroniCluster({
    nodes: 2,
    hook: (n) => `/bin/sh ${hook} --env-file ${envFile} --node 127.0.0.1:${n.pgPort} --pg "host=${n.socketDir} port=${n.pgPort} user=postgres dbname=postgres" --log ${join(n.dir, 'hook.log')}`,
  });
  let haproxy: Haproxy | null = null;
  const cleanup = async (): Promise<void> => {
    for (const i of instances) i.process?.kill('SIGTERM');
    await haproxy?.stop();
    await destroyAllPatroni();
    await destroyAll();
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  const leader = await cluster.waitHealthy();
  say(`Patroni ready: leader ${leader.name} (127.0.0.1:${leader.pgPort}), replica streaming`);
  haproxy = await startHaproxy(cluster);
  say(`HAProxy as the primary Service on 127.0.0.1:${haproxy.port} (GET /primary checks every 500 ms, fall 2, rise 1)`);

  // One hook configuration for every instance: the hook calls them all in parallel.
  writeFileSync(envFile, `PGRELAY_ADMIN="${instances.map((i) => `http://127.0.0.1:${i.adminPort}`).join(' ')}"\nPGRELAY_TIMEOUT=8\n`);
  for (const inst of instances) {
    const file = join(work, `pgrelay-${inst.topology}.ini`);
    writeFileSync(file, ini(cluster, haproxy, inst));
    say(`starting pgrelay (${inst.topology}): node dist/main.js ${file} on 127.0.0.1:${inst.port}`);
    inst.process = spawn(process.execPath, [...NODE_OPTIONS, 'dist/main.js', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  for (const inst of instances) for (let i = 0; i < 100 && (await portFree(inst.port)); i++) await sleep(100);

  const bin = findPgBin();
  const conn = (inst: Instance) => ['-h', '127.0.0.1', '-p', String(inst.port), '-U', 'postgres'];
  const init = spawn(join(bin, 'pgbench'), [...conn(instances[0]!), '-i', '-s', '5', '-q', 'postgres'], { stdio: 'ignore' });
  await new Promise((r) => init.once('exit', r));

  // pgrelay's pause/resume events, from each instance's admin API.
  let watching = true;
  const watches = instances.map(async (inst) => {
    let paused = false;
    while (watching) {
      try {
        const st = (await (await fetch(`http://127.0.0.1:${inst.adminPort}/v1/state`)).json()) as { paused: boolean; waitingClients: number };
        if (st.paused !== paused) {
          paused = st.paused;
          say(paused ? `pgrelay (${inst.topology}) PAUSED by the before_stop hook (clients wait, ${st.waitingClients} queued)` : `pgrelay (${inst.topology}) RESUMED (new primary confirmed)`);
        }
      } catch {
        /* not up yet */
      }
      await sleep(100);
    }
  });

  const seconds = 40;
  say(`pgbench -c 8 -j 2 -R 500 -T ${seconds} through each pgrelay; progress every 2 seconds`);
  const logDir = mkdtempSync(join(work, 'tx-'));
  const benches = instances.map((inst) => {
    const bench = spawn(join(bin, 'pgbench'), [...conn(inst), '-n', '-c', '8', '-j', '2', '-R', '500', '-T', String(seconds), '-P', '2', '-l', '--log-prefix', join(logDir, inst.topology), 'postgres'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    bench.stdout!.on('data', (d) => (out += d));
    bench.stderr!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        const m = /progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+) ms.*?(\d+) failed/.exec(line);
        if (m !== null) say(`  ${inst.topology.padEnd(7)} ${m[1]!.padStart(5)} s  ${m[2]!.padStart(8)} tps  lat ${m[3]} ms  failed ${m[4]}`);
        else if (/aborted|error/i.test(line)) say(`  pgbench (${inst.topology}): ${line}`);
      }
    });
    return { inst, out: () => out, done: new Promise<number>((r) => bench.once('exit', (code) => r(code ?? -1))) };
  });

  const watcher = watchCluster({ cluster, haproxy });
  const events: { name: string; from: number; to: number }[] = [];
  await sleep(6000);
  let from = Date.now();
  say('>>> patronictl switchover');
  const next = await cluster.switchover();
  say(`<<< switchover done: new primary ${next.name}`);
  events.push({ name: 'switchover', from, to: Date.now() + 3000 });
  await sleep(8000);
  await cluster.waitHealthy(60_000);
  from = Date.now();
  say(`>>> patronictl restart ${next.name} (the primary)`);
  await cluster.restart(next.name);
  say('<<< restart done');
  events.push({ name: 'restart primary', from, to: Date.now() + 3000 });
  const codes = await Promise.all(benches.map((b) => b.done));
  const watch = await watcher.stop();
  watching = false;
  await Promise.all(watches);

  console.log(`\nsummary (pgbench -c 8 -j 2 -R 500 -T ${seconds} through each pgrelay)`);
  console.log('event            topology  transactions  failed  longest stall  no-primary window  pgrelay share');
  for (const e of events) {
    const gap = longestDown(anyPrimary(watch), e.from, e.to);
    const serviceGap = longestDown(watch.service, e.from, e.to);
    for (const b of benches) {
      const timeline = readPgbenchLogs(logDir, b.inst.topology);
      const n = timeline.commits.filter((c) => c >= e.from && c <= e.to).length;
      const stall = Math.round(longestStall(timeline, e.from, e.to).ms);
      const upAt = b.inst.topology === 'direct' ? gap?.end : serviceGap?.end;
      const first = upAt === undefined ? null : firstCommitAfter(timeline, upAt);
      const share = first === null || upAt === undefined ? '-' : `${Math.round(first - upAt)} ms`;
      console.log(`${e.name.padEnd(16)} ${b.inst.topology.padEnd(9)} ${String(n).padStart(12)}  ${String(timeline.failed).padStart(6)}  ${`${stall} ms`.padStart(13)}  ${(gap === null ? '-' : `${Math.round(gap.ms)} ms`).padStart(17)}  ${share.padStart(13)}`);
    }
  }
  for (const [i, b] of benches.entries()) {
    const processed = /number of transactions actually processed: (\d+)/.exec(b.out())?.[1] ?? '?';
    const failed = Number(/number of failed transactions: (\d+)/.exec(b.out())?.[1] ?? 0);
    console.log(`whole run (${b.inst.topology}): ${processed} transactions, ${failed} failed, pgbench exit ${codes[i]}${codes[i] === 0 ? '' : ' (see its messages above)'}`);
  }
  console.log('The no-primary window is Patroni\'s own (no node both writable and holding the leader lock); the rest of a stall is pgrelay\'s (and, in the service topology, the Service\'s).');

  if (process.env['DEMO_EXIT'] !== '1' && process.stdin.isTTY) {
    console.log(`\npgrelay is still running. In another terminal:`);
    for (const inst of instances) console.log(`  psql -h 127.0.0.1 -p ${inst.port} -U postgres postgres     # ${inst.topology}\n  curl -s http://127.0.0.1:${inst.adminPort}/v1/state`);
    console.log('Press Ctrl-C to stop and clean up.');
    await new Promise(() => undefined);
  }
  await cleanup();
}

main().catch(async (err: Error) => {
  console.error(`demo: ${err.message}`);
  await destroyAllPatroni().catch(() => undefined);
  await destroyAll().catch(() => undefined);
  process.exit(1);
});
