// A HAProxy in front of a Patroni cluster, playing the primary Service of the runbook topology (as
// a Kubernetes primary Service or the usual HAProxy setup): it routes new connections to the node
// whose Patroni answers 200 on GET /primary, checked every 500 ms (fall 2, rise 1), shuts the
// sessions of a node marked down, and retries a failed connect 3 times (timeout connect 2 s).
// Debian's haproxy, run in the foreground on a free loopback port, stopped by stop() or at exit.

import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './pg-cluster.js';
import type { PatroniCluster } from './patroni.js';

const HAPROXY = '/usr/sbin/haproxy';

export interface Haproxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** HAProxy's log (health-check transitions, one line per connection). */
  readonly logFile: string;
  stop(): Promise<void>;
}

/** The configuration the issue's measurements used, for `cluster`'s nodes. */
export function haproxyConfig(cluster: PatroniCluster, port: number): string {
  const servers = cluster.nodes.map((n) => `    server ${n.name} 127.0.0.1:${n.pgPort} check port ${n.restPort}`);
  return [
    'global',
    '    maxconn 2000',
    '    log stdout format raw local0 info',
    'defaults',
    '    mode tcp',
    '    log global',
    '    option tcplog',
    '    option log-health-checks',
    '    retries 3',
    '    timeout connect 2s',
    '    timeout client 30m',
    '    timeout server 30m',
    '    timeout check 1s',
    'listen primary',
    `    bind 127.0.0.1:${port}`,
    '    option httpchk',
    '    http-check send meth GET uri /primary',
    '    http-check expect status 200',
    '    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
    ...servers,
    '',
  ].join('\n');
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * HAProxy starts with every server up and marks a replica down only after its checks fail twice
 * (about 1 s): until then it sends logins to the replica too. Waits until 10 logins in a row land
 * on a writable server.
 */
async function settled(cluster: PatroniCluster, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (let inRow = 0; inRow < 10; ) {
    if (Date.now() > deadline) throw new Error(`haproxy on ${port} did not settle on the primary within 15 s`);
    const c = new pg.Client({ host: '127.0.0.1', port, user: cluster.superuser.user, password: cluster.superuser.password, database: 'postgres', connectionTimeoutMillis: 1000 });
    c.on('error', () => undefined);
    let writable = false;
    try {
      await c.connect();
      writable = (await c.query('select pg_is_in_recovery() as rec')).rows[0].rec === false;
    } catch {
      writable = false;
    } finally {
      await c.end().catch(() => undefined);
    }
    inRow = writable ? inRow + 1 : 0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts HAProxy for `cluster` and resolves once it accepts connections and routes only to the primary. */
export async function startHaproxy(cluster: PatroniCluster): Promise<Haproxy> {
  if (!fs.existsSync(HAPROXY)) throw new Error(`${HAPROXY} missing; as root run: bash scripts/ensure-deps.sh haproxy (or --test)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgrelay-haproxy-'));
  const port = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, haproxyConfig(cluster, port));
  const logFile = path.join(dir, 'haproxy.log');
  const fd = fs.openSync(logFile, 'a');
  // -db: foreground, no daemon. setpriv: SIGKILL when this process dies without its exit hooks.
  const args = ['-db', '-f', cfg];
  const [cmd, argv] = fs.existsSync('/usr/bin/setpriv') ? ['setpriv', ['--pdeathsig', 'SIGKILL', HAPROXY, ...args]] : [HAPROXY, args];
  const child = spawn(cmd, argv as string[], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.unref();
  live.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      child.kill('SIGKILL');
    }
    live.delete(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}): ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) {
      await settled(cluster, port).catch(async (err: Error) => {
        await stop();
        throw err;
      });
      return { host: '127.0.0.1', port, logFile, stop };
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy did not listen on ${port} within 10 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
