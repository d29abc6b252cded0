// pgrelay through its real CLI (`node --import tsx src/main.ts CONFIG`), for tests of the process
// edge: signals, the JSON log lines it prints, its exit. Killed by the test's teardown.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface SpawnedRelay {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  stderr(): string;
  /** Resolves with the first log line (from `from` on) matching, or rejects after `ms`. */
  waitFor(pred: (l: LogLine) => boolean, ms?: number, from?: number): Promise<LogLine>;
  /** The exit, with when it happened (Date.now()). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export function spawnRelay(t: Test, args: readonly string[]): SpawnedRelay {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/main.ts'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let err = '';
  let partial = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ level: 0, msg: p });
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const waitFor = (pred: (l: LogLine) => boolean, ms = 20_000, from = 0): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${ms} ms; stderr: ${err}\nlog: ${lines.map((l) => l.msg).join(' | ')}`)), ms);
      const check = (): void => {
        const found = lines.slice(from).find(pred);
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else {
          waiters.push(check);
        }
      };
      check();
    });
  return { child, lines, stderr: () => err, waitFor, exited };
}
