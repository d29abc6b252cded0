// Debian's prometheus-pgbouncer-exporter, unchanged, against real PgBouncer 1.18 and against pgrelay's
// admin console, both in front of the same PostgreSQL with the same traffic. Every metric the
// exporter exports for PgBouncer 1.18 appears for pgrelay, with the same labels and sane values.
//
// The exporter (1.7) reads SHOW STATS' total_requests, a column PgBouncer renamed in 1.8: against
// 1.18 its CLI stops at startup with KeyError 'total_requests', so what it exports for 1.18 is what
// each of its collectors exports when run on its own (exporter-collectors.py). pgrelay keeps that
// column (and 1.18's reserve_pool) at the end of its layouts, so the same CLI runs against it.

import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { startPgBouncer } from '../harness/pgbouncer.js';

const EXPORTER = '/usr/bin/prometheus-pgbouncer-exporter';
// The exporter's own interpreter (its shebang): the Debian python3 that has its modules.
const PYTHON = readFileSync(EXPORTER, 'utf8').split('\n')[0]!.replace(/^#!\s*/, '').trim();
const COLLECTORS = fileURLToPath(new URL('./exporter-collectors.py', import.meta.url));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const POOL_SIZE = 7;
const RESERVE = 2;

const bouncer = await startPgBouncer({
  databases: `app = host=127.0.0.1 port=${cluster.port} dbname=postgres`,
  settings: `auth_type = trust\nstats_users = pgbouncer\npool_mode = transaction\ndefault_pool_size = ${POOL_SIZE}\nreserve_pool_size = ${RESERVE}\nmax_client_conn = 50`,
  userlist: '"postgres" ""\n"pgbouncer" ""\n',
});
t.teardown(() => bouncer.stop());
const relay = await startRelay(
  { host: '127.0.0.1', port: cluster.port },
  {
    settings: { statsUsers: ['pgbouncer'], defaultPoolSize: POOL_SIZE, reservePoolSize: RESERVE, maxClientConn: 50 },
    databases: { app: { hosts: [{ host: '127.0.0.1', port: cluster.port }], dbname: 'postgres' } },
    authFile: { postgres: '', pgbouncer: '' },
  },
);
t.teardown(() => relay.stop());

/** The same traffic through both: 20 simple queries and 10 extended ones, and one client that stays. */
async function traffic(port: number): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'app' });
  await c.connect();
  for (let i = 0; i < 20; i++) await c.query('select 1');
  for (let i = 0; i < 10; i++) await c.query('select $1::int', [i]);
  return c;
}
const stay = [await traffic(bouncer.port), await traffic(relay.port)];
t.teardown(() => Promise.all(stay.map((c) => c.end())));

function collectors(port: number): Promise<Record<string, { samples?: Sample[]; error?: string }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [COLLECTORS, '127.0.0.1', String(port), 'pgbouncer'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Record<string, { samples?: Sample[]; error?: string }>) : reject(new Error(err))));
  });
}

/** Runs the exporter's CLI against `port`: its /metrics text, or how it failed. */
async function runExporter(port: number): Promise<{ metrics: string | null; exitCode: number | null; stderr: string }> {
  const web = await freePort();
  const child = spawn(EXPORTER, ['--host', '127.0.0.1', '--port', String(web), '--pgbouncer-host', '127.0.0.1', '--pgbouncer-port', String(port), '--pgbouncer-user', 'pgbouncer'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  try {
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${web}/metrics`);
        if (res.status === 200) return { metrics: await res.text(), exitCode: null, stderr };
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { metrics: null, exitCode: child.exitCode, stderr };
  } finally {
    child.kill('SIGKILL');
  }
}

function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(pgbouncer_[a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').split(',').filter((x) => x !== '')) {
      const [k, v] = l.split('=');
      labels[k!] = JSON.parse(v!) as string;
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const key = (s: Pick<Sample, 'name' | 'labels'>): string => `${s.name}{${Object.keys(s.labels).sort().join(',')}}`;

t.test('against PgBouncer 1.18 the CLI stops at startup; its collectors one by one export the reference set', async (t) => {
  const cli = await runExporter(bouncer.port);
  t.equal(cli.metrics, null);
  t.match(cli.stderr, /KeyError: 'total_requests'/, 'the exporter reads a column PgBouncer 1.8 renamed');
  const ref = await collectors(bouncer.port);
  t.match(ref['StatsCollector']!.error, /KeyError: 'total_requests'/);
  t.ok((ref['PoolsCollector']!.samples ?? []).length > 0 && (ref['DatabasesCollector']!.samples ?? []).length > 0 && (ref['ListsCollector']!.samples ?? []).length === 12);
});

t.test("every metric the exporter exports for PgBouncer 1.18 appears for pgrelay, through the exporter's CLI, with sane values", async (t) => {
  const ref = await collectors(bouncer.port);
  const expected = new Set(Object.values(ref).flatMap((c) => (c.samples ?? []).map(key)));
  t.ok(expected.size >= 16, `${expected.size} metric/label sets from PgBouncer 1.18`);

  const cli = await runExporter(relay.port);
  t.not(cli.metrics, null, `the exporter's CLI runs against pgrelay (${cli.stderr.split('\n').filter((l) => /Error/.test(l)).join(' ')})`);
  const got = parseExposition(cli.metrics ?? '');
  const gotKeys = new Set(got.map(key));
  for (const k of expected) t.ok(gotKeys.has(k), `pgrelay exports ${k}`);
  // With pgrelay the Stats collector works too: PgBouncer 1.7's names for the same totals.
  for (const k of ['pgbouncer_requests_total{database}', 'pgbouncer_received_bytes_total{database}', 'pgbouncer_sent_bytes_total{database}', 'pgbouncer_query_microseconds_total{database}']) {
    t.ok(gotKeys.has(k), `pgrelay exports ${k}`);
  }

  const one = (name: string, labels: Record<string, string> = {}): number | undefined =>
    got.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  t.equal(one('pgbouncer_active_clients', { database: 'app', user: 'postgres' }), 1, 'the client that stays is active (cl_active)');
  t.equal(one('pgbouncer_waiting_clients', { database: 'app', user: 'postgres' }), 0);
  t.equal(one('pgbouncer_pool_size', { database: 'postgres' }), POOL_SIZE, 'pool_size as configured (labelled with the upstream dbname, as for PgBouncer)');
  t.equal(one('pgbouncer_reserve_pool', { database: 'postgres' }), RESERVE);
  t.ok((one('pgbouncer_requests_total', { database: 'app' }) ?? 0) >= 30, 'the 20 simple and 10 extended queries');
  t.ok((one('pgbouncer_received_bytes_total', { database: 'app' }) ?? 0) > 0);
  t.ok((one('pgbouncer_sent_bytes_total', { database: 'app' }) ?? 0) > 0);
  t.ok((one('pgbouncer_query_microseconds_total', { database: 'app' }) ?? 0) > 0, 'query time in microseconds');
  t.ok((one('pgbouncer_databases') ?? 0) >= 1);
  t.ok((one('pgbouncer_pools') ?? 0) >= 1);
  t.ok((one('pgbouncer_used_clients') ?? 0) >= 2, 'the client that stays and the exporter');
  t.ok((one('pgbouncer_free_clients') ?? -1) >= 0);
  for (const s of got) t.ok(Number.isFinite(s.value) && s.value >= 0, `${key(s)} = ${s.value}`);

  // The same numbers as PgBouncer saw for the same traffic, where they are comparable.
  const bq = (await collectors(bouncer.port))['PoolsCollector']!.samples!.find((s) => s.name === 'pgbouncer_active_clients' && s.labels['database'] === 'app');
  t.equal(bq?.value, 1, 'PgBouncer counts the same client the same way');
});
