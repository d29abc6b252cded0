// Turns a benchmark's measurements into its three files: results.json (everything, per round),
// results.md (tables and the machine description) and ratios.svg (pgrelay/PgBouncer tps per
// workload as horizontal bars, with a line at 1.0), drawn by hand.

import fs from 'node:fs';
import path from 'node:path';
import type { FramerResult } from './framer.js';
import { framerTable } from './framer.js';
import type { IdleResult } from './idle-clients.js';
import type { Machine } from './machine.js';
import { TARGET_LABEL, TARGET_ORDER } from './targets.js';
import type { TargetName } from './targets.js';
import type { RunSample, Workload } from './workloads.js';
import { median, round3 } from './workloads.js';
import { evaluateGoals, goalsTable } from './goals.js';
import type { GoalResult } from './goals.js';

export const CellStatus = { ok: 'ok', failed: 'failed', na: 'n/a' } as const;
export type CellStatus = (typeof CellStatus)[keyof typeof CellStatus];

/** One workload against one target: every round, and the medians that the tables show. */
export interface Cell {
  workload: string;
  target: TargetName;
  status: CellStatus;
  /** Why a cell is n/a or failed. */
  note: string | null;
  tps: number | null;
  latAvgMs: number | null;
  latP99Ms: number | null;
  proxyCpuSec: number | null;
  /** Proxy CPU per transaction, in microseconds. */
  proxyCpuUsPerTx: number | null;
  hostBusyPct: number | null;
  samples: RunSample[];
}

export interface Ratio {
  workload: string;
  tpsVsPgbouncer: number | null;
  tpsVsDirect: number | null;
  /** Lower is better for the latency ratios. */
  p99VsPgbouncer: number | null;
  p99VsDirect: number | null;
}

/**
 * -M prepared against -M extended (both -S) at one client count, within one run: what preparing
 * once saves (the server's parse and plan of every execution). pgrelay's is the target; direct
 * PostgreSQL's is what the saving is when no proxy is in the way.
 */
export interface ModeRatio {
  clients: number;
  pgrelay: number | null;
  direct: number | null;
}

export interface MemoryEntry extends Partial<IdleResult> {
  target: TargetName;
  error: string | null;
}

export interface Results {
  generatedAt: string;
  mode: 'full' | 'short';
  elapsedSec: number;
  settings: {
    rounds: number;
    durationSec: number;
    scale: number;
    poolMode: string;
    poolSize: number;
    maxConnections: number;
    order: string;
  };
  machine: Machine;
  workloads: Workload[];
  cells: Cell[];
  ratios: Ratio[];
  /** -M prepared / -M extended tps per client count (absent in results written before it existed). */
  modeRatios?: ModeRatio[];
  memory: MemoryEntry[];
  framer: FramerResult[];
  notes: string[];
  /** The targets, judged from `ratios` and `memory` when the results are written. */
  goals?: GoalResult[];
}

/** Fills a cell's medians from its samples (failed rounds are left out). */
export function summarize(cell: Cell): Cell {
  if (cell.status === CellStatus.na) return cell;
  const good = cell.samples.filter((s) => s.error === null);
  if (good.length === 0) {
    cell.status = CellStatus.failed;
    cell.note ??= cell.samples.find((s) => s.error !== null)?.error ?? 'no runs';
    return cell;
  }
  cell.status = CellStatus.ok;
  if (good.length < cell.samples.length) cell.note = `${cell.samples.length - good.length} of ${cell.samples.length} rounds failed: ${cell.samples.find((s) => s.error)!.error}`;
  const r = (x: number | null): number | null => (x === null ? null : round3(x));
  cell.tps = r(median(good.map((s) => s.tps)));
  cell.latAvgMs = r(median(good.map((s) => s.latAvgMs)));
  cell.latP99Ms = r(median(good.map((s) => s.latP99Ms)));
  cell.proxyCpuSec = r(median(good.map((s) => s.proxyCpuSec)));
  cell.proxyCpuUsPerTx = r(median(good.map((s) => (s.proxyCpuSec !== null && s.transactions ? (s.proxyCpuSec * 1e6) / s.transactions : null))));
  cell.hostBusyPct = r(median(good.map((s) => s.hostBusyPct)));
  return cell;
}

export function computeRatios(workloads: readonly Workload[], cells: readonly Cell[]): Ratio[] {
  const get = (w: string, t: TargetName): Cell | undefined => cells.find((c) => c.workload === w && c.target === t && c.status === CellStatus.ok);
  const div = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a != null && b != null && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;
  return workloads.map((w) => {
    const relay = get(w.id, 'pgrelay');
    const bouncer = get(w.id, 'pgbouncer');
    const direct = get(w.id, 'direct');
    return {
      workload: w.id,
      tpsVsPgbouncer: div(relay?.tps, bouncer?.tps),
      tpsVsDirect: div(relay?.tps, direct?.tps),
      p99VsPgbouncer: div(relay?.latP99Ms, bouncer?.latP99Ms),
      p99VsDirect: div(relay?.latP99Ms, direct?.latP99Ms),
    };
  });
}

/** -M prepared tps over -M extended tps, for every client count that ran both. */
export function computeModeRatios(workloads: readonly Workload[], cells: readonly Cell[]): ModeRatio[] {
  const tps = (id: string, t: TargetName): number | null => cells.find((c) => c.workload === id && c.target === t && c.status === CellStatus.ok)?.tps ?? null;
  const div = (a: number | null, b: number | null): number | null => (a !== null && b !== null && b > 0 ? Math.round((a / b) * 1000) / 1000 : null);
  const out: ModeRatio[] = [];
  for (const w of workloads) {
    if (w.prepared !== true) continue;
    const extended = `extended-c${w.clients}`;
    if (!workloads.some((x) => x.id === extended)) continue;
    out.push({ clients: w.clients, pgrelay: div(tps(w.id, 'pgrelay'), tps(extended, 'pgrelay')), direct: div(tps(w.id, 'direct'), tps(extended, 'direct')) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Markdown

const fmt = (x: number | null | undefined, digits = 2): string => (x == null ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const ratio = (x: number | null): string => (x === null ? 'n/a' : `${x.toFixed(2)}×`);
const kib = (b: number | null | undefined): string => (b == null ? '–' : `${(b / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} KiB`);

export function renderMarkdown(res: Results): string {
  const m = res.machine;
  const s = res.settings;
  const label = (id: string): string => res.workloads.find((w) => w.id === id)?.label ?? id;
  const out: string[] = [];
  out.push(`# pgrelay benchmark results (${res.mode} run)`);
  out.push('');
  out.push(
    `${res.generatedAt}. ${s.rounds} round(s) × ${s.durationSec} s per workload and target, interleaved (${s.order}); ` +
      `pgbench scale ${s.scale}; both proxies in ${s.poolMode} mode with pool size ${s.poolSize}; PostgreSQL max_connections ${s.maxConnections}. ` +
      `Total time ${Math.round(res.elapsedSec)} s. Everything (PostgreSQL, proxy, pgbench) shares the same ${m.nproc} CPUs.`,
  );
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push('| | |', '| --- | --- |');
  out.push(`| CPUs (nproc) | ${m.nproc} × ${m.cpuModel} |`);
  out.push(`| memory | ${m.memTotalGiB} GiB |`);
  out.push(`| kernel | ${m.kernel} (${m.os}) |`);
  out.push(`| node | ${m.node} |`);
  out.push(`| PostgreSQL | ${m.postgres} |`);
  out.push(`| pgbench | ${m.pgbench} |`);
  out.push(`| PgBouncer | ${m.pgbouncer} |`);
  out.push(`| pgrelay | ${m.pgrelay} |`);
  out.push('');
  out.push('## pgrelay against PgBouncer and direct PostgreSQL');
  out.push('');
  out.push('tps: higher is better (ratio above 1 = pgrelay faster). p99: lower is better (ratio below 1 = pgrelay faster).');
  out.push('');
  out.push('| workload | tps vs PgBouncer | tps vs direct | p99 vs PgBouncer | p99 vs direct |', '| --- | ---: | ---: | ---: | ---: |');
  for (const r of res.ratios) {
    out.push(`| ${label(r.workload)} | ${ratio(r.tpsVsPgbouncer)} | ${ratio(r.tpsVsDirect)} | ${ratio(r.p99VsPgbouncer)} | ${ratio(r.p99VsDirect)} |`);
  }
  if ((res.modeRatios ?? []).length > 0) {
    out.push('');
    out.push('-M prepared against -M extended (both -S), same run: tps of the one over tps of the other. Above 1 = preparing once pays.');
    out.push('');
    out.push('| clients | pgrelay: prepared / extended | direct: prepared / extended |', '| ---: | ---: | ---: |');
    for (const m of res.modeRatios!) out.push(`| ${m.clients} | ${ratio(m.pgrelay)} | ${ratio(m.direct)} |`);
  }
  out.push('');
  out.push('![pgrelay/PgBouncer tps ratio per workload](ratios.svg)');
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(goalsTable(res.goals ?? evaluateGoals(res.ratios, res.memory, res.modeRatios)));
  out.push('');
  out.push('## Throughput, latency and proxy CPU (median of rounds)');
  out.push('');
  out.push(
    '| workload | target | tps | avg latency ms | p99 latency ms | proxy CPU s | proxy CPU µs/tx | host CPU busy | tps per round |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const w of res.workloads) {
    for (const t of TARGET_ORDER) {
      const c = res.cells.find((x) => x.workload === w.id && x.target === t);
      if (c === undefined) continue;
      if (c.status !== CellStatus.ok) {
        out.push(`| ${w.label} | ${TARGET_LABEL[t]} | ${c.status}: ${escapeCell(c.note ?? '')} | | | | | | |`);
        continue;
      }
      const rounds = c.samples.map((x) => (x.tps === null || x.error !== null ? 'failed' : Math.round(x.tps).toString())).join(', ');
      out.push(
        `| ${w.label} | ${TARGET_LABEL[t]} | ${fmt(c.tps, 0)} | ${fmt(c.latAvgMs, 3)} | ${fmt(c.latP99Ms, 3)} | ${t === 'direct' ? 'n/a' : fmt(c.proxyCpuSec, 2)} | ${t === 'direct' ? 'n/a' : fmt(c.proxyCpuUsPerTx, 1)} | ${fmt(c.hostBusyPct, 0)} % | ${rounds} |`,
      );
    }
  }
  const partial = res.cells.filter((c) => c.status === CellStatus.ok && c.note !== null);
  if (partial.length > 0) {
    out.push('');
    for (const c of partial) out.push(`- ${label(c.workload)}, ${TARGET_LABEL[c.target]}: ${c.note}`);
  }
  out.push('');
  out.push('## Memory per idle client');
  out.push('');
  const settle = res.memory.find((e) => e.settleSec !== undefined)?.settleSec ?? 30;
  out.push(
    `RSS before the logins, 2 s after the last one (what the login burst left: garbage, grown heaps) and after ${settle} s of idleness (what keeping the clients open costs).`,
    '',
    `| proxy | idle clients | RSS before | RSS 2 s after | bytes per client at 2 s | RSS after ${settle} s | bytes per idle client | login time |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const e of res.memory) {
    if (e.error !== null) {
      out.push(`| ${TARGET_LABEL[e.target]} | failed: ${escapeCell(e.error)} | | | | | | |`);
      continue;
    }
    const opened = e.failed ? `${e.opened} (${e.failed} failed)` : String(e.opened);
    out.push(
      `| ${TARGET_LABEL[e.target]} | ${opened} | ${kib(e.rssBeforeBytes)} | ${kib(e.rssAfterBytes)} | ${e.bytesPerClient?.toLocaleString('en-US') ?? '–'} | ${kib(e.rssSettledBytes)} | ${e.bytesPerClientSettled?.toLocaleString('en-US') ?? '–'} | ${e.openSec ?? '–'} s |`,
    );
  }
  if (res.framer.length > 0) {
    out.push('');
    out.push('## Framer microbenchmark (no sockets)');
    out.push('');
    out.push(framerTable(res.framer));
  }
  if (res.notes.length > 0) {
    out.push('');
    out.push('## Notes');
    out.push('');
    for (const n of res.notes) out.push(`- ${n}`);
  }
  out.push('');
  return out.join('\n');
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 200);
}

// ---------------------------------------------------------------------------------------------
// SVG

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars of pgrelay/PgBouncer tps per workload, a solid line at 1.0, a dashed one at 0.95. */
export function renderSvg(res: Results): string {
  const rows = res.ratios.map((r) => ({ label: res.workloads.find((w) => w.id === r.workload)?.label ?? r.workload, value: r.tpsVsPgbouncer }));
  const labelW = 170;
  const plotW = 420;
  const rowH = 28;
  const top = 48;
  const width = labelW + plotW + 70;
  const height = top + rows.length * rowH + 36;
  const maxV = Math.max(1.2, ...rows.map((r) => (r.value ?? 0) * 1.05));
  const x = (v: number): number => labelW + (v / maxV) * plotW;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">pgrelay tps / PgBouncer tps (median of ${res.settings.rounds} round(s), higher is better)</text>`);
  // x axis ticks every 0.2
  for (let v = 0; v <= maxV + 1e-9; v += 0.2) {
    const px = x(v).toFixed(1);
    parts.push(`<line x1="${px}" y1="${top - 6}" x2="${px}" y2="${top + rows.length * rowH}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${px}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${labelW - 8}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(r.label)}</text>`);
    if (r.value === null) {
      parts.push(`<text x="${labelW + 6}" y="${y + rowH / 2 + 4}" fill="#888">n/a</text>`);
      return;
    }
    const color = r.value >= 1 ? '#2e8b57' : r.value >= 0.95 ? '#e0a100' : '#c0392b';
    parts.push(`<rect x="${labelW}" y="${y + 5}" width="${(x(r.value) - labelW).toFixed(1)}" height="${rowH - 10}" fill="${color}"/>`);
    parts.push(`<text x="${(x(r.value) + 6).toFixed(1)}" y="${y + rowH / 2 + 4}">${r.value.toFixed(2)}×</text>`);
  });
  const one = x(1).toFixed(1);
  const p95 = x(0.95).toFixed(1);
  parts.push(`<line x1="${p95}" y1="${top - 6}" x2="${p95}" y2="${top + rows.length * rowH}" stroke="#888" stroke-dasharray="4 3"/>`);
  parts.push(`<line x1="${one}" y1="${top - 10}" x2="${one}" y2="${top + rows.length * rowH}" stroke="#000" stroke-width="1.5"/>`);
  parts.push(`<text x="${one}" y="${top - 14}" text-anchor="middle" font-size="11">1.0 = PgBouncer</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function writeResults(dir: string, res: Results): void {
  fs.mkdirSync(dir, { recursive: true });
  res.goals = evaluateGoals(res.ratios, res.memory, res.modeRatios);
  fs.writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(res, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'results.md'), renderMarkdown(res));
  fs.writeFileSync(path.join(dir, 'ratios.svg'), renderSvg(res));
}
