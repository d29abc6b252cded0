// A prom-client Counter whose value lives elsewhere (a plain field the hot path bumps) and is
// copied in at scrape time, so the exposition still says `# TYPE ... counter`.

import { Counter, type Registry } from 'prom-client';

/** Label values kept per counter; the rest are summed under OTHER_LABEL (see cappedEntries). */
export const MAX_LABEL_VALUES = 50;
export const OTHER_LABEL = 'other';

/** A counter without labels, read from `read()` at each scrape. */
export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  return new Counter({
    name,
    help,
    registers: [registry],
    // prom-client counters can only be incremented: reset to 0, then add the current total.
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one label, read from a (label value → total) map at each scrape. */
export function scrapedLabeledCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  label: L,
  read: () => Iterable<readonly [string, number]>,
): Counter<L> {
  return new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      // reset() also drops label values that are gone, so the exposition mirrors the source map.
      this.reset();
      for (const [value, total] of cappedEntries(read())) this.inc({ [label]: value } as Record<L, string>, total);
    },
  });
}

/**
 * The first MAX_LABEL_VALUES entries as they are, the rest summed under OTHER_LABEL. The sources are
 * insertion-ordered maps that only grow, so a value never moves between its own series and "other",
 * and both stay monotonic. This bounds the series a free-text key (a disconnect reason, a database
 * name a client made up) can create.
 */
export function cappedEntries(entries: Iterable<readonly [string, number]>): Array<readonly [string, number]> {
  const out: Array<readonly [string, number]> = [];
  let other = 0;
  let overflow = false;
  for (const [value, total] of entries) {
    if (out.length < MAX_LABEL_VALUES && value !== OTHER_LABEL) out.push([value, total]);
    else {
      other += total;
      overflow = true;
    }
  }
  if (overflow) out.push([OTHER_LABEL, other]);
  return out;
}

/** One sample of a counter with several labels. */
export type PoolSample = readonly [Readonly<Record<string, string>>, number];

/**
 * A counter with several labels (database and user by default), read at each scrape. As with
 * cappedEntries, past MAX_LABEL_VALUES label sets the rest are summed under OTHER_LABEL in every
 * label, so made-up names cannot grow the exposition without bound.
 */
export function scrapedPoolCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => Iterable<PoolSample>,
  labels: readonly string[] = ['database', 'user'],
): Counter {
  return new Counter({
    name,
    help,
    labelNames: labels,
    registers: [registry],
    collect() {
      this.reset();
      // Several samples may share a label set (retired pools of one database): they add up.
      const sums = new Map<string, [Record<string, string>, number]>();
      for (const [values, total] of read()) {
        const key = labels.map((l) => values[l] ?? '').join('\u0000');
        const found = sums.get(key);
        if (found !== undefined) found[1] += total;
        else sums.set(key, [{ ...values }, total]);
      }
      const other = Object.fromEntries(labels.map((l) => [l, OTHER_LABEL]));
      const capped = cappedEntries([...sums.values()].map(([values, total]) => [JSON.stringify(values), total] as const));
      for (const [key, total] of capped) this.inc(key === OTHER_LABEL ? other : (JSON.parse(key) as Record<string, string>), total);
    },
  });
}
