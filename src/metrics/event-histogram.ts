// A histogram with one label, fed on the hot path with a map lookup and three number writes (no
// label hashing or objects per observation, as prom-client's Histogram.observe does), and exposed
// through the same prom-client registry in the Prometheus text format at scrape time.

import type { Metric, MetricValueWithName, Registry } from 'prom-client';
import { MAX_LABEL_VALUES, OTHER_LABEL } from './scraped-counter.js';

interface Series {
  /** Per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class EventHistogram<L extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** What the exposition shows: at most MAX_LABEL_VALUES series plus OTHER_LABEL. */
  private readonly series = new Map<string, Series>();
  /** Every label value seen → its series (an overflowing value maps to the shared one). */
  private readonly lookup = new Map<string, Series>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly label: L,
    private readonly bounds: readonly number[],
  ) {
    registry.registerMetric(this as unknown as Metric<L>);
  }

  observe(labelValue: string, value: number): void {
    const s = this.lookup.get(labelValue) ?? this.addSeries(labelValue);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Called by the registry at scrape time. */
  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] }> {
    const values: MetricValueWithName<string>[] = [];
    for (const [labelValue, s] of this.series) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { le: i < this.bounds.length ? this.bounds[i]! : '+Inf', [this.label]: labelValue },
          value: cumulative,
        });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { [this.label]: labelValue }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.label]: labelValue }, value: s.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }

  reset(): void {
    this.series.clear();
    this.lookup.clear();
  }

  /** A new label value; past MAX_LABEL_VALUES they share one OTHER_LABEL series (bounded cardinality). */
  private addSeries(labelValue: string): Series {
    const key = this.series.size < MAX_LABEL_VALUES ? labelValue : OTHER_LABEL;
    let s = this.series.get(key);
    if (s === undefined) {
      s = { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    this.lookup.set(labelValue, s);
    return s;
  }
}
