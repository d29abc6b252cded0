// cert-manager-style rotation under load: pgrelay runs through its CLI with TLS on both sides,
// pgbench runs over TLS (long-lived clients and a new connection per transaction), the certificate
// and key files are replaced under the same names and pgrelay gets SIGHUP. pgbench must see no
// failure and new clients must see the new certificate. A rotation that brings a key that does
// not match its certificate is refused, and the running certificate stays.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, pgbench, startCluster } from '../harness/pg-cluster.js';
import { TestCa } from '../harness/tls-certs.js';
import { spawnRelay } from '../harness/spawned-relay.js';

const ca = TestCa.create();
t.teardown(() => ca.cleanup());
const pgCert = ca.server('postgres', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
const cluster = await startCluster({
  settings: { ssl: 'on', ssl_cert_file: pgCert.cert, ssl_key_file: pgCert.key },
  hba: ['hostssl all all 127.0.0.1/32 trust', 'hostnossl all all 127.0.0.1/32 reject'],
});
t.teardown(() => cluster.destroy());

/** SSLRequest, 'S', then the handshake: the certificate pgrelay presents to a new client. */
async function fingerprintOf(port: number): Promise<string> {
  const raw = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => {
    raw.once('connect', r);
    raw.once('error', j);
  });
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(80877103, 4);
  raw.write(req);
  const answer = await new Promise<string>((r) => raw.once('data', (d: Buffer) => r(d.toString())));
  if (answer !== 'S') throw new Error(`SSLRequest answered ${answer}`);
  const secure = tls.connect({ socket: raw, servername: 'localhost', ca: readFileSync(ca.cert) });
  await new Promise<void>((r, j) => {
    secure.once('secureConnect', r);
    secure.once('error', j);
  });
  const fp = secure.getPeerCertificate().fingerprint256;
  secure.destroy();
  return fp;
}

t.test('rotation under pgbench load: SIGHUP, no failure, new clients see the new certificate', async (t) => {
  const dir = t.testdir({});
  const first = ca.server('relay-1', 'localhost', ['DNS:localhost']);
  const second = ca.server('relay-2', 'localhost', ['DNS:localhost']);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  // As a Kubernetes secret volume changes: new files appear at once, never half-written.
  const install = (pair: { cert: string; key: string }): void => {
    copyFileSync(pair.cert, `${certFile}.new`);
    copyFileSync(pair.key, `${keyFile}.new`);
    renameSync(`${keyFile}.new`, keyFile);
    renameSync(`${certFile}.new`, certFile);
  };
  install(first);
  const port = await freePort();
  const ini = join(dir, 'pgrelay.ini');
  writeFileSync(
    ini,
    [
      '[pgrelay]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'auth_type = trust',
      'log_connections = 0',
      'log_disconnections = 0',
      'default_pool_size = 8',
      'client_tls_sslmode = require',
      `client_tls_cert_file = ${certFile}`,
      `client_tls_key_file = ${keyFile}`,
      'server_tls_sslmode = verify-full',
      `server_tls_ca_file = ${ca.cert}`,
      '',
      '[databases]',
      `postgres = host=localhost port=${cluster.port}`,
      '',
    ].join('\n'),
  );
  const init = await pgbench(['-h', 'localhost', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', '1', '-q', 'postgres'], { PGSSLMODE: 'require' });
  t.equal(init.code, 0, init.stderr);
  const relay = spawnRelay(t, [ini]);
  await relay.waitFor((l) => l.msg === 'pgrelay listening');
  t.equal(await fingerprintOf(port), TestCa.fingerprint(first.cert), 'the first certificate');

  const env = { PGSSLMODE: 'require' };
  const base = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-n', '-S', '-T', '8'];
  const t0 = Date.now();
  const longLived = pgbench([...base, '-c', '6', '-j', '2', 'postgres'], env);
  const reconnecting = pgbench([...base, '-C', '-c', '2', '-j', '1', 'postgres'], env);
  await new Promise((r) => setTimeout(r, 3000));
  install(second);
  const mark = relay.lines.length;
  relay.child.kill('SIGHUP');
  const reloaded = await relay.waitFor((l) => l.msg === 'configuration reloaded', 10_000, mark);
  t.ok((reloaded['changed'] as string[]).includes('client_tls_cert_file'), `the reload reports the new certificate (changed: ${JSON.stringify(reloaded['changed'])})`);
  t.equal(await fingerprintOf(port), TestCa.fingerprint(second.cert), 'a new client sees the new certificate');

  // A bad rotation: the second certificate with the first one's key. Refused, and nothing changes.
  await new Promise((r) => setTimeout(r, 1000));
  copyFileSync(first.key, `${keyFile}.new`);
  renameSync(`${keyFile}.new`, keyFile);
  const mark2 = relay.lines.length;
  relay.child.kill('SIGHUP');
  const refused = await relay.waitFor((l) => /reload refused/.test(l.msg), 10_000, mark2);
  t.equal(refused['file'], ini, 'the refusal names the config file');
  t.match(String(refused['reason']), /client_tls_cert_file|TLS key or certificate refused/, `and the reason: ${String(refused['reason'])}`);
  t.ok(typeof refused['line'] === 'number' && (refused['line'] as number) > 0, 'and the line');
  t.equal(await fingerprintOf(port), TestCa.fingerprint(second.cert), 'the running certificate stays');

  const [a, b] = await Promise.all([longLived, reconnecting]);
  t.comment(`pgbench over ${((Date.now() - t0) / 1000).toFixed(1)} s: long-lived ${a.processed} transactions (${a.tps?.toFixed(0)} tps), failed ${a.failed}; reconnecting ${b.processed} (${b.tps?.toFixed(0)} tps), failed ${b.failed}`);
  t.equal(a.code, 0, a.stderr);
  t.equal(b.code, 0, b.stderr);
  t.equal(a.failed ?? 0, 0, 'long-lived clients: 0 failed transactions');
  t.equal(b.failed ?? 0, 0, 'a new TLS connection per transaction: 0 failed');
  t.ok((a.processed ?? 0) > 0 && (b.processed ?? 0) > 0, `both ran (${a.processed}, ${b.processed})`);
  relay.child.kill('SIGTERM');
  t.equal((await relay.exited).code, 0);
});

t.test('tls_file_check_period: files rotated in place are loaded without a SIGHUP; a bad pair is not', async (t) => {
  const { startRelay } = await import('../harness/relay.js');
  const pg = await import('pg');
  const dir = t.testdir({});
  const first = ca.server('watch-1', 'localhost', ['DNS:localhost']);
  const second = ca.server('watch-2', 'localhost', ['DNS:localhost']);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  copyFileSync(first.cert, certFile);
  copyFileSync(first.key, keyFile);
  const relay = await startRelay(
    { host: 'localhost', port: cluster.port },
    {
      settings: { clientTlsSslmode: 'require', clientTlsCertFile: certFile, clientTlsKeyFile: keyFile, serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert, tlsFileCheckPeriodMs: 200 },
      databases: { '*': { hosts: [{ host: 'localhost', port: cluster.port }] } },
    },
  );
  t.teardown(() => relay.stop());
  t.equal(await fingerprintOf(relay.port), TestCa.fingerprint(first.cert));
  const open = new pg.default.Client({ host: 'localhost', port: relay.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(ca.cert), servername: 'localhost' } });
  await open.connect();
  t.teardown(() => open.end());

  copyFileSync(second.key, `${keyFile}.new`);
  copyFileSync(second.cert, `${certFile}.new`);
  renameSync(`${keyFile}.new`, keyFile);
  renameSync(`${certFile}.new`, certFile);
  const deadline = Date.now() + 5000;
  let seen = '';
  while (Date.now() < deadline && (seen = await fingerprintOf(relay.port)) !== TestCa.fingerprint(second.cert)) await new Promise((r) => setTimeout(r, 100));
  t.equal(seen, TestCa.fingerprint(second.cert), 'new clients see the rotated certificate, no SIGHUP sent');
  t.equal((await open.query('select 1 as one')).rows[0].one, 1, 'a connection opened before keeps its session');

  copyFileSync(first.key, `${keyFile}.new`);
  renameSync(`${keyFile}.new`, keyFile);
  await new Promise((r) => setTimeout(r, 800));
  t.equal(await fingerprintOf(relay.port), TestCa.fingerprint(second.cert), 'a key that does not match is not loaded: the running certificate stays');
});
