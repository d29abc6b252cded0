// The benchmark's short mode end to end (bench/run.ts --short): it must run against all three
// targets and write results.json, results.md and ratios.svg. No assertion on the numbers.

import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgbouncer } from '../../bench/targets.js';
import type { Results } from '../../bench/report.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WORKLOADS = ['select-c16', 'tpcb-c16'];
const TARGETS = ['direct', 'pgbouncer', 'pgrelay'];
const TIMEOUT_MS = 150_000;

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (findPgbouncer() === null && !isRoot) {
  // The test command installs PgBouncer (scripts/ensure-deps.sh --test); without it this fails, loudly.
  t.fail('pgbouncer is not installed and we are not root to install it: run bash scripts/ensure-deps.sh pgbouncer as root');
} else {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pgrelay-bench-test-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));

  t.test('bench/run.ts --short runs and writes its three files', async (t) => {
    const args = ['--import', 'tsx', path.join(REPO, 'bench', 'run.ts'), '--short', '--rounds', '1', '--duration', '2', '--workloads', WORKLOADS.join(','), '--out', out];
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // SIGTERM lets run.ts stop its proxies and PostgreSQL; SIGKILL if that hangs too.
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    }, TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    t.equal(code, 0, `exit code (stderr tail: ${stderr.slice(-2000)})`);

    const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results;
    t.equal(res.mode, 'short');
    for (const w of WORKLOADS) {
      for (const target of TARGETS) {
        const cell = res.cells.find((c) => c.workload === w && c.target === target);
        t.ok(cell, `results.json has ${w} against ${target}`);
        t.equal(cell?.samples.length, 1, `${w} against ${target} ran one round`);
      }
      t.ok(res.ratios.find((r) => r.workload === w), `results.json has the ratios of ${w}`);
    }
    t.same(res.memory.map((m) => m.target).sort(), ['pgbouncer', 'pgrelay'], 'memory entries for both proxies');
    t.ok(res.framer.length > 0, 'framer results');
    t.ok(res.machine.nproc > 0, 'machine description');

    const md = fs.readFileSync(path.join(out, 'results.md'), 'utf8');
    t.match(md, /\| workload \| tps vs PgBouncer \|/, 'results.md has the ratio table');
    t.match(md, /## Machine/, 'results.md describes the machine');
    t.match(md, /## Targets\n\n\| target \| measured \| verdict \|/, 'results.md judges the targets');
    t.ok(Array.isArray(res.goals) && res.goals.length > 0, 'results.json has the targets');
    const svg = fs.readFileSync(path.join(out, 'ratios.svg'), 'utf8');
    t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/, 'ratios.svg is an SVG');
    t.match(svg, /<\/svg>\s*$/);
  });
}
