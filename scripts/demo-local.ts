// A single-node demo (npm run demo:local): sets up a throwaway local PostgreSQL, starts pgrelay (the real CLI,
// dist/main.js) in front of it on 127.0.0.1:6432, measures pgbench straight and through pgrelay
// side by side, then keeps pgrelay in the foreground for psql until Ctrl-C.
// DEMO_EXIT=1 ends after the measurements (for scripted runs).

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { startCluster, pgbench, destroyAll } from '../test/harness/pg-cluster.js';
import { NODE_OPTIONS } from '../src/node-options.js';

const PORT = Number(process.env['PGRELAY_DEMO_PORT'] ?? 6432);

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
  if (!(await portFree(PORT))) {
    console.error(`demo: 127.0.0.1:${PORT} is in use; set PGRELAY_DEMO_PORT to another port`);
    process.exit(1);
  }
  console.log('demo: starting a throwaway PostgreSQL cluster ...');
  const cluster = await startCluster({ settings: { max_connections: '200' } });
  console.log(`demo: PostgreSQL ready on 127.0.0.1:${cluster.port}; loading pgbench data (scale 10) ...`);
  const init = await pgbench(['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', '10', '-q', 'postgres']);
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);

  const dir = mkdtempSync(join(tmpdir(), 'pgrelay-demo-'));
  const ini = join(dir, 'pgrelay.ini');
  writeFileSync(
    ini,
    `[databases]
* = host=127.0.0.1 port=${cluster.port}

[pgrelay]
listen_addr = 127.0.0.1
listen_port = ${PORT}
auth_type = trust
pool_mode = transaction
default_pool_size = 10
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`,
  );
  console.log(`demo: starting pgrelay with ${ini}`);
  const relay = spawn(process.execPath, [...NODE_OPTIONS, 'dist/main.js', ini], { stdio: ['ignore', 'inherit', 'inherit'] });
  const stopAll = async (): Promise<void> => {
    relay.kill('SIGTERM');
    await new Promise((r) => relay.once('exit', r));
    await destroyAll();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)));
  for (let i = 0; i < 50 && (await portFree(PORT)); i++) await new Promise((r) => setTimeout(r, 100));

  const run = async (port: number, mode: string) => {
    const r = await pgbench(['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-c', '50', '-j', '2', '-T', '10', '-M', mode, 'postgres']);
    return { tps: r.tps ?? 0, failed: r.failed ?? 0, processed: r.processed ?? 0, code: r.code };
  };
  console.log('\ndemo: pgbench -c 50 -j 2 -T 10 (TPC-B, scale 10), direct vs through pgrelay (pool_size 10)');
  console.log('mode       target    tps        transactions  failed');
  for (const mode of ['simple', 'extended']) {
    for (const [name, port] of [['direct', cluster.port], ['pgrelay', PORT]] as const) {
      const r = await run(port, mode);
      console.log(`${mode.padEnd(10)} ${name.padEnd(9)} ${r.tps.toFixed(1).padStart(9)}  ${String(r.processed).padStart(12)}  ${String(r.failed).padStart(6)}${r.code !== 0 ? '  (pgbench exit ' + r.code + ')' : ''}`);
    }
  }
  if (process.env['DEMO_EXIT'] === '1') {
    await stopAll();
    return;
  }
  console.log(`\ndemo: pgrelay is running. In another terminal:\n  psql -h 127.0.0.1 -p ${PORT} -U postgres postgres\nPress Ctrl-C to stop pgrelay and remove the cluster.`);
  await new Promise((r) => relay.once('exit', r));
  await destroyAll();
}

main().catch(async (err: Error) => {
  console.error(`demo: ${err.message}`);
  await destroyAll();
  process.exit(1);
});
