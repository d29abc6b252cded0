// The benchmark (npm run bench): a throwaway PostgreSQL, PgBouncer and pgrelay; pgbench workloads
// against all three interleaved in rounds; idle-client memory per proxy; the framer microbenchmark.
// Writes results.json, results.md and ratios.svg. See bench/README.md.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { destroyAll, findPgBin, pgbench, runAs, startCluster } from '../test/harness/pg-cluster.js';
import type { PgCluster } from '../test/harness/pg-cluster.js';
import { runFramerBench } from './framer.js';
import type { FramerResult } from './framer.js';
import { measureIdleClients } from './idle-clients.js';
import { describeMachine } from './machine.js';
import { ownFdLimit, sleep, stopAllDaemons } from './proc.js';
import { CellStatus, computeModeRatios, computeRatios, renderMarkdown, summarize, writeResults } from './report.js';
import type { Cell, MemoryEntry, Results } from './report.js';
import { findPgbouncer, pgbouncerTracksPrepared, pgbouncerVersion, startPgbouncer, startPgrelay, TARGET_LABEL, TARGET_ORDER, TargetName } from './targets.js';
import type { BenchTls, ProxyOptions, Target } from './targets.js';
import { TestCa } from '../test/harness/tls-certs.js';
import { runWorkload, SHORT_WORKLOADS, WORKLOADS } from './workloads.js';
import type { Workload } from './workloads.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POOL_SIZE = 20;
/** Asked of the shell before exec'ing a proxy; capped at the hard limit. */
const PROXY_FD_LIMIT = 65536;

const USAGE = `Usage: npx tsx bench/run.ts [options]

  --short              CI mode: scale 1, 1 round of 3 s, ${SHORT_WORKLOADS.join(', ')},
                       200 idle clients; results go to a temp dir unless --out is given
  --rounds N           rounds per workload (default 3)
  --duration S         seconds per pgbench run (default 10)
  --out DIR            where results.json, results.md and ratios.svg go (default bench/results)
  --workloads A,B      workload ids (default all): ${WORKLOADS.map((w) => w.id).join(', ')}
  --scale N            pgbench -i scale (default 10)
  --idle-clients N     idle connections per proxy for the memory test (default 10000; 0 skips)
  --idle-settle S      seconds idle before the settled RSS reading (default 30; short: 3)
  --framer-seconds S   measured time per framer scenario (default 1; 0 skips)
  -h, --help
`;

interface Options {
  short: boolean;
  rounds: number;
  durationSec: number;
  outDir: string;
  workloads: Workload[];
  scale: number;
  idleClients: number;
  idleSettleSec: number;
  framerSeconds: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      short: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string' },
      workloads: { type: 'string' },
      scale: { type: 'string' },
      'idle-clients': { type: 'string' },
      'idle-settle': { type: 'string' },
      'framer-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const short = values.short === true;
  const int = (v: string | undefined, def: number, name: string, min = 1): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got ${v}`);
    return n;
  };
  const ids = values.workloads?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? (short ? [...SHORT_WORKLOADS] : WORKLOADS.map((w) => w.id));
  const workloads = ids.map((id) => {
    const w = WORKLOADS.find((x) => x.id === id);
    if (w === undefined) throw new Error(`--workloads: unknown workload ${id} (known: ${WORKLOADS.map((x) => x.id).join(', ')})`);
    return w;
  });
  return {
    short,
    rounds: int(values.rounds, short ? 1 : 3, 'rounds'),
    durationSec: int(values.duration, short ? 3 : 10, 'duration'),
    outDir: path.resolve(values.out ?? (short ? fs.mkdtempSync(path.join(os.tmpdir(), 'pgrelay-bench-')) : path.join(REPO, 'bench', 'results'))),
    workloads,
    scale: int(values.scale, short ? 1 : 10, 'scale'),
    idleClients: int(values['idle-clients'], short ? 200 : 10_000, 'idle-clients', 0),
    idleSettleSec: int(values['idle-settle'], short ? 3 : 30, 'idle-settle', 2),
    framerSeconds: int(values['framer-seconds'], short ? 0.2 : 1, 'framer-seconds', 0),
  };
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Preflight: PgBouncer installed, dist/ built from the current src/

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

function preflight(): string {
  let bouncer = findPgbouncer();
  if (bouncer === null) {
    log('PgBouncer is missing; running scripts/ensure-deps.sh pgbouncer');
    execFileSync('bash', [path.join(REPO, 'scripts', 'ensure-deps.sh'), 'pgbouncer'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
    bouncer = findPgbouncer();
    if (bouncer === null) throw new Error('pgbouncer is still not installed (apt-get install pgbouncer)');
  }
  const main = path.join(REPO, 'dist', 'main.js');
  if (!fs.existsSync(main) || newestMtime(path.join(REPO, 'src')) > fs.statSync(main).mtimeMs) {
    log('dist/ is missing or older than src/; running npm run build');
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return bouncer;
}

/** A scratch dir the `postgres` user can enter (PgBouncer reads its ini there). */
function makeWorkDir(): string {
  const ids = runAs();
  const dir = fs.mkdtempSync(path.join(ids.uid !== undefined ? '/tmp' : os.tmpdir(), 'pgrelay-bench-work-'));
  if (ids.uid !== undefined && ids.gid !== undefined) fs.chownSync(dir, ids.uid, ids.gid);
  fs.mkdirSync(path.join(dir, 'logs'));
  return dir;
}

/**
 * A CA and certificates for the TLS workloads, made with openssl in the work dir: PostgreSQL's
 * (localhost and 127.0.0.1, as verify-full checks the host the proxies connect to) and the
 * proxies' own.
 */
function makeTls(workDir: string): { pg: { cert: string; key: string }; proxies: BenchTls } {
  const ca = TestCa.create('bench-ca', fs.mkdtempSync(path.join(workDir, 'tls-')));
  const pg = ca.server('postgres', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  const proxy = ca.server('proxy', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  return { pg, proxies: { certFile: proxy.cert, keyFile: proxy.key, caFile: ca.cert } };
}

async function startPostgres(maxConnections: number, notes: string[], tls: { cert: string; key: string } | null): Promise<{ cluster: PgCluster; maxConnections: number }> {
  // ssl=on only serves clients that ask: the plaintext workloads run with PGSSLMODE=disable.
  const ssl: Record<string, string> = tls === null ? {} : { ssl: 'on', ssl_cert_file: tls.cert, ssl_key_file: tls.key };
  const settings = (n: number): Record<string, string> => ({ max_connections: String(n), shared_buffers: '256MB', ...ssl });
  try {
    return { cluster: await startCluster({ settings: settings(maxConnections) }), maxConnections };
  } catch (err) {
    if (maxConnections <= 300) throw err;
    notes.push(`PostgreSQL did not start with max_connections ${maxConnections} (${(err as Error).message.split('\n')[0]}); used 300, so direct runs above ~290 clients are n/a.`);
    return { cluster: await startCluster({ settings: settings(300) }), maxConnections: 300 };
  }
}

/** After a run with many direct clients, wait until their backends are gone before the next run. */
async function settle(cluster: PgCluster, w: Workload, target: TargetName): Promise<void> {
  await sleep(500);
  if (target !== TargetName.direct || w.clients < 64) return;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const n = Number(await cluster.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"));
    if (n <= 2 * POOL_SIZE + 5) return;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------

async function bench(o: Options, started: number): Promise<Results> {
  const notes: string[] = [];
  const loadavg = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadAtStart = loadavg();
  const bouncerBin = preflight();
  const pgBin = findPgBin();
  const machine = describeMachine(REPO, pgBin, pgbouncerVersion(bouncerBin));

  // fd limits: pgbench and the idle clients inherit ours (node cannot raise it).
  const fdLimit = ownFdLimit();
  let workloads = o.workloads;
  const tooMany = workloads.filter((w) => w.clients + 100 > fdLimit);
  if (tooMany.length > 0) {
    notes.push(`Skipped ${tooMany.map((w) => w.id).join(', ')}: the open-files limit (${fdLimit}) is too low for pgbench.`);
    workloads = workloads.filter((w) => !tooMany.includes(w));
  }
  let idleClients = o.idleClients;
  if (idleClients > fdLimit - 500) {
    idleClients = Math.max(0, fdLimit - 500);
    notes.push(`Idle clients capped at ${idleClients} by this process's open-files limit (${fdLimit}); raise ulimit -n for ${o.idleClients}.`);
  }

  let framer: FramerResult[] = [];
  if (o.framerSeconds > 0) {
    log('framer microbenchmark');
    framer = runFramerBench({ seconds: o.framerSeconds });
  }

  const workDir = makeWorkDir();
  try {
    const maxClients = Math.max(16, ...workloads.map((w) => w.clients));
    const tlsFiles = workloads.some((w) => w.tls === true) ? makeTls(workDir) : null;
    const pg = await startPostgres(Math.max(100, maxClients + 100), notes, tlsFiles?.pg ?? null);
    const cluster = pg.cluster;
    log(`PostgreSQL on port ${cluster.port} (max_connections ${pg.maxConnections}); pgbench -i -s ${o.scale}`);
    const init = await pgbench(['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-i', '-s', String(o.scale), '-q', 'postgres'], {}, { timeoutMs: 900_000 });
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    await cluster.psql('VACUUM ANALYZE');

    const proxyOpts: ProxyOptions = {
      workDir,
      upstreamPort: cluster.port,
      poolSize: POOL_SIZE,
      maxClientConn: Math.max(maxClients, idleClients) + 200,
      fdLimit: PROXY_FD_LIMIT,
    };
    const targets: Record<TargetName, Target> = {
      direct: { name: TargetName.direct, port: cluster.port, daemon: null },
      pgbouncer: await startPgbouncer(bouncerBin, proxyOpts),
      pgrelay: await startPgrelay(REPO, proxyOpts),
    };
    log(`PgBouncer on port ${targets.pgbouncer.port}, pgrelay on port ${targets.pgrelay.port}`);
    // The TLS workloads' instances: the same settings plus TLS on both sides.
    let tlsTargets: Record<TargetName, Target> | null = null;
    if (tlsFiles !== null) {
      const tlsOpts: ProxyOptions = { ...proxyOpts, tls: tlsFiles.proxies };
      tlsTargets = {
        direct: targets.direct,
        pgbouncer: await startPgbouncer(bouncerBin, tlsOpts),
        pgrelay: await startPgrelay(REPO, tlsOpts),
      };
      log(`with TLS on both sides: PgBouncer on port ${tlsTargets.pgbouncer.port}, pgrelay on port ${tlsTargets.pgrelay.port}`);
    }

    // Warm-up (not recorded): fills both pools and lets node's JIT settle.
    const warm: Workload = { id: 'warmup', label: 'warm-up', clients: 16, threads: 2, args: ['-S'], tpcb: false };
    for (const t of TARGET_ORDER) {
      await runWorkload({ port: targets[t].port, workload: warm, durationSec: o.short ? 1 : 3, round: 0, logDir: path.join(workDir, 'logs'), proxyPid: null });
      if (tlsTargets !== null) {
        await runWorkload({ port: tlsTargets[t].port, workload: { ...warm, tls: true }, durationSec: o.short ? 1 : 3, round: 0, logDir: path.join(workDir, 'logs'), proxyPid: null });
      }
    }

    if (tlsTargets !== null) {
      // Evidence that the TLS instances use TLS towards PostgreSQL (the plaintext ones do not):
      // the server's own view of the backends the warm-up left in the pools.
      const counts = await cluster.psql("SELECT count(*) FILTER (WHERE s.ssl) || ' TLS, ' || count(*) FILTER (WHERE NOT s.ssl) || ' plaintext' FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL");
      notes.push(`After the warm-up, PostgreSQL's backends over TCP (both proxies' pools, plaintext and TLS instances): ${counts}.`);
      log(`server connections after warm-up: ${counts}`);
    }
    const cells: Cell[] = [];
    for (const w of workloads) {
      for (const t of TARGET_ORDER) {
        const tooMany = t === TargetName.direct && w.clients + 10 > pg.maxConnections;
        // PgBouncer before 1.21 sends a client's Parse of P_0 to whatever server it links, so the
        // second client there gets 42P05 and the first one elsewhere 26000.
        const noPrepared = t === TargetName.pgbouncer && w.prepared === true && !pgbouncerTracksPrepared(machine.pgbouncer);
        const na = tooMany || noPrepared;
        cells.push({
          workload: w.id, target: t, status: na ? CellStatus.na : CellStatus.ok,
          note: tooMany ? `${w.clients} clients need max_connections > ${pg.maxConnections}` : noPrepared ? `${machine.pgbouncer} has no prepared-statement support in transaction pooling (1.21+)` : null,
          tps: null, latAvgMs: null, latP99Ms: null, proxyCpuSec: null, proxyCpuUsPerTx: null, hostBusyPct: null, samples: [],
        });
      }
    }

    // Interleaving: every round runs every workload against direct, PgBouncer, pgrelay in turn,
    // so drift over the run (caches, table growth, a noisy neighbour) hits all three alike.
    for (let round = 1; round <= o.rounds; round++) {
      for (const w of workloads) {
        for (const t of TARGET_ORDER) {
          const cell = cells.find((c) => c.workload === w.id && c.target === t)!;
          if (cell.status === CellStatus.na) continue;
          const target = w.tls === true ? tlsTargets![t] : targets[t];
          if (target.daemon !== null && !target.daemon.alive) {
            cell.samples.push({
              round, tps: null, latAvgMs: null, latP99Ms: null, pgbenchLatAvgMs: null, transactions: null, failed: null,
              proxyCpuSec: null, hostBusyPct: 0, wallSec: 0, error: `${TARGET_LABEL[t]} is not running (${target.daemon.exitStatus})`,
            });
            continue;
          }
          if (w.tpcb) await cluster.psql('VACUUM pgbench_branches, pgbench_tellers; TRUNCATE pgbench_history');
          const s = await runWorkload({
            port: target.port, workload: w, durationSec: o.durationSec, round,
            logDir: path.join(workDir, 'logs'), proxyPid: target.daemon?.pid ?? null,
          });
          cell.samples.push(s);
          log(
            `round ${round}/${o.rounds} ${w.label.padEnd(20)} ${TARGET_LABEL[t].padEnd(17)} ` +
              (s.error !== null
                ? `FAILED ${s.error}`
                : `tps ${Math.round(s.tps ?? 0).toString().padStart(6)}  avg ${s.latAvgMs?.toFixed(3)} ms  p99 ${s.latP99Ms?.toFixed(3)} ms` +
                  (s.proxyCpuSec !== null ? `  proxy cpu ${s.proxyCpuSec.toFixed(2)} s` : '') + `  host ${s.hostBusyPct}%`),
          );
          await settle(cluster, w, t);
        }
      }
    }
    cells.forEach(summarize);
    if (targets.pgrelay.daemon && !targets.pgrelay.daemon.alive) notes.push(`pgrelay exited during the run (${targets.pgrelay.daemon.exitStatus}).\n${targets.pgrelay.daemon.logTail()}`);
    if (tlsTargets !== null && tlsTargets.pgrelay.daemon && !tlsTargets.pgrelay.daemon.alive) notes.push(`pgrelay (TLS) exited during the run (${tlsTargets.pgrelay.daemon.exitStatus}).\n${tlsTargets.pgrelay.daemon.logTail()}`);
    await targets.pgbouncer.daemon!.stop();
    await targets.pgrelay.daemon!.stop();
    await tlsTargets?.pgbouncer.daemon?.stop();
    await tlsTargets?.pgrelay.daemon?.stop();

    // Memory: fresh proxies, so the "before" RSS is not inflated by the pgbench runs.
    const memory: MemoryEntry[] = [];
    if (idleClients > 0) {
      for (const t of [TargetName.pgbouncer, TargetName.pgrelay] as const) {
        log(`memory: ${idleClients} idle clients through ${TARGET_LABEL[t]}`);
        let proxy: Target | null = null;
        try {
          proxy = t === TargetName.pgbouncer ? await startPgbouncer(bouncerBin, proxyOpts) : await startPgrelay(REPO, proxyOpts);
          const r = await measureIdleClients(proxy.port, proxy.daemon!.pid, idleClients, 64, o.idleSettleSec);
          memory.push({ target: t, ...r, error: r.opened === 0 ? (r.firstError ?? 'no client logged in') : null });
          log(`memory: ${TARGET_LABEL[t]} ${r.opened} clients, ${r.bytesPerClient} bytes each at 2 s, ${r.bytesPerClientSettled} after ${r.settleSec} s${r.failed ? `, ${r.failed} failed (${r.firstError})` : ''}`);
        } catch (err) {
          memory.push({ target: t, error: (err as Error).message.split('\n')[0]! });
        } finally {
          await proxy?.daemon?.stop();
        }
      }
    }

    notes.push(`Load average (1/5/15 min) at the start: ${loadAtStart}; at the end: ${loadavg()}. Other work on the machine shows up in the host CPU busy column.`);
    return {
      generatedAt: new Date().toISOString(),
      mode: o.short ? 'short' : 'full',
      elapsedSec: Math.round((Date.now() - started) / 1000),
      settings: {
        rounds: o.rounds,
        durationSec: o.durationSec,
        scale: o.scale,
        poolMode: 'transaction',
        poolSize: POOL_SIZE,
        maxConnections: pg.maxConnections,
        order: TARGET_ORDER.map((t) => TARGET_LABEL[t]).join(' → '),
      },
      machine,
      workloads,
      cells,
      ratios: computeRatios(workloads, cells),
      modeRatios: computeModeRatios(workloads, cells),
      memory,
      framer,
      notes,
    };
  } finally {
    await stopAllDaemons();
    await destroyAll();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const o = parseOptions();
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      if (stopping) return;
      stopping = true;
      log(`${sig}: stopping everything`);
      void Promise.allSettled([stopAllDaemons(), destroyAll()]).then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
  const res = await bench(o, started);
  writeResults(o.outDir, res);
  process.stdout.write(renderMarkdown(res));
  log(`results in ${o.outDir} (results.json, results.md, ratios.svg); ${res.elapsedSec} s`);
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
