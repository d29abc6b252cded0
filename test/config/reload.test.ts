// Reloading the config file (RELOAD on the console, SIGHUP in main.ts) on a running pgrelay in front
// of real PostgreSQL: admin token rotation, refused files that keep the old config, the warnings a
// reload logs, and that `changed` names only what took effect.

import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import pg from 'pg';
import { App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { startCluster, freePort } from '../harness/pg-cluster.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface Running {
  app: App;
  dir: string;
  file: string;
  port: number;
  adminPort: number;
  logs: LogLine[];
  /** Writes the config file: the [pgrelay] lines given, then [databases]; `listenPort` overrides the port. */
  write(main: string[], databases?: string[], listenPort?: number): void;
  /** RELOAD as the console runs it; returns the error message when refused. */
  reload(): string | null;
  status(token: string | null, path?: string): Promise<number>;
  query(database?: string): Promise<string>;
}

const WARN = 40;
const ERROR = 50;

async function startFromFile(t: Test, main: string[], databases?: string[]): Promise<Running> {
  const dir = t.testdir({});
  const file = join(dir, 'pgrelay.ini');
  const port = await freePort();
  const adminPort = await freePort();
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const write = (m: string[], dbs = [`app = host=127.0.0.1 port=${cluster.port} dbname=postgres`], listenPort = port): void => {
    const base = ['listen_addr = 127.0.0.1', `listen_port = ${listenPort}`, 'auth_type = trust', 'admin_listen_addr = 127.0.0.1', `admin_listen_port = ${adminPort}`];
    writeFileSync(file, ['[pgrelay]', ...base, ...m, '', '[databases]', ...dbs, ''].join('\n'));
  };
  write(main, databases);
  const app = new App(loadConfig(file), { logger: pino({ level: 'info' }, sink) });
  await app.start();
  t.teardown(() => app.stop(200));
  return {
    app,
    dir,
    file,
    port,
    adminPort,
    logs,
    write,
    reload: () => {
      try {
        app.control.reload();
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
    status: async (token, path = '/v1/state') => {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.status;
    },
    query: async (database = 'app') => {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database });
      await c.connect();
      try {
        return String((await c.query('select 1 as one')).rows[0].one);
      } finally {
        await c.end();
      }
    },
  };
}

const reloaded = (logs: LogLine[]): LogLine | undefined => logs.filter((l) => l.msg === 'configuration reloaded').at(-1);

t.test('S2: a new admin_token takes effect on reload; the old one is refused', async (t) => {
  const r = await startFromFile(t, ['admin_token = token-one']);
  t.equal(await r.status('token-one'), 200, 'the first token works');
  t.equal(await r.status('token-two'), 401);

  r.write(['admin_token = token-two']);
  t.equal(r.reload(), null);
  t.same(reloaded(r.logs)?.['changed'], ['admin_token']);
  t.equal(await r.status('token-two'), 200, 'the new token is accepted');
  t.equal(await r.status('token-one'), 401, 'the old token is refused');
  t.equal(await r.status(null, '/health/live'), 200, 'probes still need none');
});

t.test('S2: admin_token_file: switching to it, and its contents changing under the same key', async (t) => {
  const r = await startFromFile(t, ['admin_token = token-one']);
  const tokenFile = join(r.dir, 'admin.token');
  writeFileSync(tokenFile, 'token-three\n');
  r.write([`admin_token_file = ${tokenFile}`]);
  t.equal(r.reload(), null);
  t.same(reloaded(r.logs)?.['changed'], ['admin_token', 'admin_token_file']);
  t.equal(await r.status('token-three'), 200, 'the token from the file is accepted');
  t.equal(await r.status('token-one'), 401, 'the old admin_token is refused');

  writeFileSync(tokenFile, 'token-four\n');
  t.equal(r.reload(), null);
  t.same(reloaded(r.logs)?.['changed'], ['admin_token_file'], 'the file changed though the key did not');
  t.equal(await r.status('token-four'), 200, 'the new contents are accepted');
  t.equal(await r.status('token-three'), 401, 'the old contents are refused');

  t.equal(r.reload(), null, 'a reload with nothing changed');
  t.same(reloaded(r.logs)?.['changed'], [], 'reports nothing');

  // A token file caught empty (truncated mid-rotation) must not open the API, nor lock everyone out.
  writeFileSync(tokenFile, '\n');
  t.match(r.reload(), /admin_token_file .*admin\.token is empty/);
  t.equal(await r.status('token-four'), 200, 'refused: the last token still works');
  t.equal(await r.status(null), 401, 'and no token is still refused');
  writeFileSync(tokenFile, 'token-five');
  r.write([`admin_token_file = ${join(r.dir, 'missing.token')}`]);
  t.match(r.reload(), /admin_token_file .*missing\.token.*ENOENT/);
  t.equal(await r.status('token-four'), 200, 'an unreadable token file is refused too');
});

t.test('C1: an empty file, or one without a main section or [databases], is refused on reload', async (t) => {
  const r = await startFromFile(t, []);
  t.equal(await r.query(), '1');
  const cases: Array<[string, string]> = [
    ['empty', ''],
    ['no main section', `[databases]\napp = host=127.0.0.1 port=${cluster.port} dbname=postgres\n`],
    ['no [databases]', `[pgrelay]\nlisten_port = ${r.port}\n`],
  ];
  for (const [name, text] of cases) {
    writeFileSync(r.file, text);
    r.logs.length = 0;
    const err = r.reload();
    t.match(err, new RegExp(`${r.file.replace(/[.]/g, '\\.')}: (main section missing|no \\[databases\\] section)`), `${name}: RELOAD fails naming the file`);
    const logged = r.logs.find((l) => l.level === ERROR);
    t.match(logged, { file: r.file, msg: /reload refused.*keeping the current configuration/ }, `${name}: logged as an error naming the file`);
    t.notOk(reloaded(r.logs), `${name}: nothing reloaded`);
    t.same([...r.app.config.databases.keys()], ['app'], `${name}: the databases are kept`);
    t.equal(await r.query(), '1', `${name}: clients still reach the database`);
  }
});

t.test('C3: a reload logs the same warnings as startup (file, line, key, message)', async (t) => {
  const r = await startFromFile(t, ['listen_backlog = 4096', 'tcp_keepidle = 30'], [`app = host=127.0.0.1 port=${cluster.port} dbname=postgres keepalives_idle=1`]);
  const warnings = (from: LogLine[]): unknown[] => from.filter((l) => l.level === WARN && typeof l['file'] === 'string').map((l) => ({ file: l['file'], line: l['line'], key: l['key'], msg: l.msg }));
  const atStart = warnings(r.logs);
  t.same(
    atStart.map((w) => (w as { key: string }).key),
    ['listen_backlog', 'tcp_keepidle', 'keepalives_idle'],
    'startup warns about the tuning keys pgrelay does not implement, in [pgrelay] and [databases]',
  );
  r.logs.length = 0;
  t.equal(r.reload(), null);
  t.same(warnings(r.logs), atStart, 'the reload says exactly the same');

  // A warning that appears only in the reloaded file is reported too.
  r.write(['so_reuseport = 0']);
  r.logs.length = 0;
  t.equal(r.reload(), null);
  t.match(warnings(r.logs), [{ file: r.file, line: 7, key: 'so_reuseport', msg: /"so_reuseport" is a PgBouncer setting parsed but not implemented/ }]);
});

t.test('the audit: restart-only keys are not reported as changed, and their running value stays visible', async (t) => {
  const r = await startFromFile(t, []);
  const otherPort = await freePort();
  r.write(['pool_mode = session', 'logfile = pgrelay.log'], undefined, otherPort);
  r.logs.length = 0;
  t.equal(r.reload(), null);
  const line = reloaded(r.logs);
  t.same(line?.['changed'], [], 'nothing that took effect');
  t.same(line?.['needsRestart'], ['listen_port', 'pool_mode', 'logfile'], 'each needs a restart');
  const config = Object.fromEntries(r.app.control.config().map((row) => [row.key, row]));
  t.equal(config['listen_port']?.value, String(r.port), 'SHOW CONFIG shows the port still listened on');
  t.equal(config['pool_mode']?.value, 'transaction', 'and the pool mode still in use');
  t.equal(config['logfile']?.value, '', 'and the log destination still in use');
  t.equal(await r.query(), '1', 'clients still connect on the old port');
});

t.test('the audit: log_level and tcp_keepalive take effect on reload', async (t) => {
  const r = await startFromFile(t, []);
  t.notOk(r.app.ctx.logger.isLevelEnabled('debug'));
  r.write(['log_level = debug']);
  t.equal(r.reload(), null);
  t.same(reloaded(r.logs)?.['changed'], ['log_level']);
  t.ok(r.app.ctx.logger.isLevelEnabled('debug'), 'debug lines are now logged');
  r.write(['verbose = 0']);
  t.equal(r.reload(), null);
  t.notOk(r.app.ctx.logger.isLevelEnabled('debug'), 'and back');

  // tcp_keepalive: the client listener set it at startup; a reload must reach clients accepted later.
  // ss shows a keepalive timer on a socket with SO_KEEPALIVE set, and none without.
  const keepaliveOfNewClient = async (): Promise<boolean> => {
    const c = new pg.Client({ host: '127.0.0.1', port: r.port, user: 'postgres', database: 'app' });
    await c.connect();
    try {
      const local = (c as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort;
      // pgrelay's end of this client's connection: source port = listen port, peer = the client's port.
      const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${r.port} and dport = :${local} )`], { encoding: 'utf8' });
      t.ok(out.trim() !== '', `ss lists pgrelay's socket for the client on port ${local}`);
      return /timer:\(keepalive/.test(out);
    } finally {
      await c.end();
    }
  };
  t.equal(await keepaliveOfNewClient(), true, 'tcp_keepalive = 1 (the default): client sockets have keepalive');
  r.write(['tcp_keepalive = 0']);
  t.equal(r.reload(), null);
  t.same(reloaded(r.logs)?.['changed'], ['tcp_keepalive']);
  t.equal(await keepaliveOfNewClient(), false, 'a client accepted after the reload has none');
  r.write(['tcp_keepalive = 1']);
  t.equal(r.reload(), null);
  t.equal(await keepaliveOfNewClient(), true, 'and back');
});
