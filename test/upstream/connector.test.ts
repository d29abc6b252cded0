// UpstreamConnector against real PostgreSQL (a primary and its streaming standby): the write
// gate's verdicts for each target_session_attrs, the order hosts are tried in, which credential
// it logs in with, and connect_query, whose failure closes the connection under its own code.

import t, { type Test } from 'tap';
import { pino } from 'pino';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { startCluster, freePort } from '../harness/pg-cluster.js';
import { App } from '../../src/app.js';
import type { UpstreamConnector } from '../../src/upstream/connector.js';
import type { PoolEntry } from '../../src/pool/registry.js';
import type { ProxyStats, ScramKeys } from '../../src/proxy/context.js';
import { buildConfig } from '../../src/config/load.js';
import type { DatabaseConfig, HostPort } from '../../src/config/types.js';
import { Disconnect } from '../../src/errors.js';
import type { ServerConn } from '../../src/proxy/server-conn.js';

// TCP logins need a password (md5 hba), except the superuser's, which the gate cases use.
const primary = await startCluster({
  replication: true,
  auth: 'md5',
  hba: ['host all postgres 127.0.0.1/32 trust'],
  users: [
    { name: 'alice', password: 'alice-pw', encryption: 'md5' },
    { name: 'bob', password: 'bob-pw', encryption: 'scram-sha-256' },
  ],
});
t.teardown(() => primary.destroy());
const standby = await primary.basebackupStandby();
t.teardown(() => standby.destroy());

const P: HostPort = { host: primary.host, port: primary.port };
const S: HostPort = { host: standby.host, port: standby.port };
const deadPort = await freePort();
const DEAD: HostPort = { host: '127.0.0.1', port: deadPort };

interface Setup {
  connector: UpstreamConnector;
  stats: ProxyStats;
  scramKeys: Map<string, ScramKeys>;
  entry(user?: string): PoolEntry;
}

/**
 * A connector as the app builds it (its context grows with the app, so the app builds it here
 * too, without listening), for one database "postgres" defined by `db`.
 */
function setup(t: Test, db: Partial<Omit<DatabaseConfig, 'name'>>, authSecrets: Record<string, string> = {}): Setup {
  const config = buildConfig({ settings: { listenAddr: ['127.0.0.1'], listenPort: 0 }, databases: { postgres: db } });
  const app = new App(config, { logger: pino({ level: 'silent' }) });
  app.ctx.authSecrets = new Map(Object.entries(authSecrets));
  const connector = app.connector;
  const opened: ServerConn[] = [];
  t.teardown(() => {
    for (const s of opened) s.close(Disconnect.Shutdown);
  });
  const connect = connector.connect.bind(connector);
  // Every server a case opens is closed when it ends.
  connector.connect = async (entry) => {
    const s = await connect(entry);
    opened.push(s);
    return s;
  };
  return { connector, stats: app.ctx.stats, scramKeys: app.ctx.scramKeys, entry: (user = 'postgres') => app.ctx.registry.attach('postgres', user)! };
}

const at = (s: ServerConn): string => (s.address.port === primary.port ? 'primary' : s.address.port === standby.port ? 'standby' : `port ${s.address.port}`);

t.test('write gate verdicts', async (t) => {
  const cases: { gate: string; hosts: HostPort[]; want: 'primary' | 'standby'; rejections: number }[] = [
    { gate: 'read-write', hosts: [S, P], want: 'primary', rejections: 1 },
    { gate: 'primary', hosts: [S, P], want: 'primary', rejections: 1 },
    { gate: 'read-only', hosts: [P, S], want: 'standby', rejections: 1 },
    { gate: 'standby', hosts: [P, S], want: 'standby', rejections: 1 },
    { gate: 'read-write', hosts: [P, S], want: 'primary', rejections: 0 },
    { gate: 'any', hosts: [S, P], want: 'standby', rejections: 0 },
  ];
  for (const c of cases) {
    const { connector, entry } = setup(t, { hosts: c.hosts, targetSessionAttrs: c.gate });
    const server = await connector.connect(entry());
    t.equal(at(server), c.want, `${c.gate} with ${c.hosts.map((h) => (h === P ? 'primary' : 'standby')).join(',')}: ${c.want}`);
    if (c.gate !== 'any') t.equal(server.writable, c.want === 'primary', `  writable is ${c.want === 'primary'}`);
    t.equal(connector.writeGateRejections.get('postgres') ?? 0, c.rejections, `  ${c.rejections} rejected by the gate`);
    t.same(connector.upstreams.get('postgres') && { host: connector.upstreams.get('postgres')!.host, port: connector.upstreams.get('postgres')!.port }, server.address, '  noted as the upstream');
  }
});

t.test('prefer-standby: the standby when one answers, the primary only as a fallback', async (t) => {
  const both = setup(t, { hosts: [P, S], targetSessionAttrs: 'prefer-standby' });
  t.equal(at(await both.connector.connect(both.entry())), 'standby', 'the standby, though the primary is listed first');
  t.equal(both.stats.disconnects.get(`server:${Disconnect.BetterUpstream}`), 1, 'the primary kept as a fallback is closed');
  const onlyPrimary = setup(t, { hosts: [P], targetSessionAttrs: 'prefer-standby' });
  t.equal(at(await onlyPrimary.connector.connect(onlyPrimary.entry())), 'primary', 'no standby: the primary will do');
});

t.test('no host passes the gate: 57P03, and the refused connection is closed', async (t) => {
  const { connector, entry, stats } = setup(t, { hosts: [S], targetSessionAttrs: 'read-write' });
  const err = await connector.connect(entry()).then(
    () => null,
    (e: Error & { sqlstate?: string }) => e,
  );
  t.ok(err, 'refused');
  t.equal(err?.sqlstate, '57P03');
  t.match(err?.message, /write gate/);
  t.equal(stats.disconnects.get(`server:${Disconnect.WriteGate}`), 1);
});

t.test('host order: the configured order, a dead host skipped, then the host that worked last first', async (t) => {
  const dead = setup(t, { hosts: [DEAD, P], targetSessionAttrs: 'any' });
  t.equal(at(await dead.connector.connect(dead.entry())), 'primary', 'a refused host is skipped');

  const { connector, entry } = setup(t, { hosts: [S, P], targetSessionAttrs: 'any' });
  t.equal(at(await connector.connect(entry())), 'standby', 'the first configured host');
  t.ok(await connector.verify(entry(), P), 'the primary verifies');
  t.equal(at(await connector.connect(entry())), 'primary', 'now tried first: it is the one that worked last');
  t.equal(at(await connector.connect(entry())), 'primary', 'and it stays first');
});

/** ClientKey and ServerKey for `password` under a stored SCRAM-SHA-256 verifier (RFC 5802), as a client's login would reveal them. */
function scramKeysFor(verifier: string, password: string): ScramKeys {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (m === null) throw new Error(`not a SCRAM verifier: ${verifier.slice(0, 14)}...`);
  const salted = pbkdf2Sync(password, Buffer.from(m[2]!, 'base64'), Number(m[1]), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (!createHash('sha256').update(clientKey).digest().equals(Buffer.from(m[3]!, 'base64'))) throw new Error('wrong password for the verifier');
  return { clientKey, serverKey };
}

t.test('credential choice', async (t) => {
  const bobVerifier = await primary.psql(`select rolpassword from pg_authid where rolname = 'bob'`);
  t.match(bobVerifier, /^SCRAM-SHA-256\$/, "bob's password is stored as SCRAM");
  const md5Alice = 'md5' + createHash('md5').update('alice-pw' + 'alice').digest('hex');

  const attempt = async (name: string, db: Partial<Omit<DatabaseConfig, 'name'>>, secrets: Record<string, string>, user: string, keys?: ScramKeys): Promise<string> => {
    const s = setup(t, { hosts: [P], targetSessionAttrs: 'any', ...db }, secrets);
    if (keys !== undefined) s.scramKeys.set(user, keys);
    try {
      await s.connector.connect(s.entry(user));
      return 'ok';
    } catch (err) {
      return `refused ${(err as { sqlstate?: string }).sqlstate ?? '?'}`;
    }
  };

  t.equal(await attempt('db password', { user: 'alice', password: 'alice-pw' }, { alice: 'wrong' }, 'alice'), 'ok', "[databases] password= is used, whatever auth_file says");
  t.equal(await attempt('db password wins', { user: 'alice', password: 'wrong' }, { alice: 'alice-pw' }, 'alice'), 'refused 28P01', '... even when only the auth_file secret is right');
  t.equal(await attempt('plain secret', {}, { alice: 'alice-pw' }, 'alice'), 'ok', 'a plain auth_file secret');
  t.equal(await attempt('md5 secret', {}, { alice: md5Alice }, 'alice'), 'ok', 'an md5 auth_file secret answers the md5 challenge with the hash');
  t.equal(await attempt('plain for SCRAM', {}, { bob: 'bob-pw' }, 'bob'), 'ok', 'a plain secret runs SCRAM');
  t.equal(await attempt('SCRAM verifier, no keys', {}, { bob: bobVerifier }, 'bob'), 'refused 28P01', 'a SCRAM verifier alone cannot log in: no client has given its keys yet');
  t.equal(await attempt('SCRAM verifier and keys', {}, { bob: bobVerifier }, 'bob', scramKeysFor(bobVerifier, 'bob-pw')), 'ok', "the keys learned from the client's login");
  t.equal(await attempt('nothing', {}, {}, 'alice'), 'refused 28P01', 'no secret at all: refused');
  t.equal(await attempt('db user', { user: 'alice', password: 'alice-pw' }, {}, 'someone-else'), 'ok', '[databases] user= replaces the client user');
});

t.test('connect_query runs before the server is handed out; a failing one closes it as connect_query_failed', async (t) => {
  const ok = setup(t, { hosts: [P], targetSessionAttrs: 'any', connectQuery: "SET application_name = 'set-by-connect-query'" });
  const server = await ok.connector.connect(ok.entry());
  t.equal(server.params.get('application_name'), 'set-by-connect-query', 'it ran (the server reported the change)');
  t.equal(server.state, 'idle', 'and the server is ready');

  const bad = setup(t, { hosts: [P], targetSessionAttrs: 'any', applicationName: 'cq-failing', connectQuery: 'select 1/0' });
  const err = await bad.connector.connect(bad.entry()).then(
    () => null,
    (e: Error) => e,
  );
  t.match(err?.message, /division by zero/, "the server's error");
  t.equal(bad.stats.disconnects.get(`server:${Disconnect.ConnectQueryFailed}`), 1, 'closed under connect_query_failed');
  let left = '1';
  for (const end = Date.now() + 5000; Date.now() < end && left !== '0'; await new Promise((r) => setTimeout(r, 50))) {
    left = await primary.psql(`select count(*) from pg_stat_activity where application_name = 'cq-failing'`);
  }
  t.equal(left, '0', 'the backend is gone');
});
