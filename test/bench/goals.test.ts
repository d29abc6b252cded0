// The benchmark's targets: each is judged met, missed or not measured from a run's ratios and
// memory readings, with the bound applied the right way round (tps at least, p99 at most).

import t from 'tap';
import { evaluateGoals, goalsTable, GoalVerdict, MAX_IDLE_CLIENT_BYTES } from '../../bench/goals.js';
import type { MemoryEntry, Ratio } from '../../bench/report.js';

const ratio = (workload: string, tps: number | null, p99: number | null): Ratio => ({ workload, tpsVsPgbouncer: tps, tpsVsDirect: null, p99VsPgbouncer: p99, p99VsDirect: null });
const memory = (bytes: number | null, error: string | null = null): MemoryEntry[] => [
  { target: 'pgbouncer', error: null, bytesPerClientSettled: 800 },
  { target: 'pgrelay', error, bytesPerClientSettled: bytes ?? undefined },
];

t.test('bounds apply in the right direction, at the bound itself too', async (t) => {
  const goals = evaluateGoals(
    [ratio('select-c16', 0.95, 1.1), ratio('select-c64', 0.99, 1.11), ratio('select-c256', 1.02, 0.8), ratio('connect-c16', 0.94, 1), ratio('tpcb-c16', 0.96, 1)],
    memory(MAX_IDLE_CLIENT_BYTES),
  );
  const verdict = (name: string): string => goals.find((g) => g.goal.includes(name))!.verdict;
  t.equal(verdict('0.95× PgBouncer at -S c=16'), GoalVerdict.met, 'exactly 0.95× meets ≥ 0.95×');
  t.equal(verdict('1.0× PgBouncer at -S c=64'), GoalVerdict.missed);
  t.equal(verdict('1.0× PgBouncer at -S c=256'), GoalVerdict.met);
  t.equal(verdict('p99 ≤ 1.1× PgBouncer at -S c=16'), GoalVerdict.met, 'exactly 1.1× meets ≤ 1.1×');
  t.equal(verdict('p99 ≤ 1.1× PgBouncer at -S c=64'), GoalVerdict.missed, 'a higher p99 ratio misses');
  t.equal(verdict('p99 ≤ 1.1× PgBouncer at -S c=256'), GoalVerdict.met);
  t.equal(verdict('-C tps'), GoalVerdict.missed);
  t.equal(verdict('TPC-B tps'), GoalVerdict.met);
  t.equal(verdict('RSS per idle client'), GoalVerdict.met, 'exactly 4 KB meets');
  const tls = evaluateGoals([ratio('tls-select-c16', 0.9, null), ratio('tls-select-c64', 0.89, null)], memory(null));
  t.equal(tls.find((g) => g.goal.includes('TLS on both sides: tps ≥ 0.9× PgBouncer at -S c=16'))!.verdict, GoalVerdict.met, 'TLS: exactly 0.9× meets');
  t.equal(tls.find((g) => g.goal.includes('TLS on both sides: tps ≥ 0.9× PgBouncer at -S c=64'))!.verdict, GoalVerdict.missed);
  t.equal(goals.find((g) => g.goal.includes('RSS'))!.measured, '4,096 B');
});

t.test('what was not run is not measured, never met', async (t) => {
  const goals = evaluateGoals([ratio('select-c16', null, null)], memory(null, 'fd limit'));
  t.ok(goals.length > 0);
  for (const g of goals) t.equal(g.verdict, GoalVerdict.notMeasured, g.goal);
  t.equal(evaluateGoals([], memory(5000)).find((g) => g.goal.includes('RSS'))!.verdict, GoalVerdict.missed);
});

t.test('-M prepared must beat -M extended through pgrelay, not merely match it', async (t) => {
  const goals = evaluateGoals([], memory(null), [
    { clients: 16, pgrelay: 1.2, direct: 1.3 },
    { clients: 64, pgrelay: 1, direct: 1.3 },
  ]);
  t.equal(goals.find((g) => g.goal.includes('-M prepared tps > its -M extended tps at -S c=16'))!.verdict, GoalVerdict.met);
  t.equal(goals.find((g) => g.goal.includes('-M prepared tps > its -M extended tps at -S c=16'))!.measured, '1.20×');
  t.equal(goals.find((g) => g.goal.includes('-M extended tps at -S c=64'))!.verdict, GoalVerdict.missed, 'equal is not faster');
  t.equal(evaluateGoals([], memory(null)).find((g) => g.goal.includes('-M prepared'))!.verdict, GoalVerdict.notMeasured, 'not run: not measured');
});

t.test('the table has a row per goal', async (t) => {
  const goals = evaluateGoals([ratio('select-c16', 1, 1)], memory(1000));
  const table = goalsTable(goals).split('\n');
  t.equal(table.length, goals.length + 2);
  t.match(table[2]!, /\| tps ≥ 1\.0× PgBouncer at -S c=64 \| n\/a \| not measured \|/);
});
