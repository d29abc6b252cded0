// The process edge (src/main.ts) as a spawned pgrelay in front of real PostgreSQL: config files
// refused at startup and by --check, SIGHUP with a refused file or a rotated admin token, and
// shutdown: console SHUTDOWN, a held-up graceful shutdown, and a second SIGTERM that ends it now.

import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, freePort } from '../harness/pg-cluster.js';
import { spawnRelay, type LogLine, type SpawnedRelay } from '../harness/spawned-relay.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

interface Setup {
  dir: string;
  file: string;
  port: number;
  adminPort: number;
  write(main: string[]): void;
}

async function configFile(t: Test, main: string[]): Promise<Setup> {
  const dir = t.testdir({});
  const file = join(dir, 'pgrelay.ini');
  const port = await freePort();
  const adminPort = await freePort();
  const write = (m: string[]): void => {
    writeFileSync(
      file,
      [
        '[pgrelay]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'auth_type = trust',
        'admin_users = admin',
        'admin_listen_addr = 127.0.0.1',
        `admin_listen_port = ${adminPort}`,
        'log_connections = 0',
        ...m,
        '',
        '[databases]',
        `app = host=127.0.0.1 port=${cluster.port} dbname=postgres`,
        '',
      ].join('\n'),
    );
  };
  write(main);
  return { dir, file, port, adminPort, write };
}

async function client(port: number, database = 'app', user = 'postgres'): Promise<pg.Client & { errors: Error[] }> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, database }) as pg.Client & { errors: Error[] };
  c.errors = [];
  c.on('error', (e) => c.errors.push(e));
  await c.connect();
  return c;
}

const listening = (l: LogLine): boolean => l.msg === 'pgrelay listening';
const alive = (s: SpawnedRelay): boolean => s.child.exitCode === null && s.child.signalCode === null;

t.test('startup and --check refuse a file without its main section or [databases], naming the file (exit 1)', async (t) => {
  const port = await freePort();
  const dir = t.testdir({ 'empty.ini': '', 'nodb.ini': `[pgrelay]\nlisten_port = ${port}\n`, 'nomain.ini': '[databases]\napp = host=x\n' });
  const cases: Array<[string, RegExp]> = [
    ['empty.ini', /main section missing/],
    ['nodb.ini', /no \[databases\] section/],
    ['nomain.ini', /main section missing: no \[pgbouncer\] or \[pgrelay\] section/],
  ];
  for (const [name, reason] of cases) {
    for (const args of [['--check'], []]) {
      const s = spawnRelay(t, [...args, join(dir, name)]);
      // A file that is accepted starts a pooler that never exits by itself.
      const code = await Promise.race([s.exited.then((e) => e.code), new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000))]);
      s.child.kill('SIGKILL');
      t.equal(code, 1, `${args.join(' ')} ${name}: exit 1`);
      t.match(s.stderr(), `pgrelay: ${join(dir, name)}: `, `${args.join(' ')} ${name}: stderr names the file`);
      t.match(s.stderr(), reason, `${args.join(' ')} ${name}: and the reason`);
    }
  }
});

t.test('SIGHUP: a refused file keeps the running config; a rotated admin token applies', async (t) => {
  const cfg = await configFile(t, ['admin_token = token-one']);
  const s = spawnRelay(t, [cfg.file]);
  await s.waitFor(listening);
  const status = async (token: string): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${cfg.adminPort}/v1/state`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return res.status;
  };
  const query = async (): Promise<unknown> => {
    const c = await client(cfg.port);
    try {
      return (await c.query('select 1 as one')).rows[0].one;
    } finally {
      await c.end();
    }
  };
  t.equal(await query(), 1);
  t.equal(await status('token-one'), 200);

  writeFileSync(cfg.file, '');
  s.child.kill('SIGHUP');
  const refused = await s.waitFor((l) => /reload refused/.test(l.msg));
  t.match(refused, { level: 50, file: cfg.file, err: /main section missing/ }, 'an error naming the file and the reason');
  t.equal(await query(), 1, 'clients still reach the database');
  t.equal(await status('token-one'), 200, 'the admin token is unchanged');

  cfg.write(['admin_token = token-two']);
  s.child.kill('SIGHUP');
  const reloaded = await s.waitFor((l) => l.msg === 'configuration reloaded');
  t.same(reloaded['changed'], ['admin_token']);
  t.equal(await status('token-two'), 200, 'the new token is accepted');
  t.equal(await status('token-one'), 401, 'the old one is refused');

  s.child.kill('SIGTERM');
  t.equal((await s.exited).code, 0);
});

t.test('console SHUTDOWN: the console that sent it gets its reply and is closed; it does not hold the shutdown', async (t) => {
  const cfg = await configFile(t, ['shutdown_timeout = 20']);
  const s = spawnRelay(t, [cfg.file]);
  await s.waitFor(listening);
  const other = await client(cfg.port, 'pgbouncer', 'admin');
  const admin = await client(cfg.port, 'pgbouncer', 'admin');
  const closed = new Promise<number>((resolve) => admin.on('end', () => resolve(Date.now())));
  const otherClosed = new Promise<number>((resolve) => other.on('end', () => resolve(Date.now())));
  const sent = Date.now();
  const reply = await admin.query('SHUTDOWN');
  t.equal(reply.command, 'SHUTDOWN', 'the SHUTDOWN reply arrives');
  const { code, at } = await s.exited;
  t.equal(code, 0);
  t.ok(at - sent < 5000, `exited ${at - sent} ms after SHUTDOWN with the console sessions left open (shutdown_timeout is 20 s)`);
  t.ok((await closed) - sent < 5000, 'the console connection was closed');
  t.ok((await otherClosed) - sent < 5000, 'the other, idle console session too');
  t.match(other.errors.map((e) => e.message).join(), /pgrelay is shutting down/, 'told why');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`a second ${signal} during a shutdown held up by a transaction stops at once`, async (t) => {
    const cfg = await configFile(t, ['shutdown_timeout = 20']);
    const s = spawnRelay(t, [cfg.file]);
    await s.waitFor(listening);
    const c = await client(cfg.port);
    await c.query('begin');
    await c.query('select 1');
    s.child.kill(signal);
    await s.waitFor((l) => l.msg === 'shutting down');
    await new Promise((r) => setTimeout(r, 1000));
    t.ok(alive(s), `the first ${signal} waits for the open transaction`);
    const second = Date.now();
    s.child.kill(signal);
    const { code, at } = await s.exited;
    t.equal(code, 0);
    t.ok(at - second < 3000, `exited ${at - second} ms after the second ${signal} (shutdown_timeout is 20 s)`);
    t.ok(s.lines.some((l) => l.msg === 'second shutdown request: closing every connection now'), 'logged');
    t.match(c.errors.map((e) => e.message).join(), /pgrelay is shutting down/, 'the client in a transaction was told and disconnected');
  });
}

t.test('SIGTERM after console SHUTDOWN, the console still open and a transaction holding the shutdown, stops at once', async (t) => {
  const cfg = await configFile(t, ['shutdown_timeout = 20']);
  const s = spawnRelay(t, [cfg.file]);
  await s.waitFor(listening);
  const c = await client(cfg.port);
  await c.query('begin');
  const admin = await client(cfg.port, 'pgbouncer', 'admin');
  t.equal((await admin.query('SHUTDOWN')).command, 'SHUTDOWN');
  await s.waitFor((l) => l.msg === 'shutting down');
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(alive(s), 'the transaction holds the graceful shutdown');
  const sent = Date.now();
  s.child.kill('SIGTERM');
  const { code, at } = await s.exited;
  t.equal(code, 0);
  t.ok(at - sent < 3000, `exited ${at - sent} ms after SIGTERM`);
});
