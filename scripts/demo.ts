// The README's "run" command: a live demo on loopback. It brings up etcd, a 2-node Patroni
// cluster (Debian's packages) wired with pgrelay's hook, and pgrelay in front of it (the real CLI,
// dist/main.js). Then it runs pgbench through pgrelay, performs a switchover and a restart of the
// primary while pgbench runs, prints progress (tps, pause/resume events) and a summary, and cleans
// up. On a terminal it then keeps pgrelay up for psql until Ctrl-C; DEMO_EXIT=1 ends at once.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { findPgBin, freePort, destroyAll } from '../test/harness/pg-cluster.js';
import { NODE_OPTIONS } from '../src/node-options.js';
import { startPatroniCluster, destroyAllPatroni, type PatroniCluster } from '../test/harness/patroni.js';
import { longestStall, readPgbenchLogs } from '../test/patroni/pgbench-log.js';

const PORT = Number(process.env['PGRELAY_DEMO_PORT'] ?? 6432);
const say = (msg: string): void => console.log(`${new Date().toISOString().slice(11, 23)}  ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

async function main(): Promise<void> {
  if (!(await portFree(PORT))) throw new Error(`127.0.0.1:${PORT} is in use; set PGRELAY_DEMO_PORT to another port`);
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
  const cleanup = async (): Promise<void> => {
    relay?.kill('SIGTERM');
    await destroyAllPatroni();
    await destroyAll();
  };
  let relay: ChildProcess | null = null;
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  const leader = await cluster.waitHealthy();
  say(`Patroni ready: leader ${leader.name} (127.0.0.1:${leader.pgPort}), replica streaming`);

  const adminPort = await freePort();
  const ini = join(work, 'pgrelay.ini');
  writeFileSync(
    ini,
    `[databases]
* = host=${cluster.nodes.map(() => '127.0.0.1').join(',')} port=${cluster.nodes.map((n) => n.pgPort).join(',')} patroni_api=${cluster.nodes.map((n) => n.restUrl).join(',')} user=postgres password=${cluster.superuser.password} target_session_attrs=read-write

[pgrelay]
listen_addr = 127.0.0.1
listen_port = ${PORT}
auth_type = trust
pool_mode = transaction
default_pool_size = 10
admin_listen_addr = 127.0.0.1
admin_listen_port = ${adminPort}
pause_max_duration = 30
query_wait_timeout = 60
log_connections = 0
log_disconnections = 0
log_level = warn
`,
  );
  writeFileSync(envFile, `PGRELAY_ADMIN=http://127.0.0.1:${adminPort}\nPGRELAY_TIMEOUT=8\n`);
  say(`starting pgrelay: node dist/main.js ${ini}`);
  relay = spawn(process.execPath, [...NODE_OPTIONS, 'dist/main.js', ini], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100 && (await portFree(PORT)); i++) await sleep(100);

  const bin = findPgBin();
  const pgbenchArgs = ['-h', '127.0.0.1', '-p', String(PORT), '-U', 'postgres'];
  const init = spawn(join(bin, 'pgbench'), [...pgbenchArgs, '-i', '-s', '5', '-q', 'postgres'], { stdio: 'ignore' });
  await new Promise((r) => init.once('exit', r));

  // pgrelay's pause/resume events, from its admin API.
  let paused = false;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      try {
        const st = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/state`)).json()) as { paused: boolean; waitingClients: number };
        if (st.paused !== paused) {
          paused = st.paused;
          say(paused ? `pgrelay PAUSED by the before_stop hook (clients wait, ${st.waitingClients} queued)` : 'pgrelay RESUMED (new primary verified: writable and holding the leader lock)');
        }
      } catch {
        /* not up yet */
      }
      await sleep(100);
    }
  })();

  say('pgbench -c 8 -j 2 -T 40 through pgrelay; progress every second');
  const logDir = mkdtempSync(join(work, 'tx-'));
  const bench = spawn(join(bin, 'pgbench'), [...pgbenchArgs, '-c', '8', '-j', '2', '-T', '40', '-P', '1', '-l', '--log-prefix', join(logDir, 'tx'), 'postgres'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  bench.stdout!.on('data', (d) => (out += d));
  bench.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      const m = /progress: ([\d.]+) s, ([\d.]+) tps, lat ([\d.]+) ms.*?(\d+) failed/.exec(line);
      if (m !== null) say(`  ${m[1]!.padStart(5)} s  ${m[2]!.padStart(8)} tps  lat ${m[3]} ms  failed ${m[4]}`);
      else if (/aborted|error/i.test(line)) say(`  pgbench: ${line}`);
    }
  });
  const benchDone = new Promise<number>((r) => bench.once('exit', (code) => r(code ?? -1)));

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
  const code = await benchDone;
  watching = false;
  await watch;

  const timeline = readPgbenchLogs(logDir, 'tx');
  const processed = /number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? String(timeline.commits.length);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  console.log('\nsummary (pgbench -c 8 -j 2 -T 40 through pgrelay)');
  console.log('event             transactions during it  longest stall');
  for (const e of events) {
    const n = timeline.commits.filter((c) => c >= e.from && c <= e.to).length;
    console.log(`${e.name.padEnd(17)} ${String(n).padStart(22)}  ${Math.round(longestStall(timeline, e.from, e.to).ms)} ms`);
  }
  console.log(`whole run: ${processed} transactions, ${failed + timeline.failed} failed, pgbench exit ${code}${code === 0 ? '' : ' (see its messages above)'}`);

  if (process.env['DEMO_EXIT'] !== '1' && process.stdin.isTTY) {
    console.log(`\npgrelay is still running. In another terminal:\n  psql -h 127.0.0.1 -p ${PORT} -U postgres postgres\n  curl -s http://127.0.0.1:${adminPort}/v1/state\nPress Ctrl-C to stop and clean up.`);
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
