// Client auth through pgrelay and pgrelay's own login upstream: md5 and SCRAM, right and wrong
// passwords and unknown users (both 28P01), and SCRAM keys carried upstream from an auth_file verifier.

import t from 'tap';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { md5Hash } from '../../src/auth/md5.js';

const cluster = await startCluster({
  auth: 'scram-sha-256',
  users: [
    { name: 'alice', password: 'alice-secret' },
    { name: 'bob', password: 'bob-secret' },
  ],
});
t.teardown(() => cluster.destroy());
// The SCRAM verifier PostgreSQL stores is what an operator copies into auth_file.
const bobVerifier = (await cluster.psql(`select rolpassword from pg_authid where rolname = 'bob'`)).trim();

async function tryLogin(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query('select current_user as u');
    await c.end();
    return `ok:${r.rows[0].u}`;
  } catch (err) {
    return `error:${(err as { code?: string }).code}`;
  }
}

t.test('md5 auth_type: right, wrong and unknown', async (t) => {
  const relay = await startRelay(cluster, {
    settings: { authType: 'md5' },
    authFile: { alice: 'alice-secret', bob: md5Hash('bob-secret', 'bob') },
  });
  t.teardown(() => relay.stop());
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'alice-secret' })), 'ok:alice', 'plain secret in auth_file');
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'wrong' })), 'error:28P01');
  t.equal(await tryLogin(relay.url({ user: 'nobody', password: 'x' })), 'error:28P01', 'unknown user: the same as a wrong password');
  // bob's auth_file entry is an md5 hash: clients log in, but pgrelay cannot answer the
  // server's SCRAM challenge with it, so the server login fails with a clear 28P01.
  const bob = await tryLogin(relay.url({ user: 'bob', password: 'bob-secret' }));
  t.match(bob, /^error:(28P01|08006)$/);
});

t.test('scram-sha-256 auth_type: right, wrong and unknown', async (t) => {
  const relay = await startRelay(cluster, {
    settings: { authType: 'scram-sha-256' },
    authFile: { alice: 'alice-secret', bob: bobVerifier },
  });
  t.teardown(() => relay.stop());
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'alice-secret' })), 'ok:alice');
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'nope' })), 'error:28P01');
  t.equal(await tryLogin(relay.url({ user: 'ghost', password: 'x' })), 'error:28P01', 'unknown user: the same as a wrong password');
  t.equal(await tryLogin(relay.url({ user: 'bob', password: 'bob-secret' })), 'ok:bob', 'SCRAM keys from the client exchange log in upstream');
  t.equal(await tryLogin(relay.url({ user: 'bob', password: 'bad' })), 'error:28P01');
});

t.test('md5 auth_type with a SCRAM verifier switches to SCRAM (as PgBouncer does)', async (t) => {
  const relay = await startRelay(cluster, { settings: { authType: 'md5' }, authFile: { bob: bobVerifier } });
  t.teardown(() => relay.stop());
  t.equal(await tryLogin(relay.url({ user: 'bob', password: 'bob-secret' })), 'ok:bob');
});

t.test('plain auth_type', async (t) => {
  const relay = await startRelay(cluster, { settings: { authType: 'plain' }, authFile: { alice: 'alice-secret' } });
  t.teardown(() => relay.stop());
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'alice-secret' })), 'ok:alice');
  t.equal(await tryLogin(relay.url({ user: 'alice', password: 'x' })), 'error:28P01');
});

t.test('forced user and password from [databases]', async (t) => {
  const relay = await startRelay(cluster, {
    settings: { authType: 'trust' },
    databases: { app: { hosts: [{ host: cluster.host, port: cluster.port }], dbname: 'postgres', user: 'alice', password: 'alice-secret' } },
  });
  t.teardown(() => relay.stop());
  t.equal(await tryLogin(relay.url({ user: 'anyone', database: 'app' })), 'ok:alice');
});
