// TLS between clients and pgrelay (client_tls_*), with real clients: psql with verify-full and a
// wrong host name, a plaintext client under require, require against a pgrelay without TLS, node
// pg, pgbench with PGSSLMODE=require, client certificates under verify-ca, GSSENCRequest, and
// bytes pipelined behind an SSLRequest (CVE-2021-23214).

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { findPgBin, pgbench, run, startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { TestCa } from '../harness/tls-certs.js';
import { errorFields, startupMessage } from '../harness/wire-client.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());
const ca = TestCa.create();
t.teardown(() => ca.cleanup());
// pgrelay's certificate names localhost only: 127.0.0.1 is a wrong host name for verify-full.
const relayCert = ca.server('pgrelay', 'localhost', ['DNS:localhost']);
const alice = ca.client('alice', 'alice');
const otherCa = TestCa.create('other-ca');
t.teardown(() => otherCa.cleanup());
const mallory = otherCa.client('mallory', 'alice');

const tlsSettings = (mode: string) => ({
  clientTlsSslmode: mode as 'require',
  clientTlsKeyFile: relayCert.key,
  clientTlsCertFile: relayCert.cert,
  clientTlsCaFile: ca.cert,
});

async function psql(port: number, host: string, env: Record<string, string>, sql = 'select 1'): Promise<{ code: number; out: string }> {
  const r = await run(join(findPgBin(), 'psql'), ['-X', '-A', '-t', '-w', '-h', host, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', PGCONNECT_TIMEOUT: '10', ...env },
    timeoutMs: 30_000,
  });
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}

t.test('client_tls_sslmode = require: psql verify-full, wrong host name, plaintext refused', async (t) => {
  const relay = await startRelay(cluster, { settings: tlsSettings('require') });
  t.teardown(() => relay.stop());
  const verifyFull = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca.cert };
  const ok = await psql(relay.port, 'localhost', verifyFull, 'show ssl');
  t.equal(ok.code, 0, `psql verify-full to localhost: ${ok.out}`);
  t.equal(ok.out, 'off', 'the query reached PostgreSQL (whose own connection is plaintext here)');
  const wrongName = await psql(relay.port, '127.0.0.1', verifyFull);
  t.not(wrongName.code, 0, 'verify-full to a name the certificate does not carry fails');
  t.match(wrongName.out, /does not match host name "127\.0\.0\.1"/);
  const otherRoot = await psql(relay.port, 'localhost', { PGSSLMODE: 'verify-full', PGSSLROOTCERT: otherCa.cert });
  t.not(otherRoot.code, 0, 'a certificate from another CA fails verify-full');
  const plain = await psql(relay.port, '127.0.0.1', { PGSSLMODE: 'disable' });
  t.not(plain.code, 0);
  t.match(plain.out, /FATAL: {2}SSL required: client_tls_sslmode = require/, 'a plaintext client gets a clear FATAL');
});

t.test('sslmode=require against a pgrelay without client TLS fails clearly', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const r = await psql(relay.port, '127.0.0.1', { PGSSLMODE: 'require' });
  t.not(r.code, 0);
  t.match(r.out, /server does not support SSL, but SSL was required/);
  const prefer = await psql(relay.port, '127.0.0.1', { PGSSLMODE: 'prefer' });
  t.equal(prefer.code, 0, 'prefer falls back to plaintext when pgrelay answers N');
});

t.test('node pg over TLS, and pgbench with PGSSLMODE=require', async (t) => {
  const relay = await startRelay(cluster, { settings: tlsSettings('require') });
  t.teardown(() => relay.stop());
  const c = new pg.Client({ host: 'localhost', port: relay.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(ca.cert), servername: 'localhost' } });
  await c.connect();
  const stream = (c as unknown as { connection: { stream: net.Socket & { encrypted?: boolean; getProtocol?: () => string } } }).connection.stream;
  t.equal(stream.encrypted, true, 'the driver speaks TLS');
  t.match(stream.getProtocol?.(), /^TLSv1\.[23]$/);
  const r = await c.query('select count(*)::int as n from generate_series(1, 200000)');
  t.equal(r.rows[0].n, 200000);
  const big = await c.query("select repeat('x', 1000) as v from generate_series(1, 2000)");
  t.equal(big.rows.length, 2000, 'a 2 MB result crosses the TLS socket whole');
  await c.end();

});

t.test('pgbench -S with PGSSLMODE=require through pgrelay: no failures', async (t) => {
  await cluster.psql('select 1');
  const init = await pgbench(['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', '1', '-q', 'postgres']);
  t.equal(init.code, 0, init.stderr);
  const relay = await startRelay(cluster, { settings: tlsSettings('require') });
  t.teardown(() => relay.stop());
  const r = await pgbench(['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres', '-n', '-S', '-c', '8', '-j', '2', '-T', '3', 'postgres'], { PGSSLMODE: 'require' });
  t.equal(r.code, 0, r.stderr);
  t.ok((r.processed ?? 0) > 0, `transactions: ${r.processed}`);
  t.equal(r.failed ?? 0, 0);
  const plain = await pgbench(['-h', '127.0.0.1', '-p', String(relay.port), '-U', 'postgres', '-n', '-S', '-c', '1', '-T', '1', 'postgres'], { PGSSLMODE: 'disable' });
  t.not(plain.code, 0, 'the same pgbench in plaintext is refused');
  t.match(plain.stderr, /SSL required/);
});

t.test('verify-ca: client certificates are verified against client_tls_ca_file', async (t) => {
  const relay = await startRelay(cluster, { settings: tlsSettings('verify-ca') });
  t.teardown(() => relay.stop());
  const connect = async (ssl: tls.ConnectionOptions): Promise<string> => {
    const c = new pg.Client({ host: 'localhost', port: relay.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(ca.cert), servername: 'localhost', ...ssl } });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const r = await c.query('select 1 as one');
      await c.end();
      return `ok:${r.rows[0].one}`;
    } catch (err) {
      return `error:${(err as Error).message}`;
    }
  };
  t.equal(await connect({ cert: readFileSync(alice.cert), key: readFileSync(alice.key) }), 'ok:1', 'a certificate from the CA');
  t.match(await connect({}), /^error:/, 'no certificate: refused');
  t.match(await connect({ cert: readFileSync(mallory.cert), key: readFileSync(mallory.key) }), /^error:/, 'a certificate from another CA: refused');
  const plain = await psql(relay.port, '127.0.0.1', { PGSSLMODE: 'disable' });
  t.match(plain.out, /SSL required/, 'verify-ca requires TLS too');
});

/** A raw connection to read the one-byte answers to SSLRequest and GSSENCRequest. */
async function rawConnect(port: number): Promise<{ socket: net.Socket; read(n: number): Promise<Buffer> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  let closed = false;
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('close', () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  return {
    socket,
    async read(n: number): Promise<Buffer> {
      const deadline = Date.now() + 5000;
      while (buf.length < n && !closed && Date.now() < deadline) await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 100); });
      const out = buf.subarray(0, Math.min(n, buf.length));
      buf = buf.subarray(out.length);
      return out;
    },
  };
}

const request = (code: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
};
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

t.test('GSSENCRequest is answered N, then SSLRequest S on the same connection', async (t) => {
  const relay = await startRelay(cluster, { settings: tlsSettings('prefer') });
  t.teardown(() => relay.stop());
  const c = await rawConnect(relay.port);
  c.socket.write(request(GSSENC_REQUEST));
  t.equal((await c.read(1)).toString(), 'N');
  c.socket.write(request(SSL_REQUEST));
  t.equal((await c.read(1)).toString(), 'S');
  const secure = tls.connect({ socket: c.socket, servername: 'localhost', ca: readFileSync(ca.cert) });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  t.equal(secure.authorized, true);
  secure.destroy();
});

t.test('bytes sent behind the SSLRequest, before the handshake, are refused (CVE-2021-23214)', async (t) => {
  const relay = await startRelay(cluster, { settings: tlsSettings('prefer') });
  t.teardown(() => relay.stop());
  const c = await rawConnect(relay.port);
  // A man in the middle appends a plaintext startup packet to the client's SSLRequest.
  c.socket.write(Buffer.concat([request(SSL_REQUEST), startupMessage({ user: 'postgres', database: 'postgres' })]));
  const reply = await c.read(4096);
  t.not(reply.subarray(0, 1).toString(), 'S', 'no S: the handshake never starts');
  t.equal(reply.subarray(0, 1).toString(), 'E', 'an ErrorResponse instead');
  const fields = errorFields(reply.subarray(5));
  t.equal(fields.get('C'), '08P01');
  t.match(fields.get('M'), /received unencrypted data after SSL request/);
  await c.read(1);
  t.ok(c.socket.destroyed || c.socket.readableEnded, 'and the connection is closed');
});

t.test('client_tls_sslmode = disable answers SSLRequest with N', async (t) => {
  const relay = await startRelay(cluster);
  t.teardown(() => relay.stop());
  const c = await rawConnect(relay.port);
  c.socket.write(request(SSL_REQUEST));
  t.equal((await c.read(1)).toString(), 'N');
  c.socket.destroy();
});
