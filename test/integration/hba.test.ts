// auth_type = hba end to end: each connection type (local over the Unix socket, host, hostssl,
// hostnossl) and each method (trust, reject, md5, scram-sha-256, password, cert), allowed and
// refused, with real clients; then a reload that brings a bad file (refused, with file:line, the
// old rules still in force) and one that brings new rules (in force at once).

import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { TestCa } from '../harness/tls-certs.js';
import { md5Hash } from '../../src/auth/md5.js';
import { ConfigError, type Config } from '../../src/config/types.js';
import { buildConfig } from '../../src/config/load.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const ca = TestCa.create();
t.teardown(() => ca.cleanup());
const relayCert = ca.server('pgrelay', 'localhost', ['DNS:localhost']);
const certAlice = ca.client('alice', 'alice');
const certBob = ca.client('bob-cert', 'bob');
const dir = mkdtempSync(join(tmpdir(), 'pgrelay-hba-it-'));
const socketDir = mkdtempSync(join(tmpdir(), 'pgrelay-hba-sock-'));
const hbaFile = join(dir, 'hba.conf');

const RULES = [
  'local   all  trusted            trust',
  'local   all  all                reject',
  'hostssl all  alice   all        cert',
  'hostssl all  carol   all        scram-sha-256',
  'hostnossl all carol  all        reject',
  'host    all  dave    127.0.0.1/32 md5',
  'host    all  erin    127.0.0.0 255.0.0.0 password',
  'host    all  frank   10.0.0.0/8 trust',
  'host    all  trusted all        trust',
  'hostssl all  bob     all        cert',
].join('\n');
writeFileSync(hbaFile, `${RULES}\n`);

const relay = await startRelay(cluster, {
  settings: {
    authType: 'hba',
    authHbaFile: hbaFile,
    unixSocketDir: socketDir,
    // The Unix socket is named after the port (.s.PGSQL.<port>), so it needs a fixed one.
    listenPort: await freePort(),
    clientTlsSslmode: 'prefer',
    clientTlsCertFile: relayCert.cert,
    clientTlsKeyFile: relayCert.key,
    clientTlsCaFile: ca.cert,
  },
  authFile: { carol: 'carol-secret', dave: md5Hash('dave-secret', 'dave'), erin: 'erin-secret', trusted: 'x', frank: 'x', postgres: '' },
  // Every client lands on PostgreSQL as postgres (trust there): this test is about pgrelay's rules.
  databases: { '*': { hosts: [{ host: cluster.host, port: cluster.port }], dbname: 'postgres', user: 'postgres' } },
});
t.teardown(() => relay.stop());

interface Attempt {
  user: string;
  password?: string;
  tls?: 'none' | 'plain' | { cert: string; key: string };
  unix?: boolean;
}

async function attempt(a: Attempt): Promise<string> {
  const ssl =
    a.tls === undefined || a.tls === 'none'
      ? false
      : a.tls === 'plain'
        ? { ca: readFileSync(ca.cert), servername: 'localhost' }
        : { ca: readFileSync(ca.cert), servername: 'localhost', cert: readFileSync(a.tls.cert), key: readFileSync(a.tls.key) };
  const c = new pg.Client({
    host: a.unix === true ? socketDir : 'localhost',
    port: relay.port,
    user: a.user,
    database: 'app',
    ...(a.password !== undefined && { password: a.password }),
    ssl: a.unix === true ? false : ssl,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query('select 1 as one');
    await c.end();
    return `ok:${r.rows[0].one}`;
  } catch (err) {
    const e = err as { code?: string; message: string };
    return `error:${e.code ?? ''}:${e.message}`;
  }
}

t.test('local (Unix socket): trust and reject', async (t) => {
  t.equal(await attempt({ user: 'trusted', unix: true }), 'ok:1', 'local trust');
  t.match(await attempt({ user: 'carol', unix: true, password: 'carol-secret' }), /^error:28000:pg_hba\.conf rejects connection for host "\[local\]", user "carol", database "app", no encryption$/);
});

t.test('hostssl and hostnossl: scram-sha-256 over TLS, reject in plaintext', async (t) => {
  t.equal(await attempt({ user: 'carol', password: 'carol-secret', tls: 'plain' }), 'ok:1', 'hostssl scram-sha-256');
  t.match(await attempt({ user: 'carol', password: 'wrong', tls: 'plain' }), /^error:28P01:/, 'wrong password: 28P01');
  t.match(await attempt({ user: 'carol', password: 'carol-secret' }), /^error:28000:pg_hba\.conf rejects connection.*user "carol".*no encryption/, 'hostnossl reject');
});

t.test('host lines: md5, password (address + mask), address ranges, trust; no line', async (t) => {
  t.equal(await attempt({ user: 'dave', password: 'dave-secret' }), 'ok:1', 'host md5 (plaintext)');
  t.equal(await attempt({ user: 'dave', password: 'dave-secret', tls: 'plain' }), 'ok:1', 'host matches TLS too');
  t.match(await attempt({ user: 'dave', password: 'nope' }), /^error:28P01:/);
  t.equal(await attempt({ user: 'erin', password: 'erin-secret' }), 'ok:1', 'password method (cleartext exchange)');
  t.match(await attempt({ user: 'erin', password: 'nope' }), /^error:28P01:/);
  t.match(await attempt({ user: 'frank' }), /^error:28000:no pg_hba\.conf entry for host "127\.0\.0\.1", user "frank", database "app", no encryption$/, '10.0.0.0/8 does not match a loopback client');
  t.equal(await attempt({ user: 'trusted' }), 'ok:1', 'host trust');
  t.match(await attempt({ user: 'mallory', password: 'x', tls: 'plain' }), /^error:28000:no pg_hba\.conf entry for host "127\.0\.0\.1", user "mallory", database "app", SSL encryption$/);
});

t.test('cert: a verified client certificate whose CN is the user', async (t) => {
  t.equal(await attempt({ user: 'alice', tls: certAlice }), 'ok:1', 'CN alice logs in as alice, no password');
  t.match(await attempt({ user: 'alice', tls: 'plain' }), /^error:28000:certificate authentication failed for user "alice"$/, 'no certificate');
  t.match(await attempt({ user: 'alice', tls: certBob }), /^error:28000:certificate authentication failed for user "alice"$/, "bob's certificate does not log in alice");
  t.match(await attempt({ user: 'alice', password: 'x' }), /^error:28000:no pg_hba\.conf entry.*user "alice".*no encryption/, 'hostssl does not match plaintext');
});

t.test('reload: a bad file is refused with file:line and the old rules stay; a good one applies', async (t) => {
  writeFileSync(hbaFile, `${RULES}\nhost all all all ident\n`);
  const reload = (): unknown => {
    try {
      relay.app.reload(relay.app.config as Config);
      return null;
    } catch (err) {
      return err;
    }
  };
  const err = reload();
  t.ok(err instanceof ConfigError, 'refused');
  t.match(err, { file: hbaFile, line: 11, reason: /method "ident" is not supported/ });
  t.equal(await attempt({ user: 'trusted' }), 'ok:1', 'the old rules still apply');
  writeFileSync(hbaFile, 'host all all all reject\n');
  t.equal(reload(), null, 'a good file loads');
  t.match(await attempt({ user: 'trusted' }), /^error:28000:pg_hba\.conf rejects connection/, 'and applies to the next login');
  writeFileSync(hbaFile, `${RULES}\n`);
  t.equal(reload(), null);
});

t.test('auth_type = hba without auth_hba_file, or cert lines without a CA, are refused at startup', async (t) => {
  const { loadSecurity } = await import('../../src/auth/security.js');
  t.throws(() => loadSecurity(buildConfig({ settings: { authType: 'hba' } })), { name: 'ConfigError', reason: /auth_type = hba needs auth_hba_file/ });
  const certOnly = join(dir, 'cert-only.conf');
  writeFileSync(certOnly, '# cert users\nhostssl all all all cert\n');
  t.throws(() => loadSecurity(buildConfig({ settings: { authType: 'hba', authHbaFile: certOnly } })), { name: 'ConfigError', file: certOnly, line: 2, reason: /cert method needs client TLS/ });
  t.throws(() => loadSecurity(buildConfig({ settings: { authType: 'cert', clientTlsSslmode: 'require', clientTlsCertFile: relayCert.cert, clientTlsKeyFile: relayCert.key } })), {
    name: 'ConfigError',
    reason: /auth_type = cert needs client_tls_sslmode = verify-ca or verify-full/,
  });
});
