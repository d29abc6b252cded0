// The machine and software a benchmark ran on, recorded next to its numbers: CPU, memory, kernel,
// and the versions of node, PostgreSQL, PgBouncer and pgrelay (with its git commit).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGRELAY_NODE as pgrelayNode } from './targets.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  kernel: string;
  os: string;
  node: string;
  postgres: string;
  pgbench: string;
  pgbouncer: string;
  pgrelay: string;
}

function cmd(file: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], ...(cwd ? { cwd } : {}) }).trim();
  } catch {
    return 'unknown';
  }
}

function readOr(file: string, fallback = ''): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

export function describeMachine(repoRoot: string, pgBin: string, pgbouncer: string): Machine {
  const cpuinfo = readOr('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const memKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readOr('/proc/meminfo'))?.[1] ?? 0);
  const osName = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readOr('/etc/os-release'))?.[1] ?? os.type();
  const pkg = JSON.parse(readOr(path.join(repoRoot, 'package.json'), '{}')) as { version?: string };
  const commit = cmd('git', ['rev-parse', '--short', 'HEAD'], repoRoot);
  const dirty = cmd('git', ['status', '--porcelain', '--', 'src'], repoRoot);
  const nproc = Number(cmd('nproc', [])) || os.availableParallelism();
  return {
    nproc,
    cpuModel: model,
    memTotalGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    os: osName,
    node: pgrelayNode === process.execPath ? process.version : `${cmd(pgrelayNode, ['--version'])} (pgrelay; the bench runs on ${process.version})`,
    postgres: cmd(path.join(pgBin, 'postgres'), ['--version']),
    pgbench: cmd(path.join(pgBin, 'pgbench'), ['--version']),
    pgbouncer,
    pgrelay: `${pkg.version ?? '?'} (${commit}${dirty !== '' && dirty !== 'unknown' ? ', src/ modified' : ''})`,
  };
}
