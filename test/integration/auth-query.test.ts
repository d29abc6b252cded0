// auth_user / auth_query / auth_dbname against real PostgreSQL: users that exist only in
// PostgreSQL log in with their md5 or SCRAM verifier (SCRAM upstream with the client's own
// ClientKey), wrong passwords and unknown users get the same 28P01 in about the same time, the
// cache and its expiry, auth_dbname, a login that needs a lookup during a PAUSE, and a lookup
// that cannot run.

import t from 'tap';
import pg from 'pg';
import { freePort, startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { loginOutcome as login } from '../harness/login-outcome.js';
import type { Settings } from '../../src/config/types.js';

const cluster = await startCluster({
  auth: 'md5',
  users: [
    { name: 'lookup', password: 'lookup-secret', superuser: true, encryption: 'md5' },
    { name: 'md5user', password: 'md5-secret', encryption: 'md5' },
    { name: 'scramuser', password: 'scram-secret', encryption: 'scram-sha-256' },
    { name: 'changing', password: 'first-secret', encryption: 'scram-sha-256' },
  ],
});
t.teardown(() => cluster.destroy());
await cluster.psql('create database appdb');
// Only the postgres database has the lookup function: auth_dbname must send lookups there.
await cluster.psql(
  "create function pgrelay_lookup(u text) returns table (usename name, passwd text) language sql security definer as $$ select rolname, rolpassword from pg_authid where rolname = u $$",
);

const lookupSettings = (over: Partial<Settings> = {}): Partial<Settings> => ({
  authType: 'md5',
  authUser: 'lookup',
  authQuery: 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1',
  ...over,
});


t.test('users only in PostgreSQL: md5 and SCRAM verifiers, wrong passwords and unknown users', async (t) => {
  const relay = await startRelay(cluster, { settings: lookupSettings(), authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => relay.stop());
  t.equal(await login(relay.port, 'md5user', 'md5-secret'), 'ok:md5user', 'md5 verifier from pg_shadow; pgrelay logs in upstream with the hash');
  t.equal(await login(relay.port, 'scramuser', 'scram-secret'), 'ok:scramuser', "SCRAM verifier; pgrelay logs in upstream with the client's ClientKey");
  t.equal(await login(relay.port, 'md5user', 'wrong'), 'error:28P01');
  t.equal(await login(relay.port, 'scramuser', 'wrong'), 'error:28P01');
  t.equal(await login(relay.port, 'nobody', 'x'), 'error:28P01', 'unknown user: the same 28P01 after the full exchange');
  t.equal(await login(relay.port, 'lookup', 'lookup-secret'), 'ok:lookup', 'auth_file users are not looked up');
});

t.test('an unknown user and a wrong password take about the same time', async (t) => {
  const relay = await startRelay(cluster, { settings: lookupSettings({ authType: 'scram-sha-256' }), authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => relay.stop());
  const time = async (user: string): Promise<number> => {
    const t0 = performance.now();
    const r = await login(relay.port, user, 'wrong');
    if (r !== 'error:28P01') throw new Error(`${user}: ${r}`);
    return performance.now() - t0;
  };
  // Alternate, so drift on a shared machine hits both alike; the first of each is the lookup.
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 15; i++) {
    known.push(await time('scramuser'));
    unknown.push(await time(`ghost${i % 3}`));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const a = median(known);
  const b = median(unknown);
  t.comment(`median login time: wrong password ${a.toFixed(1)} ms, unknown user ${b.toFixed(1)} ms`);
  t.ok(Math.abs(a - b) < Math.max(25, 0.5 * Math.max(a, b)), `within noise (${a.toFixed(1)} vs ${b.toFixed(1)} ms)`);
});

t.test('cache: a changed or dropped password takes effect after auth_query_cache_ttl', async (t) => {
  const relay = await startRelay(cluster, { settings: lookupSettings({ authQueryCacheTtlMs: 1500 }), authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => relay.stop());
  t.equal(await login(relay.port, 'changing', 'first-secret'), 'ok:changing');
  await cluster.psql("set password_encryption = 'scram-sha-256'; alter role changing password 'second-secret'");
  t.equal(await login(relay.port, 'changing', 'second-secret', 'postgres', 'select 1'), 'error:28P01', 'within the TTL the cached verifier answers');
  await new Promise((r) => setTimeout(r, 1700));
  t.equal(await login(relay.port, 'changing', 'second-secret'), 'ok:changing', 'after the TTL the new password works');
  t.equal(await login(relay.port, 'changing', 'first-secret'), 'error:28P01', 'and the old one does not');
  await cluster.psql('alter role changing password null');
  await new Promise((r) => setTimeout(r, 1700));
  t.equal(await login(relay.port, 'changing', 'second-secret'), 'error:28P01', 'a dropped password: refused after the TTL');
});

t.test('auth_dbname: lookups run in that database', async (t) => {
  const settings = lookupSettings({ authQuery: 'SELECT usename, passwd FROM pgrelay_lookup($1)' });
  const without = await startRelay(cluster, { settings, authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => without.stop());
  t.equal(await login(without.port, 'md5user', 'md5-secret', 'appdb'), 'error:08006', 'without auth_dbname the query runs in appdb, where the function is missing: the login fails closed');
  const withDb = await startRelay(cluster, { settings: { ...settings, authDbname: 'postgres' }, authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => withDb.stop());
  t.equal(await login(withDb.port, 'md5user', 'md5-secret', 'appdb'), 'ok:md5user');
});

t.test('a login that needs a lookup during a PAUSE completes; its query waits for RESUME', async (t) => {
  const relay = await startRelay(cluster, { settings: lookupSettings(), authFile: { lookup: 'lookup-secret' } });
  t.teardown(() => relay.stop());
  t.equal(await login(relay.port, 'md5user', 'md5-secret'), 'ok:md5user', 'a pool exists (its login parameters are known)');
  const paused = await relay.app.control.pause();
  t.equal(paused.result, 'drained');
  const c = new pg.Client({ host: '127.0.0.1', port: relay.port, user: 'scramuser', password: 'scram-secret', database: 'postgres' });
  const t0 = Date.now();
  await c.connect();
  t.ok(Date.now() - t0 < 5000, `logged in while paused (${Date.now() - t0} ms): the lookup pool is not held by PAUSE`);
  const q = c.query('select current_user as u');
  let answered = false;
  void q.then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(answered, 'its query waits for RESUME');
  relay.app.control.resume();
  t.equal((await q).rows[0].u, 'scramuser');
  await c.end();
});

t.test('a lookup that cannot run fails the login with 08006 within auth_query_timeout', async (t) => {
  const deadPort = await freePort();
  const relay = await startRelay(cluster, {
    settings: lookupSettings({ authQueryTimeoutMs: 800, queryWaitTimeoutMs: 1000 }),
    authFile: { lookup: 'lookup-secret' },
    databases: { '*': { hosts: [{ host: '127.0.0.1', port: deadPort }] } },
  });
  t.teardown(() => relay.stop());
  const t0 = Date.now();
  t.equal(await login(relay.port, 'md5user', 'md5-secret'), 'error:08006');
  t.ok(Date.now() - t0 < 5000, `refused in ${Date.now() - t0} ms`);
  t.equal(await login(relay.port, 'lookup', 'lookup-secret', 'postgres', 'select 1').then((r) => r.startsWith('error:')), true, 'auth_file users still authenticate (their query then fails upstream)');
});
