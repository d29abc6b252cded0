// Starts Debian's PgBouncer (1.18) in the foreground on a free loopback port, as the `postgres` user
// when we are root, for tests that compare pgrelay with it. Stopped by the returned stop().

import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runAs } from './pg-cluster.js';

export interface PgBouncer {
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/** `ini` is everything but listen_addr, listen_port, unix_socket_dir, logfile and pidfile. */
export async function startPgBouncer(ini: { databases: string; settings: string; userlist: string }): Promise<PgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'pgrelay-pgbouncer-'));
  const port = await freePort();
  const userlist = join(dir, 'userlist.txt');
  writeFileSync(userlist, ini.userlist);
  const file = join(dir, 'pgbouncer.ini');
  writeFileSync(file, `[databases]\n${ini.databases}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nunix_socket_dir =\nauth_file = ${userlist}\n${ini.settings}\n`);
  const ids = runAs();
  if (ids.uid !== undefined && ids.gid !== undefined) for (const p of [dir, userlist, file]) chownSync(p, ids.uid, ids.gid);
  const child: ChildProcess = spawn('pgbouncer', [file], { cwd: dir, ...ids, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${stderr}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
