// What ships: the npm package (packed, installed into an empty directory, `npx pgrelay` run from
// there), the LICENSE, the Dockerfile (dependency layer before the sources, a pinned base image,
// OCI labels, a HEALTHCHECK on /health/live, replayed by scripts/docker-steps-check.sh), the
// Kubernetes config checksum, the hook timeout stated once, and the Node versions named the same
// way in package.json, the CI matrix and the image.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  engines: { node: string };
  bin: Record<string, string>;
  files: string[];
};
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

function run(cmd: string, args: string[], cwd: string, timeout = 240_000): { status: number | null; stdout: string; stderr: string } {
  // Without the test runner's own loader hooks (NODE_OPTIONS, TAP_*): the commands run as a user would.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !/^_?TAP/i.test(k)));
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...env, npm_config_update_notifier: 'false' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

t.test('LICENSE matches package.json', async (t) => {
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  t.equal(pkg.license, 'MIT');
  t.match(license, /^MIT License\n\nCopyright \(c\) \d{4} /);
  t.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
});

t.test('npm pack: the tarball installs into an empty directory and `npx pgrelay` works from there', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'pgrelay-pack-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const pack = run('npm', ['pack', '--json', '--pack-destination', out], ROOT);
  t.equal(pack.status, 0, pack.stderr);
  const info = (JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
  const files = info.files.map((f) => f.path);
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/main.js', 'dist/app.js', 'dist/healthcheck.js', 'deploy/patroni/pgrelay-hook']) t.ok(files.includes(f), `the package has ${f}`);
  t.notOk(files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('bench/')), 'no sources, tests or benchmarks');

  const home = join(out, 'elsewhere');
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', home, join(out, info.filename)], out);
  t.equal(install.status, 0, install.stderr);
  const version = run('npx', ['--no-install', 'pgrelay', '--version'], home);
  t.equal(version.status, 0, version.stderr);
  t.equal(version.stdout, `pgrelay ${pkg.version}\n`);
  writeFileSync(join(home, 'userlist.txt'), '"app" "secret"\n');
  writeFileSync(join(home, 'pgrelay.ini'), '[databases]\napp = host=127.0.0.1 port=5432\n[pgrelay]\nauth_type = scram-sha-256\nauth_file = userlist.txt\n');
  const check = run('npx', ['--no-install', 'pgrelay', '--check', 'pgrelay.ini'], home);
  t.equal(check.status, 0, check.stderr);
  t.match(check.stdout, /^auth_type = scram-sha-256$/m);
  const bad = run('npx', ['--no-install', 'pgrelay', '--check', 'missing.ini'], home);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /missing\.ini: cannot read config file: ENOENT/);
  // The installed copy runs from the installed tree, not from this repository.
  t.notMatch(readdirSync(join(home, 'node_modules', 'pgrelay')).join(' '), /\bsrc\b/);
});

t.test('Dockerfile: dependencies before sources, a pinned base, OCI labels, HEALTHCHECK on /health/live', async (t) => {
  const lines = dockerfile.split('\n').filter((l) => /^[A-Z]+\s/.test(l));
  const index = (re: RegExp): number => lines.findIndex((l) => re.test(l));
  const copyLock = index(/^COPY package\.json package-lock\.json \.\/$/);
  const npmCi = index(/^RUN npm ci /);
  const copySrc = index(/^COPY src \.\/src$/);
  t.ok(copyLock >= 0 && copyLock < npmCi && npmCi < copySrc, 'COPY the lockfile, RUN npm ci, then COPY src/: a code change reuses the dependency layer');
  const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1] ?? '';
  t.match(base, /^node:\d+\.\d+\.\d+-[a-z]+-slim$|@sha256:[0-9a-f]{64}$/, `the base image is pinned to an exact version or digest (${base})`);
  t.equal(lines.filter((l) => l.startsWith('FROM ')).length, 2);
  for (const l of lines.filter((x) => x.startsWith('FROM '))) t.match(l, /^FROM \$\{NODE_IMAGE\}/, 'both stages use the pinned base');
  for (const label of ['title', 'description', 'version', 'licenses', 'source']) t.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.${label}=`), `OCI label ${label}`);
  t.match(dockerfile, /org\.opencontainers\.image\.licenses="MIT"/);
  t.equal(/^ARG VERSION=(\S+)$/m.exec(dockerfile)?.[1], pkg.version, 'the version label defaults to the package version');
  t.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "\/app\/dist\/healthcheck\.js"\]$/m);
  t.match(readFileSync(join(ROOT, 'src/healthcheck.ts'), 'utf8'), /\/health\/live/);
});

t.test('scripts/docker-steps-check.sh replays the image: dependency layer alone, build, runtime tree, healthcheck', async (t) => {
  const r = run('bash', [join(ROOT, 'scripts/docker-steps-check.sh')], ROOT, 300_000);
  t.equal(r.status, 0, r.stderr.slice(-2000));
  t.match(r.stdout, new RegExp(`docker-steps-check: OK \\(pgrelay ${pkg.version.replace(/\./g, '\\.')}; healthcheck http://127\\.0\\.0\\.1:\\d+/health/live: 200; `));
});

t.test('Kubernetes: the config checksum annotation matches the ConfigMap; a pinned image', async (t) => {
  const cm = YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/configmap.yaml'), 'utf8'), { version: '1.1' }) as { data: Record<string, string> };
  const dep = YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/deployment.yaml'), 'utf8'), { version: '1.1' }) as {
    spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containers: Array<{ image: string }> } } };
  };
  const want = `sha256:${createHash('sha256').update(cm.data['pgrelay.ini']!, 'utf8').digest('hex')}`;
  t.equal(dep.spec.template.metadata.annotations['checksum/config'], want, 'npx tsx scripts/k8s-config-checksum.ts writes it');
  const check = run('npx', ['tsx', 'scripts/k8s-config-checksum.ts', '--check'], ROOT);
  t.equal(check.status, 0, check.stderr);
  t.notMatch(dep.spec.template.spec.containers[0]!.image, /:latest$|^[^:]+$/, 'never :latest or untagged');
});

t.test('the hook timeout is stated the same way everywhere', async (t) => {
  const hook = readFileSync(join(ROOT, 'deploy/patroni/pgrelay-hook'), 'utf8');
  const hookDefault = /^TIMEOUT="\$\{PGRELAY_TIMEOUT:-(\d+)\}"$/m.exec(hook)?.[1];
  t.ok(hookDefault !== undefined, "the hook's default");
  const places = ['deploy/stackgres/callbacks-configmap.yaml', 'deploy/patroni/patroni-snippet.yml', 'deploy/README.md', 'deploy/k8s/configmap.yaml', 'README.md'];
  const seen: string[] = [];
  for (const p of places) {
    const text = readFileSync(join(ROOT, p), 'utf8');
    for (const m of text.matchAll(/--timeout[ `]+(\d+)|`--timeout`, (\d+) s|--timeout, (\d+) s/g)) seen.push(`${p}: ${m[1] ?? m[2] ?? m[3]}`);
    t.notMatch(text, /hook's --timeout \((?!8 s)\d+ s/, `${p} names no other hook timeout`);
  }
  t.ok(seen.length >= 4, seen.join('; '));
  for (const s of seen) t.match(s, new RegExp(`: ${hookDefault}$`), s);
  const ini = (YAML.parse(readFileSync(join(ROOT, 'deploy/k8s/configmap.yaml'), 'utf8'), { version: '1.1' }) as { data: Record<string, string> }).data['pgrelay.ini']!;
  t.equal(/^pause_drain_timeout = (\d+)$/m.exec(ini)?.[1], hookDefault, 'pause_drain_timeout gives console and signal pauses the same deadline');
});

t.test('Node versions: engines, the CI matrix and the image name the same current LTS', async (t) => {
  const ci = YAML.parse(readFileSync(join(ROOT, '.github/workflows/ci.yml'), 'utf8')) as { jobs: Record<string, { strategy?: { matrix?: { node?: Array<string | number> } } }> };
  const matrix = Object.values(ci.jobs).flatMap((j) => j.strategy?.matrix?.node ?? []).map(String);
  t.ok(matrix.length >= 2, `matrix: ${matrix.join(', ')}`);
  const majors = [...pkg.engines.node.matchAll(/\^(\d+)\./g)].map((m) => m[1]!);
  t.same([...majors].sort(), [...matrix].sort(), `engines (${pkg.engines.node}) and the CI matrix name the same majors`);
  const lts = /^ARG NODE_IMAGE=node:(\d+)\./m.exec(dockerfile)?.[1];
  t.equal(lts, String(Math.max(...matrix.map(Number))), 'the image runs the newest of them, the current LTS');
  t.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), new RegExp(`Node\\.js ${lts} \\(the current LTS\\)`), 'the README says which is the LTS');
});
