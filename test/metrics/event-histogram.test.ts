// EventHistogram: bucket placement at the bounds, cumulative exposition, and the cap on label
// values (a client can name any database through a wildcard entry).

import t from 'tap';
import { Registry } from 'prom-client';
import { EventHistogram } from '../../src/metrics/event-histogram.js';
import { MAX_LABEL_VALUES, OTHER_LABEL } from '../../src/metrics/scraped-counter.js';

t.test('a value on a bound counts in that bucket; buckets are cumulative; sum and count', async (t) => {
  const r = new Registry();
  const h = new EventHistogram(r, 'x_seconds', 'help text', 'database', [0.1, 1]);
  h.observe('a', 0.1);
  h.observe('a', 0.5);
  h.observe('a', 7);
  const text = await r.metrics();
  t.match(text, '# HELP x_seconds help text');
  t.match(text, '# TYPE x_seconds histogram');
  t.ok(text.includes('x_seconds_bucket{le="0.1",database="a"} 1'), text);
  t.ok(text.includes('x_seconds_bucket{le="1",database="a"} 2'));
  t.ok(text.includes('x_seconds_bucket{le="+Inf",database="a"} 3'));
  t.ok(text.includes('x_seconds_sum{database="a"} 7.6'));
  t.ok(text.includes('x_seconds_count{database="a"} 3'));
  h.reset();
  t.notOk((await r.metrics()).includes('x_seconds_bucket'), 'reset drops every series');
});

t.test(`past ${MAX_LABEL_VALUES} label values, new ones share the "${OTHER_LABEL}" series`, async (t) => {
  const r = new Registry();
  const h = new EventHistogram(r, 'w_seconds', 'h', 'database', [1]);
  for (let i = 0; i < MAX_LABEL_VALUES + 10; i++) h.observe(`db${i}`, 0.5);
  h.observe(`db${MAX_LABEL_VALUES + 3}`, 2);
  const text = await r.metrics();
  const series = new Set([...text.matchAll(/w_seconds_count\{database="([^"]+)"\}/g)].map((m) => m[1]));
  t.equal(series.size, MAX_LABEL_VALUES + 1, 'the first values keep their own series, plus one shared');
  t.ok(series.has(OTHER_LABEL));
  t.ok(text.includes(`w_seconds_count{database="${OTHER_LABEL}"} 11`), 'ten overflowing values, one of them twice');
  t.ok(text.includes(`w_seconds_bucket{le="1",database="${OTHER_LABEL}"} 10`));
});
