// The speed and memory targets pgrelay is held to, judged against one run's ratios and memory
// readings: each goal says what was measured, against which bound, and whether it was met.
// A goal whose workload was not run (or failed) is "not measured", never "met".

import type { MemoryEntry, ModeRatio, Ratio } from './report.js';

export const GoalVerdict = { met: 'met', missed: 'missed', notMeasured: 'not measured' } as const;
export type GoalVerdict = (typeof GoalVerdict)[keyof typeof GoalVerdict];

export interface GoalResult {
  goal: string;
  /** The measured value, as shown (e.g. "0.93×", "1,291 B"). */
  measured: string;
  verdict: GoalVerdict;
}

interface RatioGoal {
  goal: string;
  workload: string;
  field: 'tpsVsPgbouncer' | 'p99VsPgbouncer';
  /** Met when the ratio is at least `min` (tps) or at most `max` (latency). */
  min?: number;
  max?: number;
}

const RATIO_GOALS: readonly RatioGoal[] = [
  { goal: 'tps ≥ 1.0× PgBouncer at -S c=64', workload: 'select-c64', field: 'tpsVsPgbouncer', min: 1.0 },
  { goal: 'tps ≥ 1.0× PgBouncer at -S c=256', workload: 'select-c256', field: 'tpsVsPgbouncer', min: 1.0 },
  { goal: 'tps ≥ 0.95× PgBouncer at -S c=16', workload: 'select-c16', field: 'tpsVsPgbouncer', min: 0.95 },
  { goal: 'p99 ≤ 1.1× PgBouncer at -S c=16', workload: 'select-c16', field: 'p99VsPgbouncer', max: 1.1 },
  { goal: 'p99 ≤ 1.1× PgBouncer at -S c=64', workload: 'select-c64', field: 'p99VsPgbouncer', max: 1.1 },
  { goal: 'p99 ≤ 1.1× PgBouncer at -S c=256', workload: 'select-c256', field: 'p99VsPgbouncer', max: 1.1 },
  { goal: '-C tps within 5% of PgBouncer (≥ 0.95×)', workload: 'connect-c16', field: 'tpsVsPgbouncer', min: 0.95 },
  { goal: 'TPC-B tps within 5% of PgBouncer (≥ 0.95×)', workload: 'tpcb-c16', field: 'tpsVsPgbouncer', min: 0.95 },
  { goal: 'TLS on both sides: tps ≥ 0.9× PgBouncer at -S c=16', workload: 'tls-select-c16', field: 'tpsVsPgbouncer', min: 0.9 },
  { goal: 'TLS on both sides: tps ≥ 0.9× PgBouncer at -S c=64', workload: 'tls-select-c64', field: 'tpsVsPgbouncer', min: 0.9 },
];

/** Idle-client memory bound, in bytes of RSS per connection (settled reading). */
export const MAX_IDLE_CLIENT_BYTES = 4 * 1024;

/** Client counts at which pgrelay's -M prepared must beat its own -M extended (same run). */
const PREPARED_GOAL_CLIENTS = [16, 64];

export function evaluateGoals(ratios: readonly Ratio[], memory: readonly MemoryEntry[], modeRatios: readonly ModeRatio[] = []): GoalResult[] {
  const out: GoalResult[] = [];
  for (const g of RATIO_GOALS) {
    const value = ratios.find((r) => r.workload === g.workload)?.[g.field] ?? null;
    if (value === null) {
      out.push({ goal: g.goal, measured: 'n/a', verdict: GoalVerdict.notMeasured });
      continue;
    }
    const met = g.min !== undefined ? value >= g.min : value <= g.max!;
    out.push({ goal: g.goal, measured: `${value.toFixed(2)}×`, verdict: met ? GoalVerdict.met : GoalVerdict.missed });
  }
  // Preparing once saves the server's parse and plan: through pgrelay it must show.
  for (const clients of PREPARED_GOAL_CLIENTS) {
    const goal = `pgrelay -M prepared tps > its -M extended tps at -S c=${clients}`;
    const value = modeRatios.find((m) => m.clients === clients)?.pgrelay ?? null;
    out.push(value === null ? { goal, measured: 'n/a', verdict: GoalVerdict.notMeasured } : { goal, measured: `${value.toFixed(2)}×`, verdict: value > 1 ? GoalVerdict.met : GoalVerdict.missed });
  }
  const relay = memory.find((m) => m.target === 'pgrelay' && m.error === null);
  const perClient = relay?.bytesPerClientSettled ?? null;
  out.push(
    perClient === null
      ? { goal: `≤ ${MAX_IDLE_CLIENT_BYTES / 1024} KB RSS per idle client`, measured: 'n/a', verdict: GoalVerdict.notMeasured }
      : {
          goal: `≤ ${MAX_IDLE_CLIENT_BYTES / 1024} KB RSS per idle client`,
          measured: `${perClient.toLocaleString('en-US')} B`,
          verdict: perClient <= MAX_IDLE_CLIENT_BYTES ? GoalVerdict.met : GoalVerdict.missed,
        },
  );
  return out;
}

export function goalsTable(goals: readonly GoalResult[]): string {
  const rows = goals.map((g) => `| ${g.goal} | ${g.measured} | ${g.verdict} |`);
  return ['| target | measured | verdict |', '| --- | ---: | --- |', ...rows].join('\n');
}
