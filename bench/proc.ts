// Long-running children of the benchmark (PgBouncer, pgrelay): spawned with a raised fd limit and a
// parent-death signal, tracked so every one is stopped at exit (also on failure or a signal), and
// /proc readers for a process's CPU time and RSS and for the host's CPU use.

import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export interface DaemonOptions {
  /** For messages: "pgrelay", "PgBouncer". */
  name: string;
  cmd: string;
  args: string[];
  cwd: string;
  /** stdout and stderr go here. */
  logFile: string;
  /** Run as this user/group (PgBouncer refuses to run as root). */
  uid?: number;
  gid?: number;
  /** Soft RLIMIT_NOFILE to ask for; falls back to the hard limit when that is lower. */
  fdLimit: number;
  env?: NodeJS.ProcessEnv;
}

const STOP_GRACE_MS = 5000;

const live = new Set<Daemon>();
let exitHookInstalled = false;

function track(d: Daemon): void {
  live.add(d);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously: no waiting, just make sure nothing outlives us.
  process.on('exit', () => {
    for (const daemon of live) daemon.killNow();
    live.clear();
  });
}

/** Stops every daemon still running (used by the signal handlers of run.ts). */
export async function stopAllDaemons(): Promise<void> {
  await Promise.all([...live].map((d) => d.stop()));
}

let setprivPath: string | null | undefined;
function setpriv(): string | null {
  if (setprivPath === undefined) setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) ?? null;
  return setprivPath;
}

// `ulimit -n` cannot be changed from node, so a shell raises it and then execs the daemon: the PID
// stays the same through both execs, which is what the /proc readers need.
const ULIMIT_SCRIPT = 'ulimit -n "$0" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; exec "$@"';

export class Daemon {
  readonly pid: number;
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    if (child.pid === undefined) throw new Error(`${name}: could not spawn`);
    this.pid = child.pid;
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        live.delete(this);
        resolve();
      });
    });
    track(this);
  }

  static start(o: DaemonOptions): Daemon {
    const shellArgs = ['-c', ULIMIT_SCRIPT, String(o.fdLimit), o.cmd, ...o.args];
    // setpriv --pdeathsig: a daemon gets SIGKILL if the benchmark dies without running its exit
    // hooks (kill -9); it is applied after spawn's uid/gid switch, as in test/harness/pg-cluster.ts.
    const sp = setpriv();
    const [cmd, args] = sp !== null ? [sp, ['--pdeathsig', 'SIGKILL', 'sh', ...shellArgs]] : ['sh', shellArgs];
    const fd = fs.openSync(o.logFile, 'a');
    try {
      const child = spawn(cmd, args, {
        cwd: o.cwd,
        env: o.env ?? process.env,
        stdio: ['ignore', fd, fd],
        ...(o.uid !== undefined ? { uid: o.uid } : {}),
        ...(o.gid !== undefined ? { gid: o.gid } : {}),
      });
      child.unref();
      return new Daemon(o.name, child, o.logFile);
    } finally {
      fs.closeSync(fd);
    }
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** How it ended, or null while running. */
  get exitStatus(): string | null {
    return this.exitInfo;
  }

  /** Resolves once a TCP connect to 127.0.0.1:port succeeds; rejects (with the log tail) if the
   * process exits first or the deadline passes. */
  async waitListening(port: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive) throw new Error(`${this.name} exited during startup (${this.exitInfo})\n${this.logTail()}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`${this.name} did not listen on port ${port} within ${timeoutMs} ms\n${this.logTail()}`);
      await sleep(100);
    }
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.ref();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  killNow(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  logTail(lines = 20): string {
    try {
      const all = fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
      return `--- ${this.logFile} (tail) ---\n${all.slice(-lines).join('\n')}`;
    } catch {
      return `(no log at ${this.logFile})`;
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// /proc readers

let clkTck: number | undefined;
/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, almost always 100). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process in seconds, or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after the parenthesised command name (which may contain spaces) start at field 3
  // (state); utime and stime are fields 14 and 15 (proc(5)).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / clockTicks();
}

/** Resident set size in bytes (VmRSS), or null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface HostCpu {
  busy: number;
  total: number;
}

/** Aggregate CPU jiffies from /proc/stat; busy excludes idle and iowait. */
export function hostCpu(): HostCpu {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Percentage of all CPUs busy between two hostCpu() samples. */
export function busyPercent(a: HostCpu, b: HostCpu): number {
  const total = b.total - a.total;
  return total > 0 ? (100 * (b.busy - a.busy)) / total : 0;
}

/** The soft limit on open files of this process (pgbench and the idle clients inherit it). */
export function ownFdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}
