// The admin surfaces end to end on real PostgreSQL: the runbook's psql commands against the
// PgBouncer-compatible console, and the HTTP API, each pausing pgbench for 3 s with 0 failures.

import t from 'tap';
import { spawn } from 'node:child_process';
import { startCluster, pgbench } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const relay = await startRelay(cluster, {
  admin: true,
  settings: { authType: 'md5', adminUsers: ['pgbouncer_admin'], statsUsers: ['pgbouncer_stats'], defaultPoolSize: 8 },
  authFile: { postgres: 'sup3rus3r', pgbouncer_admin: 'pgb0unc3r', pgbouncer_stats: 'pgb0unc3r' },
});
t.teardown(() => relay.stop());
const consoleUrl = (user = 'pgbouncer_admin') => `postgresql://${user}:pgb0unc3r@127.0.0.1:${relay.port}/pgbouncer`;
const benchEnv = { PGPASSWORD: 'sup3rus3r' };
const conn = ['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres'];

function psql(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('psql', ['-X', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

await cluster.psql(`alter user postgres password 'sup3rus3r'`);
t.equal((await pgbench([...conn, '-i', '-s', '1', '-q', 'postgres'], benchEnv)).code, 0);

t.test("the runbook's console commands work unchanged", async (t) => {
  const state = await psql([consoleUrl(), '-tA', '-c', 'SHOW STATE']);
  t.equal(state.code, 0, state.stderr);
  t.match(state.stdout, /^paused\|no$/m);
  const pools = await psql([consoleUrl('pgbouncer_stats'), '-c', 'SHOW POOLS']);
  t.equal(pools.code, 0, pools.stderr);
  t.match(pools.stdout, /cl_active/);
  const refused = await psql([consoleUrl('pgbouncer_stats'), '-c', 'PAUSE']);
  t.not(refused.code, 0, 'a stats user cannot PAUSE');
  const outsider = await psql([`postgresql://postgres:sup3rus3r@127.0.0.1:${relay.port}/pgbouncer`, '-c', 'SHOW STATE']);
  t.not(outsider.code, 0, 'users outside admin_users/stats_users are refused');
});

t.test('pgbench -c 16 -j 2: PAUSE via psql on the console, hold 3 s, RESUME: 0 failed', async (t) => {
  const bench = pgbench([...conn, '-c', '16', '-j', '2', '-T', '8', '-P', '1', 'postgres'], benchEnv);
  await new Promise((r) => setTimeout(r, 1500));
  const pause = await psql([consoleUrl(), '-c', 'PAUSE']);
  t.equal(pause.code, 0, pause.stderr);
  t.match((await psql([consoleUrl(), '-tA', '-c', 'SHOW STATE'])).stdout, /^paused\|yes$/m);
  await new Promise((r) => setTimeout(r, 3000));
  const resume = await psql([consoleUrl(), '-c', 'RESUME']);
  t.equal(resume.code, 0, resume.stderr);
  t.match((await psql([consoleUrl(), '-tA', '-c', 'SHOW STATE'])).stdout, /^paused\|no$/m);
  const r = await bench;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.failed ?? 0, 0, `${r.processed} transactions, 0 failed`);
  const tps = [...r.stderr.matchAll(/progress: [\d.]+ s, ([\d.]+) tps/g)].map((m) => Number(m[1]));
  t.ok(tps.filter((x) => x < 1).length >= 2, `the hold shows in pgbench's progress: ${tps.join(' ')}`);
});

t.test('pgbench -c 16 -j 2: PAUSE via HTTP, hold 3 s, RESUME: 0 failed', async (t) => {
  const bench = pgbench([...conn, '-c', '16', '-j', '2', '-T', '8', '-P', '1', 'postgres'], benchEnv);
  await new Promise((r) => setTimeout(r, 1500));
  const pause = await fetch(`${relay.adminUrl}/v1/pause`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeout_ms: 5000 }) });
  t.equal(pause.status, 200);
  const body = (await pause.json()) as { result: string; drainMs: number };
  t.equal(body.result, 'drained');
  const state = (await (await fetch(`${relay.adminUrl}/v1/state`)).json()) as { paused: boolean; waitingClients: number };
  t.equal(state.paused, true);
  await new Promise((r) => setTimeout(r, 3000));
  const resume = await fetch(`${relay.adminUrl}/v1/resume`, { method: 'POST' });
  t.equal(resume.status, 200);
  const r = await bench;
  t.equal(r.code, 0, r.stderr);
  t.equal(r.failed ?? 0, 0, `${r.processed} transactions, 0 failed`);
  const metrics = await (await fetch(`${relay.adminUrl}/metrics`)).text();
  t.match(metrics, /pgrelay_pause_drain_seconds_count\{result="drained"\} [1-9]/);
  t.match(metrics, /pgrelay_transactions_total\{database="postgres",user="postgres"\} [1-9]/);
});

t.test('HTTP PAUSE with an idle-in-transaction client answers 504 naming it', async (t) => {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: `postgresql://postgres:sup3rus3r@127.0.0.1:${relay.port}/postgres` });
  await c.connect();
  await c.query('begin');
  const res = await fetch(`${relay.adminUrl}/v1/pause?timeout_ms=300`, { method: 'POST' });
  t.equal(res.status, 504);
  const body = (await res.json()) as { result: string; inTransaction: { user: string }[] };
  t.equal(body.result, 'timeout');
  t.equal(body.inTransaction[0]?.user, 'postgres');
  await fetch(`${relay.adminUrl}/v1/resume`, { method: 'POST' });
  await c.query('rollback');
  await c.end();
  const bad = await fetch(`${relay.adminUrl}/v1/pause?timeout_ms=abc`, { method: 'POST' });
  t.equal(bad.status, 400);
  t.match(JSON.stringify(await bad.json()), /timeout_ms/);
});
