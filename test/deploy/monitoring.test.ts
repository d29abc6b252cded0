// deploy/monitoring: the alert rules pass `promtool check rules` and their own `promtool test rules`,
// the Kubernetes PrometheusRule carries the same groups, and every metric the rules and the Grafana
// dashboard name exists in a real scrape of pgrelay (after a pause, a failed login and some traffic).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import YAML from 'yaml';
import { startCluster } from '../harness/pg-cluster.js';
import { startRelay } from '../harness/relay.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MON = join(ROOT, 'deploy/monitoring');
const RULES = join(MON, 'pgrelay-rules.yml');
const DASHBOARD = join(MON, 'pgrelay-dashboard.json');

interface RuleGroups {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}

function promtool(args: string[], cwd = MON): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (r.error !== undefined) throw new Error(`promtool not found (Debian package prometheus; bash scripts/ensure-deps.sh --test): ${r.error.message}`);
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Metric names in a PromQL expression: identifiers followed by `{`, `[`, `)` or space, not functions or labels. */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b((?:pgrelay|process|nodejs)_[a-z0-9_]+)\b/g)) names.add(m[1]!);
  return [...names];
}

const rules = YAML.parse(readFileSync(RULES, 'utf8')) as RuleGroups;
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } };
const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
const dashExprs = [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr)), ...dashboard.templating.list.map((v) => v.definition ?? '')];

t.test('promtool: the rules check, and each alert fires on the series that should fire it', async (t) => {
  const check = promtool(['check', 'rules', RULES]);
  t.equal(check.status, 0, check.out);
  t.match(check.out, /SUCCESS: \d+ rules found/);
  const unit = promtool(['test', 'rules', 'pgrelay-rules.test.yml']);
  t.equal(unit.status, 0, unit.out);
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  for (const a of ['PgrelayPausedTooLong', 'PgrelayPoolSaturated', 'PgrelayClientsWaiting', 'PgrelayClientLoginFailures', 'PgrelayWriteGateFailing']) {
    t.ok(alerts.includes(a), `${a}: ${a.replace('Pgrelay', '')}`);
    t.match(readFileSync(join(MON, 'pgrelay-rules.test.yml'), 'utf8'), `alertname: ${a}`, `${a} has a promtool unit test`);
  }
});

t.test('the PrometheusRule for the Prometheus Operator holds the same groups', async (t) => {
  const pr = YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/prometheusrule.yaml'), 'utf8'), { version: '1.1' }) as { kind: string; spec: RuleGroups };
  t.equal(pr.kind, 'PrometheusRule');
  t.same(pr.spec.groups, rules.groups);
});

t.test('every metric the rules and the dashboard use exists in a real scrape', async (t) => {
  const cluster = await startCluster();
  t.teardown(() => cluster.destroy());
  const relay = await startRelay(
    { host: '127.0.0.1', port: cluster.port },
    { admin: true, settings: { authType: 'plain', adminUsers: ['admin'] }, authFile: { postgres: 'pw', admin: 'pw' }, databases: { app: { hosts: [{ host: '127.0.0.1', port: cluster.port }], dbname: 'postgres' } } },
  );
  t.teardown(() => relay.stop());
  // Some of everything: queries, a wait, a failed login, a pause and its resume.
  const c = new pg.Client({ connectionString: relay.url({ password: 'pw', database: 'app' }) });
  await c.connect();
  for (let i = 0; i < 5; i++) await c.query('select $1::int', [i]);
  await c.end();
  const bad = new pg.Client({ connectionString: relay.url({ password: 'wrong', database: 'app' }) });
  await bad.connect().then(() => bad.end(), () => undefined);
  await fetch(`${relay.adminUrl}/v1/pause`, { method: 'POST' });
  await fetch(`${relay.adminUrl}/v1/resume`, { method: 'POST' });
  const scrape = await (await fetch(`${relay.adminUrl}/metrics`)).text();

  // A family exists when the scrape declares it; histogram series are named after their family.
  const families = new Set([...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const family = (name: string): string => (families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));
  const used = new Set([...ruleExprs, ...dashExprs].flatMap(metricNames));
  t.ok(used.size >= 20, `${used.size} metrics used`);
  for (const name of [...used].sort()) {
    t.ok(families.has(family(name)), `${name} is in the scrape`);
  }
  // Each rule's metrics have samples, not only a declaration, once there has been traffic.
  for (const name of ['pgrelay_paused', 'pgrelay_servers', 'pgrelay_database_pool_size', 'pgrelay_client_connections', 'pgrelay_max_client_connections', 'pgrelay_client_login_failures_total']) {
    t.match(scrape, new RegExp(`^${name}(\\{[^}]*\\})? \\d`, 'm'), `${name} has samples`);
  }
  // promtool's own lint of the exposition format. It dislikes three of Node's standard gauges
  // (nodejs_active_*_total), whose names stock dashboards rely on; pgrelay's own names must pass.
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
  const complaints = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim() !== '');
  t.same(complaints.filter((l) => !/^nodejs_active_(handles|requests|resources)_total /.test(l)), [], 'promtool check metrics: nothing about pgrelay_* metrics');
});
