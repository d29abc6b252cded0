// Reads pgbench's per-transaction logs (-l) to measure what clients saw during an event: the
// longest gap between consecutive commits (the client-visible stall) and the first commit after
// a given instant (pgrelay's share of the stall, counted from when the new primary was writable).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CommitTimeline {
  /** Commit instants in ms since the epoch, sorted. */
  readonly commits: number[];
  readonly failed: number;
}

/** Reads every `<prefix>.*` log file in `dir`. Line: client_id txn_no latency_us script_no epoch_s epoch_us ... */
export function readPgbenchLogs(dir: string, prefix: string): CommitTimeline {
  const commits: number[] = [];
  let failed = 0;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(prefix + '.')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const p = line.trim().split(/\s+/);
      if (p.length < 6) continue;
      if (p[2] === 'failed' || p[2] === 'skipped') {
        failed++;
        continue;
      }
      commits.push(Number(p[4]) * 1000 + Number(p[5]) / 1000);
    }
  }
  commits.sort((a, b) => a - b);
  return { commits, failed };
}

/** The longest gap between consecutive commits inside [from, to] (ms), with where it started. */
export function longestStall(t: CommitTimeline, from: number, to: number): { ms: number; at: number } {
  let best = { ms: 0, at: from };
  let prev = from;
  for (const c of t.commits) {
    if (c < from) continue;
    if (c > to) break;
    if (c - prev > best.ms) best = { ms: c - prev, at: prev };
    prev = c;
  }
  // The quiet time after the last commit (the run ended) is not a stall of this event.
  return best;
}

/** The first commit at or after `instant` (ms), or null. */
export function firstCommitAfter(t: CommitTimeline, instant: number): number | null {
  for (const c of t.commits) if (c >= instant) return c;
  return null;
}
