// Microbenchmark of node's TLS read and write paths, to tell what pgrelay could still save on a
// TLS connection without leaving node: a TLS echo server (bench/tls-paths-server.mjs, on the node
// binary given by PGRELAY_BENCH_NODE or this one) answers each read with one write, under
// `--connections` clients each keeping one 100-byte request in flight. Reports the server's CPU
// per round trip (one TLS read and one TLS write), for each path, best of `--passes`.
// Standalone: npx tsx bench/tls-paths.ts [--seconds S] [--connections N] [--passes N]

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const PATHS = ['stream', 'shared', 'direct', 'both'] as const;
const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tls-paths-server.mjs');
const NODE = process.env['PGRELAY_BENCH_NODE'] ?? process.execPath;

interface Result {
  roundTrips: number;
  userUs: number;
  sysUs: number;
}

/** A throwaway self-signed certificate for 127.0.0.1. */
function makeCert(dir: string): { key: string; cert: string } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  return { key, cert };
}

async function run(which: string, key: string, cert: string, seconds: number, connections: number): Promise<Result> {
  const child = spawn(NODE, ['--no-deprecation', SERVER, which, key, cert], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  const nextLine = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = lines.shift();
        if (line !== undefined) resolve(line);
        else child.stdout.once('data', check);
      };
      child.once('exit', () => reject(new Error(`server (${which}) exited`)));
      check();
    });
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const port = Number(await nextLine());
  const request = Buffer.alloc(100, 2);
  let roundTrips = 0;
  let running = true;
  const sockets = Array.from({ length: connections }, () => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => s.write(request));
    s.on('data', () => {
      roundTrips++;
      if (running) s.write(request);
    });
    s.on('error', () => {});
    return s;
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const counted = roundTrips;
  child.kill('SIGTERM');
  const usage = JSON.parse(await nextLine()) as { user: number; system: number };
  for (const s of sockets) s.destroy();
  return { roundTrips: counted, userUs: usage.user / counted, sysUs: usage.system / counted };
}

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '16' }, passes: { type: 'string', default: '2' } },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgrelay-tls-paths-'));
try {
  const { key, cert } = makeCert(dir);
  const version = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`TLS echo server on node ${version}, ${values.connections} connections, ${values.seconds} s per pass, best of ${values.passes}`);
  console.log('| path | round trips/s | server user µs per round trip | server sys µs per round trip |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const which of PATHS) {
    let best: Result | null = null;
    for (let pass = 0; pass < Number(values.passes); pass++) {
      const r = await run(which, key, cert, Number(values.seconds), Number(values.connections));
      if (best === null || r.userUs + r.sysUs < best.userUs + best.sysUs) best = r;
    }
    console.log(`| ${which} | ${Math.round(best!.roundTrips / Number(values.seconds))} | ${best!.userUs.toFixed(2)} | ${best!.sysUs.toFixed(2)} |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
