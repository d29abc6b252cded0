// Server login deadlines and hedging against real PostgreSQL behind a stand-in Service: a login
// that is never answered costs at most server_connect_timeout and does not hold a waiting client
// once the Service routes to a live node; a server that answers but never finishes the login is
// dropped at server_login_timeout.

import t from 'tap';
import net from 'node:net';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { ServiceProxy } from '../harness/service-proxy.js';

const cluster = await startCluster();
t.teardown(() => cluster.destroy());

t.test('a held login does not delay a waiting client once the Service routes to a live node', async (t) => {
  const service = await ServiceProxy.start({ host: '127.0.0.1', port: cluster.port });
  t.teardown(() => service.stop());
  // Defaults for the deadlines and the hedge interval.
  const relay = await startRelay(cluster, { settings: { queryWaitTimeoutMs: 20_000 }, databases: { '*': { hosts: [{ host: '127.0.0.1', port: service.port }] } } });
  t.teardown(() => relay.stop());
  const c = new pg.Client({ connectionString: relay.url() });
  await c.connect();
  t.teardown(() => c.end());
  await c.query('select 1');
  // The next transaction needs a new server connection, and the Service now holds every login.
  relay.app.control.reconnect();
  service.routeTo('hold');
  const started = Date.now();
  const answered = c.query('select 1 as x').then(() => Date.now());
  await new Promise((r) => setTimeout(r, 300));
  const routedAt = Date.now();
  service.routeTo({ host: '127.0.0.1', port: cluster.port });
  const at = await Promise.race([answered, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))]);
  t.ok(at - routedAt < 400, `answered ${at - routedAt} ms after the Service routed to the server (${at - started} ms in all)`);
  t.ok(service.counts.held >= 2, `${service.counts.held} logins were held; pgrelay did not wait for the first`);
});

t.test('a server that answers but never finishes its login is dropped at server_login_timeout', async (t) => {
  // Asks for a cleartext password, then says nothing more (it answers no SSLRequest: plaintext only).
  const silent = net.createServer((s) => {
    s.once('data', () => s.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => silent.close(() => r())));
  const port = (silent.address() as net.AddressInfo).port;
  const relay = await startRelay(cluster, {
    settings: { queryWaitTimeoutMs: 2500, serverLoginTimeoutMs: 800, serverTlsSslmode: 'disable' },
    databases: { '*': { hosts: [{ host: '127.0.0.1', port }], password: 'x' } },
  });
  t.teardown(() => relay.stop());
  const c = new pg.Client({ connectionString: relay.url() });
  c.on('error', () => undefined);
  // pgrelay has no login parameters to offer yet: the client's own login waits for a server.
  const err = await c.connect().then(
    () => c.query('select 1').then(() => null, (e: Error) => e),
    (e: Error) => e,
  );
  await c.end().catch(() => undefined);
  t.ok(err !== null, 'the client gets an error at query_wait_timeout');
  t.match(err?.message ?? '', /server_login_timeout/, `and it names the login deadline: ${err?.message}`);
});
