// What crosses the wire when both sides use TLS: loopback relays record every byte between the
// client and pgrelay and between pgrelay and PostgreSQL, and no query text or result may appear
// in them. pgrelay's fast path writes with write(2) on a socket's descriptor and reads into a
// shared buffer; a TLS socket that slipped onto that path would put plaintext on the wire, which
// is what this test would see. The same run without TLS shows the markers, so the relays do see
// the traffic.

import t, { type Test } from 'tap';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';
import { TestCa } from '../harness/tls-certs.js';
import type { Settings } from '../../src/config/types.js';

/** A TCP relay that keeps a copy of everything it passes, in both directions. */
class WireTap {
  readonly seen: Buffer[] = [];
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<WireTap> {
    let tap: WireTap | null = null;
    const server = net.createServer((down) => {
      const up = net.connect(target, '127.0.0.1');
      for (const [from, to] of [[down, up], [up, down]] as const) {
        from.on('data', (d: Buffer) => {
          tap!.seen.push(Buffer.from(d));
          to.write(d);
        });
        from.on('close', () => to.destroy());
        from.on('error', () => to.destroy());
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tap = new WireTap(server, (server.address() as net.AddressInfo).port);
    return tap;
  }

  contains(text: string): boolean {
    return Buffer.concat(this.seen).includes(Buffer.from(text));
  }

  get bytes(): number {
    return this.seen.reduce((n, b) => n + b.length, 0);
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const ca = TestCa.create();
t.teardown(() => ca.cleanup());
const pgCert = ca.server('postgres', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
const relayCert = ca.server('pgrelay', 'localhost', ['DNS:localhost']);
const cluster = await startCluster({ settings: { ssl: 'on', ssl_cert_file: pgCert.cert, ssl_key_file: pgCert.key } });
t.teardown(() => cluster.destroy());

/** Runs a workload through client → tap → pgrelay → tap → PostgreSQL; returns the taps and the markers used. */
async function run(t: Test, settings: Partial<Settings>, clientSsl: pg.ClientConfig['ssl']): Promise<{ front: WireTap; back: WireTap; markers: string[] }> {
  const back = await WireTap.start(cluster.port);
  t.teardown(() => back.stop());
  const relay = await startRelay(cluster, { settings, databases: { '*': { hosts: [{ host: '127.0.0.1', port: back.port }] } } });
  t.teardown(() => relay.stop());
  const front = await WireTap.start(relay.port);
  t.teardown(() => front.stop());
  const q = `QUERYMARK${randomBytes(6).toString('hex')}`;
  const r = `RESULTMARK${randomBytes(6).toString('hex').toUpperCase()}`;
  const c = `COPYMARK${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ host: 'localhost', port: front.port, user: 'postgres', database: 'postgres', ssl: clientSsl, query_timeout: 20_000, connectionTimeoutMillis: 10_000 });
  await client.connect();
  await client.query(`select '${q}' as q`);
  // The result marker is built by the server, so it is in the reply only.
  const res = await client.query(`select repeat(upper('${r.toLowerCase()}'), 3) || g as v from generate_series(1, 5000) g`);
  t.equal(res.rows.length, 5000);
  t.match(res.rows[0].v as string, new RegExp(`^(${r}){3}1$`));
  // Bytes the client sends in bulk, with a full socket buffer now and then: a big parameter.
  const big = await client.query('select length($1::text) as n', [`${c}${'y'.repeat(3_000_000)}`]);
  t.equal(big.rows[0].n, c.length + 3_000_000);
  await client.query('begin');
  await client.query(`create temp table wire_t as select '${c}'::text as v`);
  await client.query('rollback');
  await client.end();
  return { front, back, markers: [q, r, c] };
}

t.test('TLS on both sides: no query text, result or parameter crosses either wire in clear', async (t) => {
  const { front, back, markers } = await run(
    t,
    { clientTlsSslmode: 'require', clientTlsCertFile: relayCert.cert, clientTlsKeyFile: relayCert.key, serverTlsSslmode: 'verify-full', serverTlsCaFile: ca.cert },
    { ca: readFileSync(ca.cert), servername: 'localhost' },
  );
  t.ok(front.bytes > 3_000_000 && back.bytes > 3_000_000, `the taps saw the traffic (${front.bytes} and ${back.bytes} bytes)`);
  for (const m of markers) {
    t.notOk(front.contains(m), `${m.slice(0, 10)}: not in clear between client and pgrelay`);
    t.notOk(back.contains(m), `${m.slice(0, 10)}: not in clear between pgrelay and PostgreSQL`);
  }
  t.notOk(front.contains('yyyyyyyyyyyyyyyy'), 'nor the bulk parameter');
  t.notOk(back.contains('yyyyyyyyyyyyyyyy'));
});

t.test('control: without TLS the same markers are on both wires', async (t) => {
  const { front, back, markers } = await run(t, { clientTlsSslmode: 'disable', serverTlsSslmode: 'disable' }, false);
  for (const m of markers) {
    t.ok(front.contains(m), `${m.slice(0, 10)}: seen between client and pgrelay`);
    t.ok(back.contains(m), `${m.slice(0, 10)}: seen between pgrelay and PostgreSQL`);
  }
});
