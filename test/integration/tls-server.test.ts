// TLS between pgrelay and PostgreSQL (server_tls_*), against a PostgreSQL that accepts only TLS
// (ssl=on, hostssl scram-sha-256, hostnossl reject): verify-full and verify-ca, a wrong host name
// and a wrong CA refused, disable refused by the server, require against a plaintext server,
// allow's retry, a client certificate towards PostgreSQL, pgrelay's own verification login, and
// a server that sends plaintext behind its 'S' (CVE-2021-23222).

import t from 'tap';
import net from 'node:net';
import { queryOutcome } from '../harness/login-outcome.js';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay, type RelayOptions } from '../harness/relay.js';
import { TestCa } from '../harness/tls-certs.js';
import type { Settings } from '../../src/config/types.js';

const ca = TestCa.create();
t.teardown(() => ca.cleanup());
// The server's certificate names localhost only: 127.0.0.1 is a wrong host name for verify-full.
const pgCert = ca.server('postgres', 'localhost', ['DNS:localhost']);
const certUser = ca.client('certuser', 'certuser');
const otherCa = TestCa.create('other-ca');
t.teardown(() => otherCa.cleanup());

const tlsOnly = await startCluster({
  users: [
    { name: 'alice', password: 'alice-secret', encryption: 'scram-sha-256' },
    { name: 'certuser', password: 'unused-password' },
    { name: 'lookup', password: 'lookup-secret', superuser: true },
    { name: 'bob', password: 'bob-secret', encryption: 'scram-sha-256' },
  ],
  settings: { ssl: 'on', ssl_cert_file: pgCert.cert, ssl_key_file: pgCert.key, ssl_ca_file: ca.cert },
  hba: [
    'hostssl all certuser 127.0.0.1/32 cert',
    'hostssl all all 127.0.0.1/32 scram-sha-256',
    'hostnossl all all 127.0.0.1/32 reject',
  ],
});
t.teardown(() => tlsOnly.destroy());
const plainPg = await startCluster();
t.teardown(() => plainPg.destroy());

async function relayTo(host: string, port: number, settings: Partial<Settings>, extra: RelayOptions = {}): Promise<Awaited<ReturnType<typeof startRelay>>> {
  return startRelay(
    { host, port },
    {
      settings: { authType: 'scram-sha-256', ...settings },
      authFile: { alice: 'alice-secret', postgres: '' },
      databases: { '*': { hosts: [{ host, port }] } },
      ...extra,
    },
  );
}

const SSL_IN_USE = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()';

t.test('verify-full: pgrelay reaches the TLS-only server, and its sessions are encrypted', async (t) => {
  const relay = await relayTo('localhost', tlsOnly.port, { serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert });
  t.teardown(() => relay.stop());
  t.equal(await queryOutcome(relay.port, 'alice', 'alice-secret', SSL_IN_USE), 'ok:true', 'the server sees TLS');
  t.equal(await queryOutcome(relay.port, 'alice', 'alice-secret', "select string_agg(g::text, ',') from generate_series(1, 20000) g"), `ok:${Array.from({ length: 20000 }, (_, i) => i + 1).join(',')}`, 'a large reply over TLS');
  t.match(await queryOutcome(relay.port, 'alice', 'wrong', 'select 1'), /^error:28P01:/, 'a wrong password is still 28P01');
});

t.test('verify-full with a host name the certificate does not carry: refused, clearly', async (t) => {
  const relay = await relayTo('127.0.0.1', tlsOnly.port, { serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert, queryWaitTimeoutMs: 5000 });
  t.teardown(() => relay.stop());
  const r = await queryOutcome(relay.port, 'alice', 'alice-secret', 'select 1');
  t.match(r, /^error:28000:.*certificate refused \(server_tls_sslmode = verify-full\).*127\.0\.0\.1/, r);
});

t.test('verify-ca checks the chain, not the name; another CA is refused', async (t) => {
  const relay = await relayTo('127.0.0.1', tlsOnly.port, { serverTlsSslmode: 'verify-ca', serverTlsCaFile: ca.cert });
  t.teardown(() => relay.stop());
  t.equal(await queryOutcome(relay.port, 'alice', 'alice-secret', SSL_IN_USE), 'ok:true');
  const wrongCa = await relayTo('localhost', tlsOnly.port, { serverTlsSslmode: 'verify-ca', serverTlsCaFile: otherCa.cert, queryWaitTimeoutMs: 5000 });
  t.teardown(() => wrongCa.stop());
  t.match(await queryOutcome(wrongCa.port, 'alice', 'alice-secret', 'select 1'), /^error:28000:.*certificate refused/);
});

t.test('disable: the TLS-only server refuses pgrelay (hostnossl reject), and the client is told', async (t) => {
  const relay = await relayTo('127.0.0.1', tlsOnly.port, { serverTlsSslmode: 'disable', queryWaitTimeoutMs: 5000 });
  t.teardown(() => relay.stop());
  t.match(await queryOutcome(relay.port, 'alice', 'alice-secret', 'select 1'), /^error:28000:.*pg_hba\.conf rejects connection.*no encryption/);
});

t.test('prefer and allow reach the TLS-only server over TLS; prefer falls back to plaintext elsewhere', async (t) => {
  for (const mode of ['prefer', 'allow', 'require'] as const) {
    const relay = await relayTo('127.0.0.1', tlsOnly.port, { serverTlsSslmode: mode });
    t.equal(await queryOutcome(relay.port, 'alice', 'alice-secret', SSL_IN_USE), 'ok:true', `${mode}: TLS`);
    await relay.stop();
  }
  const plain = await startRelay(plainPg, { settings: { serverTlsSslmode: 'prefer' } });
  t.teardown(() => plain.stop());
  t.equal(await queryOutcome(plain.port, 'postgres', 'x', SSL_IN_USE), 'ok:false', 'prefer with a server without TLS: plaintext');
});

t.test('require against a server without TLS: refused, never plaintext', async (t) => {
  const relay = await startRelay(plainPg, { settings: { serverTlsSslmode: 'require', queryWaitTimeoutMs: 5000 } });
  t.teardown(() => relay.stop());
  t.match(await queryOutcome(relay.port, 'postgres', 'x', 'select 1'), /^error:28000:.*does not support SSL, but server_tls_sslmode = require requires it/);
});

t.test('a client certificate towards PostgreSQL (server_tls_cert_file / key_file, hostssl cert)', async (t) => {
  const relay = await startRelay(
    { host: 'localhost', port: tlsOnly.port },
    {
      settings: { authType: 'trust', serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert, serverTlsCertFile: certUser.cert, serverTlsKeyFile: certUser.key },
      databases: { '*': { hosts: [{ host: 'localhost', port: tlsOnly.port }] } },
    },
  );
  t.teardown(() => relay.stop());
  t.equal(await queryOutcome(relay.port, 'certuser', '', 'select current_user'), 'ok:certuser', 'PostgreSQL accepted the certificate');
});

t.test("pgrelay's own verification login (used before a RESUME) goes over TLS too", async (t) => {
  const relay = await relayTo('localhost', tlsOnly.port, { serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert });
  t.teardown(() => relay.stop());
  t.equal(await queryOutcome(relay.port, 'alice', 'alice-secret', 'select 1'), 'ok:1');
  const entry = relay.app.ctx.registry.attach('postgres', 'alice')!;
  t.teardown(() => relay.app.ctx.registry.detach(entry));
  t.equal(await relay.app.connector.verify(entry, { host: 'localhost', port: tlsOnly.port }), true, 'verify-full verification login');
  const insecure = await relayTo('localhost', tlsOnly.port, { serverTlsSslmode: 'disable' });
  t.teardown(() => insecure.stop());
  const e2 = insecure.app.ctx.registry.attach('postgres', 'alice')!;
  t.teardown(() => insecure.app.ctx.registry.detach(e2));
  t.equal(await insecure.app.connector.verify(e2, { host: 'localhost', port: tlsOnly.port }), false, 'without TLS the same verification fails');
});

t.test('a server that sends bytes behind its S is refused (CVE-2021-23222)', async (t) => {
  const fake = net.createServer((s) => {
    s.once('data', () => s.write(Buffer.concat([Buffer.from('S'), Buffer.from('R\0\0\0\x08\0\0\0\0')])));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  t.teardown(() => fake.close());
  const port = (fake.address() as net.AddressInfo).port;
  const relay = await startRelay({ host: '127.0.0.1', port }, { settings: { serverTlsSslmode: 'require', queryWaitTimeoutMs: 3000 } });
  t.teardown(() => relay.stop());
  const r = await queryOutcome(relay.port, 'postgres', 'x', 'select 1');
  t.match(r, /^error:08P01:.*sent unencrypted data after its SSL response/, r);
});

t.test('auth_query lookups reach the TLS-only server over TLS too', async (t) => {
  const relay = await startRelay(
    { host: 'localhost', port: tlsOnly.port },
    {
      settings: { authType: 'scram-sha-256', authUser: 'lookup', serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert },
      authFile: { lookup: 'lookup-secret' },
      databases: { '*': { hosts: [{ host: 'localhost', port: tlsOnly.port }] } },
    },
  );
  t.teardown(() => relay.stop());
  t.equal(await queryOutcome(relay.port, 'bob', 'bob-secret', SSL_IN_USE), 'ok:true', 'bob (only in PostgreSQL) is looked up and logged in over TLS');
  t.match(await queryOutcome(relay.port, 'bob', 'wrong', 'select 1'), /^error:28P01:/);
  const plain = await startRelay(
    { host: 'localhost', port: tlsOnly.port },
    {
      settings: { authType: 'scram-sha-256', authUser: 'lookup', serverTlsSslmode: 'disable', authQueryTimeoutMs: 2000 },
      authFile: { lookup: 'lookup-secret' },
      databases: { '*': { hosts: [{ host: 'localhost', port: tlsOnly.port }] } },
    },
  );
  t.teardown(() => plain.stop());
  t.match(await queryOutcome(plain.port, 'bob', 'bob-secret', 'select 1'), /^error:08006:/, 'without server TLS the lookup is refused by the server: the login fails closed');
});
