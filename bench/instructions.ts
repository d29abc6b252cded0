// Instructions per transaction in pgrelay's main thread, counted by valgrind's callgrind: the
// before/after comparison that timing cannot settle. On a 2-core box the CPU time per transaction of
// the same build moves by 5 % or more from run to run (other processes, the scheduler, V8's choices),
// which hides changes of a few percent. An instruction count does not depend on what else the
// machine is doing; only V8 optimizing a new process differently moves it (--repeat shows by how
// much). It counts user space only: the system calls (2 reads and 2 writes per transaction for -S)
// are the same for every build and are not in it.
//
// Each build runs under callgrind with a warm-up long enough for V8 to optimize the forwarding
// path; the counters are zeroed, a fixed number of transactions runs, and the counters are dumped
// per thread. Usage: npx tsx bench/instructions.ts --base REV (see --help).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { destroyAll, pgbench, runAs, startCluster } from '../test/harness/pg-cluster.js';
import { sleep, stopAllDaemons } from './proc.js';
import { PGRELAY_NODE_ARGS, startPgrelay } from './targets.js';
import type { Target } from './targets.js';
import { buildCheckout, buildRevision, REPO } from './worktree.js';

const USAGE = `Usage: npx tsx bench/instructions.ts --base REV [options]

  --base REV          git revision to compare against (built in a scratch worktree)
  --modes A,B         pgbench query modes: simple, extended, prepared (default simple,extended)
  --warm N            warm-up transactions per client before counting, in two runs (default 1500)
  --transactions N    counted transactions per client (default 500); 16 clients
  --after-settings S  also count the checkout with these config lines (';'-separated), e.g.
                      "max_prepared_statements = 0", to see what a setting costs
  --repeat N          count every build N times (default 1), to see how well counts repeat

Needs valgrind (Debian's package) and pgbench. Each count (a new process per build and mode) takes
under a minute, plus building the base once.
`;

const CLIENTS = 16;

/** Bad options: the message and the usage, exit code 2. */
class UsageError extends Error {}

function log(msg: string): void {
  process.stderr.write(`instructions: ${msg}\n`);
}

/** The total instructions of one callgrind dump file, or null while it is still being written. */
function dumpTotal(file: string): number | null {
  const m = /^totals: (\d+)/m.exec(fs.readFileSync(file, 'utf8'));
  return m === null ? null : Number(m[1]);
}

/** One build under callgrind; dumps are numbered in order, one per counted run. */
class CountedPgrelay {
  private dumps = 0;
  private constructor(
    readonly label: string,
    readonly target: Target,
    private readonly outFile: string,
  ) {}

  static async start(label: string, dir: string, workDir: string, upstreamPort: number, settings: string): Promise<CountedPgrelay> {
    const outFile = path.join(workDir, `callgrind-${Date.now()}`);
    const launcher = { prefix: ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${outFile}`], listenTimeoutMs: 300_000 };
    const target = await startPgrelay(dir, { workDir, upstreamPort, poolSize: 20, maxClientConn: 200, fdLimit: 65536, settings }, PGRELAY_NODE_ARGS, launcher);
    return new CountedPgrelay(label, target, outFile);
  }

  /** Instructions per transaction (main thread, all threads) over `transactions` per client in `mode`. */
  async count(mode: string, warm: number, transactions: number): Promise<{ main: number; all: number }> {
    const run = async (n: number): Promise<void> => {
      const args = ['-h', '127.0.0.1', '-p', String(this.target.port), '-U', 'postgres', '-n', '-M', mode, '-S', '-c', String(CLIENTS), '-j', '2', '-t', String(n), 'postgres'];
      const r = await pgbench(args, {}, { timeoutMs: 3_600_000 });
      if (r.code !== 0) throw new Error(`pgbench failed: ${r.stderr}`);
    };
    const pid = String(this.target.daemon!.pid);
    // Warmed up in two runs. What a run does once (its connections' logins, pgbench's own setup
    // query) first happens before V8 records type feedback for the functions it passes through;
    // optimized without that feedback, they deoptimize when the next run does it again, and would
    // run unoptimized through part of the counted run. The second warm-up run takes that hit.
    await run(Math.ceil(warm / 2));
    await run(Math.floor(warm / 2));
    execFileSync('callgrind_control', ['--zero', pid], { stdio: 'ignore' });
    await run(transactions);
    execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' });
    this.dumps++;
    // One file per thread: <out>.<dump>-<thread>, thread 01 being the main thread. Done when every
    // file is complete and no new one appeared for a second.
    const prefix = `${path.basename(this.outFile)}.${this.dumps}-`;
    const dir = path.dirname(this.outFile);
    let totals: (number | null)[] = [];
    let files: string[] = [];
    let stable = 0;
    for (let i = 0; i < 300 && stable < 5; i++) {
      await sleep(200);
      const now = fs.readdirSync(dir).filter((f) => f.startsWith(prefix)).sort();
      totals = now.map((f) => dumpTotal(path.join(dir, f)));
      stable = now.length > 0 && now.length === files.length && totals.every((x) => x !== null) ? stable + 1 : 0;
      files = now;
    }
    const mainAt = files.findIndex((f) => f.endsWith('-01'));
    if (stable < 5 || mainAt < 0) throw new Error(`callgrind wrote no complete dump for ${this.label}`);
    const tx = CLIENTS * transactions;
    return { main: totals[mainAt]! / tx, all: totals.reduce((s: number, x) => s + x!, 0) / tx };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      modes: { type: 'string', default: 'simple,extended' },
      warm: { type: 'string', default: '1500' },
      transactions: { type: 'string', default: '500' },
      'after-settings': { type: 'string' },
      repeat: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.base === undefined) {
    process.stdout.write(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const modes = values.modes.split(',').map((m) => m.trim());
  for (const m of modes) if (!['simple', 'extended', 'prepared'].includes(m)) throw new UsageError(`--modes: unknown mode ${m}`);
  const warm = Number(values.warm);
  const transactions = Number(values.transactions);
  const repeat = Number(values.repeat);
  if (!(warm >= 0) || !(transactions > 0) || !(repeat >= 1)) throw new UsageError('--warm, --transactions and --repeat take positive numbers');
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('valgrind is not installed (Debian: apt-get install valgrind)');
  }
  const after = buildCheckout();
  const base = buildRevision(values.base);
  const ids = runAs();
  const workDir = fs.mkdtempSync(path.join('/tmp', 'pgrelay-instructions-'));
  if (ids.uid !== undefined && ids.gid !== undefined) fs.chownSync(workDir, ids.uid, ids.gid);
  const builds: { label: string; dir: string; settings: string }[] = [
    { label: `before ${base.sha}`, dir: base.dir, settings: '' },
    { label: `after ${after}`, dir: REPO, settings: '' },
  ];
  if (values['after-settings'] !== undefined) builds.push({ label: `after ${after} with ${values['after-settings']}`, dir: REPO, settings: values['after-settings'] });
  const counts = new Map<string, { main: number; all: number }[]>();
  try {
    const cluster = await startCluster({ settings: { max_connections: '200', shared_buffers: '256MB' } });
    const init = await pgbench(['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', '10', '-q', 'postgres'], {}, { timeoutMs: 900_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await cluster.psql('VACUUM ANALYZE');
    for (let r = 0; r < repeat; r++) {
      for (const b of builds) {
        // A new process per mode: what V8 learned from one mode's messages (another mix of frame
        // types through the same functions) must not shape the code the next mode is counted on.
        for (const m of modes) {
          const p = await CountedPgrelay.start(b.label, b.dir, workDir, cluster.port, b.settings);
          const c = await p.count(m, warm, transactions);
          await p.target.daemon!.stop();
          const key = `${m}\t${b.label}`;
          counts.set(key, [...(counts.get(key) ?? []), c]);
          log(`${m} ${b.label}: ${c.main.toFixed(0)} instructions per transaction in the main thread, ${c.all.toFixed(0)} in all threads`);
        }
      }
    }
  } finally {
    await stopAllDaemons();
    await destroyAll();
    fs.rmSync(workDir, { recursive: true, force: true });
    base.remove();
  }
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
  const out = ['| mode | build | main thread instructions / tx | all threads | vs before (main thread) |', '| --- | --- | ---: | ---: | ---: |'];
  for (const m of modes) {
    const before = counts.get(`${m}\t${builds[0]!.label}`)!;
    const ref = Math.min(...before.map((c) => c.main));
    for (const b of builds) {
      const cs = counts.get(`${m}\t${b.label}`)!;
      const main = Math.min(...cs.map((c) => c.main));
      out.push(`| ${m} | ${b.label} | ${fmt(cs.map((c) => c.main))} | ${fmt(cs.map((c) => c.all))} | ${(main / ref).toFixed(3)}× |`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    log(err.message);
    process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
