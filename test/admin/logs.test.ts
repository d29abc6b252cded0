// What pgrelay's log says, on a real pgrelay in front of real PostgreSQL: every failed login names
// the client's address and a reason code; a PAUSE or RESUME names who asked (console user, HTTP
// peer, hook, signal); repeated lines are rate-limited with a count; the admin API line says
// whether a token is set; text and ISO-time formats for people and log shippers.

import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import pg from 'pg';
import { App } from '../../src/app.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { RepeatLog } from '../../src/log-limiter.js';
import { startCluster, freePort } from '../harness/pg-cluster.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const cluster = await startCluster();
t.teardown(() => cluster.destroy());

type Line = { level: number; msg: string; [k: string]: unknown };

async function start(t: Test, settings: Record<string, unknown> = {}): Promise<{ app: App; port: number; lines: Line[]; admin: string }> {
  const dir = t.testdir({ 'userlist.txt': '"app" "right"\n"admin" "adm1n"\n', token: 'tok\n' });
  const lines: Line[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const config = buildConfig({
    settings: {
      listenAddr: ['127.0.0.1'],
      listenPort: 0,
      authType: 'plain',
      authFile: join(dir, 'userlist.txt'),
      adminUsers: ['admin'],
      maxClientConn: 50,
      ...(settings as object),
    },
    databases: { app: { hosts: [{ host: '127.0.0.1', port: cluster.port }], dbname: 'postgres', user: 'postgres' } },
  });
  const app = new App(config, { logger });
  await app.start();
  const a = await app.startAdmin(0);
  t.teardown(() => app.stop(100));
  return { app, port: app.port, lines, admin: `http://127.0.0.1:${a.port}` };
}

async function tryLogin(port: number, user: string, password: string, database = 'app'): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  try {
    await c.connect();
    await c.end();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

t.test('every failed login logs the client address and a reason code', async (t) => {
  const r = await start(t);
  t.equal(await tryLogin(r.port, 'app', 'wrong'), '28P01');
  t.equal(await tryLogin(r.port, 'nobody', 'x'), '28P01');
  t.equal(await tryLogin(r.port, 'app', 'right', 'nosuchdb'), '3D000');
  await new Promise((res) => setTimeout(res, 50));
  const failed = r.lines.filter((l) => l.msg.startsWith('client login failed'));
  t.equal(failed.length, 3, 'one line per failed login');
  for (const l of failed) {
    t.equal(l['addr'], '127.0.0.1', 'the client address');
    t.type(l['port'], 'number');
    t.match(l['code'], /^PGRELAY_[A-Z_]+$/, 'a stable reason code');
    t.match(l['sqlstate'], /^[0-9A-Z]{5}$/);
  }
  t.same(failed.map((l) => l['sqlstate']), ['28P01', '28P01', '3D000']);
  // And counted, by the same codes.
  const metrics = await (await fetch(`${r.admin}/metrics`)).text();
  for (const code of new Set(failed.map((l) => String(l['code'])))) {
    const n = failed.filter((l) => l['code'] === code).length;
    t.match(metrics, `pgrelay_client_login_failures_total{reason="${code}"} ${n}`);
  }
});

t.test('repeated failed logins are rate-limited with a count', async (t) => {
  const r = await start(t);
  for (let i = 0; i < 12; i++) await tryLogin(r.port, 'app', 'wrong');
  const failed = () => r.lines.filter((l) => l.msg.startsWith('client login failed'));
  t.equal(failed().length, 5, 'the first five are written in full');
  t.match(failed().at(-1), { rateLimited: true });
  // The janitor ends the window; here the limiter is swept as the janitor would, 10 s on.
  r.app.ctx.repeatLog.sweep(Date.now() + 10_001);
  t.match(failed().at(-1), { repeated: 7, msg: /repeated 7 more times/ });
});

t.test('RepeatLog: per key, a window, the count when the key comes back', async (t) => {
  const out: Array<[string, Record<string, unknown>, string]> = [];
  const sink = { info: (f: object, m: string) => void out.push(['info', f as Record<string, unknown>, m]), warn: (f: object, m: string) => void out.push(['warn', f as Record<string, unknown>, m]) };
  const log = new RepeatLog(() => sink, 2, 1000);
  for (let i = 0; i < 5; i++) log.warn('a', { i }, 'gate rejected', 100 + i);
  log.warn('b', {}, 'other', 100);
  t.equal(out.length, 3, 'two of "a", one of "b"');
  log.warn('a', { i: 9 }, 'gate rejected', 1200);
  t.match(out[3], ['warn', { i: 4, repeated: 3 }, /repeated 3 more times in 1 s/]);
  t.match(out[4], ['warn', { i: 9 }, 'gate rejected']);
  log.sweep(5000);
  t.equal(out.length, 5, 'nothing held back, nothing more to say');
});

t.test('PAUSE and RESUME log who asked: console user, HTTP peer, hook', async (t) => {
  const r = await start(t);
  const c = new pg.Client({ host: '127.0.0.1', port: r.port, user: 'admin', password: 'adm1n', database: 'pgbouncer' });
  await c.connect();
  await c.query('PAUSE app');
  await c.query('RESUME app');
  await c.end();
  await fetch(`${r.admin}/v1/pause?database=app`, { method: 'POST' });
  await fetch(`${r.admin}/v1/resume`, { method: 'POST' });
  await fetch(`${r.admin}/v1/pause?node=127.0.0.1:${cluster.port}&timeout_ms=100`, { method: 'POST' });
  const asked = r.lines.filter((l) => l['event'] === 'pause-request' || l['event'] === 'resume-request').map((l) => [l['event'], l['by']]);
  t.same(asked, [
    ['pause-request', 'console user "admin"'],
    ['resume-request', 'console user "admin"'],
    ['pause-request', 'http 127.0.0.1'],
    ['resume-request', 'http 127.0.0.1'],
    ['pause-request', `hook (node 127.0.0.1:${cluster.port}) via http 127.0.0.1`],
  ]);
});

t.test('the admin API line says whether a token is set', async (t) => {
  const without = await start(t);
  t.match(without.lines.find((l) => l.msg === 'admin API listening'), { tokenSet: false });
  const dir = t.testdir({ token: 'sekret\n' });
  const withToken = await start(t, { adminTokenFile: join(dir, 'token') });
  const line = withToken.lines.find((l) => l.msg === 'admin API listening')!;
  t.match(line, { tokenSet: true });
  t.notMatch(JSON.stringify(line), /sekret/);
});

t.test('log_format = text and log_time_format = iso', async (t) => {
  const dir = t.testdir({});
  const textLog = createLogger({ logLevel: 'info', logfile: join(dir, 'text.log'), logFormat: 'text', logTimeFormat: 'epoch' });
  textLog.info({ client: 7, addr: '10.0.0.5', reason: 'wrong password' }, 'client login failed');
  textLog.flush();
  const isoLog = createLogger({ logLevel: 'info', logfile: join(dir, 'iso.log'), logFormat: 'json', logTimeFormat: 'iso' });
  isoLog.info({ a: 1 }, 'hello');
  isoLog.flush();
  await new Promise((res) => setTimeout(res, 200));
  t.match(readFileSync(join(dir, 'text.log'), 'utf8'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  client login failed client=7 addr=10\.0\.0\.5 reason="wrong password"\n$/);
  const json = JSON.parse(readFileSync(join(dir, 'iso.log'), 'utf8')) as { time: string };
  t.match(json.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

t.test('SIGUSR1 and SIGUSR2 log who asked: the signal', async (t) => {
  const dir = t.testdir({});
  const port = await freePort();
  writeFileSync(join(dir, 'p.ini'), `[databases]\napp = host=127.0.0.1 port=${cluster.port}\n[pgrelay]\nlisten_port = ${port}\n`);
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/main.ts'), join(dir, 'p.ini')], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  t.teardown(() => child.kill('SIGKILL'));
  const until = async (re: RegExp): Promise<void> => {
    for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((res) => setTimeout(res, 50));
  };
  await until(/pgrelay listening/);
  child.kill('SIGUSR1');
  await until(/"event":"pause-request"/);
  child.kill('SIGUSR2');
  await until(/"event":"resume-request"/);
  t.match(out, /"event":"pause-request","by":"signal SIGUSR1"/);
  t.match(out, /"event":"resume-request","by":"signal SIGUSR2"/);
});
