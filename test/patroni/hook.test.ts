// The shipped Patroni hook (deploy/patroni/pgrelay-hook) against a real pgrelay and real
// PostgreSQL: before_stop pauses only for a running primary, waits for the drain and always exits
// 0; a master/primary callback hints and pgrelay resumes after verifying; the console fallback
// works without curl; a replica or an unreachable node is left alone, quickly.

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const HOOK = resolve('deploy/patroni/pgrelay-hook');
const primary = await startCluster({ replication: true });
t.teardown(() => primary.destroy());
const standby = await primary.basebackupStandby();
t.teardown(() => standby.destroy());
const node = `127.0.0.1:${primary.port}`;
const relay = await startRelay(primary, {
  admin: true,
  settings: { adminUsers: ['admin'], authType: 'trust' },
  // Both nodes are configured hosts; the write gate picks the primary.
  databases: { '*': { hosts: [{ host: '127.0.0.1', port: primary.port }, { host: '127.0.0.1', port: standby.port }] } },
});
t.teardown(() => relay.stop());

function hook(args: string[], env: Record<string, string> = {}): Promise<{ code: number; ms: number; log: string }> {
  return new Promise((done) => {
    const started = Date.now();
    const p = spawn('/bin/sh', [HOOK, ...args], { env: { ...process.env, PGPASSWORD: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d) => (log += d));
    p.stderr.on('data', (d) => (log += d));
    p.on('close', (code) => done({ code: code ?? -1, ms: Date.now() - started, log }));
  });
}

async function warm(): Promise<void> {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  await c.query('select 1');
  await c.end();
}

t.test('before_stop on the primary pauses pgrelay (drained) and exits 0', async (t) => {
  await warm();
  const r = await hook(['--node', node, '--admin', relay.adminUrl!, '--timeout', '5']);
  t.equal(r.code, 0, r.log);
  t.match(r.log, /HTTP200/);
  t.match(r.log, /"result":"drained"/);
  t.ok(relay.app.control.state().paused, 'pgrelay is paused');
});

t.test('on_role_change master hints; pgrelay verifies the node and resumes', async (t) => {
  const r = await hook(['--node', node, '--admin', relay.adminUrl!, 'on_role_change', 'master', 'demo']);
  t.equal(r.code, 0, r.log);
  t.match(r.log, /HTTP202/);
  for (let i = 0; i < 50 && relay.app.control.state().paused; i++) await new Promise((res) => setTimeout(res, 50));
  t.notOk(relay.app.control.state().paused, 'resumed after verification');
  await warm();
});

t.test('before_stop with an idle-in-transaction client returns at its deadline, still exit 0', async (t) => {
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  await c.query('begin');
  const r = await hook(['--node', node, '--admin', relay.adminUrl!, '--timeout', '1']);
  t.equal(r.code, 0);
  t.ok(r.ms < 6000, `returned after ${r.ms} ms`);
  t.match(r.log, /HTTP504/);
  await c.query('rollback');
  await c.end();
  relay.app.control.resume();
});

t.test('a pause for a node that is not the current upstream is ignored', async (t) => {
  await warm();
  const other = `127.0.0.1:${standby.port}`;
  // Pretend the standby were primary: the hook only asks PostgreSQL, so point --pg at the primary.
  const r = await hook(['--node', other, '--pg', `host=127.0.0.1 port=${primary.port} user=postgres`, '--admin', relay.adminUrl!]);
  t.equal(r.code, 0);
  t.match(r.log, /"result":"ignored"/);
  t.notOk(relay.app.control.state().paused);
});

t.test('before_stop on a replica does nothing and returns at once', async (t) => {
  const r = await hook(['--node', `127.0.0.1:${standby.port}`, '--admin', relay.adminUrl!]);
  t.equal(r.code, 0);
  t.match(r.log, /not a running primary \(in_recovery=t\)/);
  t.notOk(relay.app.control.state().paused);
});

t.test('an unreachable PostgreSQL: exit 0 quickly', async (t) => {
  const r = await hook(['--node', '127.0.0.1:1', '--admin', relay.adminUrl!]);
  t.equal(r.code, 0);
  t.ok(r.ms < 5000, `${r.ms} ms`);
  t.match(r.log, /unreachable/);
});

t.test('without curl the hook falls back to psql on the console', async (t) => {
  // A PATH with sh, psql and the basics but no curl.
  const bin = mkdtempSync(join(tmpdir(), 'pgrelay-nocurl-'));
  for (const tool of ['psql', 'date', 'mktemp', 'mkdir', 'rm', 'cat', 'tr', 'sleep', 'timeout', 'awk', 'sort', 'getent']) {
    const found = ['/usr/bin', '/bin', '/usr/local/bin'].map((d) => join(d, tool)).find((p) => {
      try {
        return existsSync(p);
      } catch {
        return false;
      }
    });
    if (found !== undefined) symlinkSync(found, join(bin, tool));
  }
  const consoleUrl = `postgresql://admin@127.0.0.1:${relay.port}/pgbouncer`;
  const env = { PATH: bin };
  const envFile = join(bin, 'hook.env');
  writeFileSync(envFile, `PGRELAY_NODE=${node}\nPGRELAY_CONSOLE_URL=${consoleUrl}\n`);
  const paused = await hook(['--env-file', envFile], env);
  t.equal(paused.code, 0, paused.log);
  t.match(paused.log, /console PAUSE ok/);
  t.ok(relay.app.control.state().paused);
  const resumed = await hook(['--env-file', envFile, 'on_start', 'master', 'demo'], env);
  t.match(resumed.log, /console RESUME ok/);
  t.notOk(relay.app.control.state().paused);
});

t.test('a pause for a node behind a Service name (not a configured host) is honoured', async (t) => {
  const viaService = await startRelay(primary, {
    admin: true,
    databases: { '*': { hosts: [{ host: 'localhost', port: primary.port }] } },
  });
  t.teardown(() => viaService.stop());
  const c = new pg.Client({ connectionString: viaService.url() });
  await c.connect();
  await c.query('select 1');
  await c.end();
  const r = await hook(['--node', `10.1.2.3:5432`, '--pg', `host=127.0.0.1 port=${primary.port} user=postgres`, '--admin', viaService.adminUrl!]);
  t.match(r.log, /"result":"drained"/, 'paused although the pod address is not in the config');
  viaService.app.control.resume();
});
