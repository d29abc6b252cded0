// Every config a reader may copy passes `pgrelay --check` (the real CLI): each ```ini block of the
// README and of deploy/*.md, and the pgrelay.ini of the Kubernetes ConfigMap, with the files it
// names laid out as they would be (the ConfigMap's /etc/pgrelay is the mounted Secret). Also: the
// README's list of PgBouncer keys pgrelay lacks is the one the loader uses.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { pgbouncerKeysReference } from '../../src/config/pgbouncer-keys-reference.js';
import { TestCa } from '../harness/tls-certs.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface Snippet {
  readonly where: string;
  readonly text: string;
}

/** ```ini blocks (also indented ones, inside list items) with the line they start at. */
function iniBlocks(file: string): Snippet[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ini\s*$/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) body.push(lines[j]!.slice(indent));
    out.push({ where: `${relative(REPO, file)}:${i + 1}`, text: `${body.join('\n')}\n` });
    i = j;
  }
  return out;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.md'))
    .map((d) => join(d.parentPath, d.name));
}

function stringData(file: string, kind: string, name: string): Record<string, string> {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string>; stringData?: Record<string, string> };
    if (o?.kind === kind && o.metadata?.name === name) return { ...o.data, ...o.stringData };
  }
  throw new Error(`${kind} ${name} not found in ${file}`);
}

/** A fragment (only [databases], say) gets the sections a file needs; what it has is kept as is. */
function completed(text: string): string {
  let out = text;
  if (!/^\s*\[(pgbouncer|pgrelay)\]/im.test(out)) out += '\n[pgrelay]\n';
  if (!/^\s*\[databases\]/im.test(out)) out += '\n[databases]\n';
  return out;
}

function check(file: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/main.ts'), '--check', file], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

t.test('every ```ini snippet in README.md and deploy/*.md passes --check', async (t) => {
  const snippets = [join(REPO, 'README.md'), ...markdownFiles(join(REPO, 'deploy'))].flatMap(iniBlocks);
  t.ok(snippets.length >= 2, `found ${snippets.length} snippets`);
  for (const s of snippets) {
    // Files the snippet names relative to itself: a userlist like the README describes.
    const dir = t.testdir({ 'userlist.txt': '"app" "secret"\n' });
    const file = join(dir, 'pgrelay.ini');
    writeFileSync(file, completed(s.text));
    const r = check(file);
    t.equal(r.status, 0, `${s.where}: ${r.stderr}`);
    t.notMatch(r.stderr, /warning/, `${s.where} loads without warnings`);
  }
});

t.test("the Kubernetes ConfigMap's pgrelay.ini passes --check with the Secret mounted beside it", async (t) => {
  const k8s = join(REPO, 'deploy/k8s');
  const ini = stringData(join(k8s, 'configmap.yaml'), 'ConfigMap', 'pgrelay-config')['pgrelay.ini']!;
  const secret = stringData(join(k8s, 'secret.yaml'), 'Secret', 'pgrelay-secrets');
  const dir = t.testdir({ 'userlist.txt': secret['userlist.txt']!, 'admin-token': secret['admin-token']! });
  // The Secret pgrelay-tls (cert-manager's, deploy/k8s/certificate.yaml) as the pod mounts it in tls/.
  const ca = TestCa.create();
  t.teardown(() => ca.cleanup());
  const pair = ca.server('pgrelay', 'pgrelay');
  mkdirSync(join(dir, 'tls'));
  copyFileSync(pair.cert, join(dir, 'tls', 'tls.crt'));
  copyFileSync(pair.key, join(dir, 'tls', 'tls.key'));
  copyFileSync(ca.cert, join(dir, 'tls', 'ca.crt'));
  t.match(ini, /\/etc\/pgrelay\//, 'the file names the mounted directory');
  const file = join(dir, 'pgrelay.ini');
  writeFileSync(file, ini.replaceAll('/etc/pgrelay/', `${dir}/`));
  const r = check(file);
  t.equal(r.status, 0, r.stderr);
  t.notMatch(r.stderr, /warning/);
  // Without the Secret the same file fails, at the auth_file line: the check is not vacuous.
  const bare = t.testdir({});
  writeFileSync(join(bare, 'pgrelay.ini'), ini.replaceAll('/etc/pgrelay/', `${bare}/`));
  const missing = check(join(bare, 'pgrelay.ini'));
  t.equal(missing.status, 1);
  t.match(missing.stderr, /pgrelay\.ini:\d+: auth_file .*userlist\.txt: no such file/);
});

t.test("the README's list of unimplemented PgBouncer keys is the loader's", async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const m = /<!-- pgbouncer-keys:begin -->\n([\s\S]*?)\n<!-- pgbouncer-keys:end -->/.exec(readme);
  t.ok(m !== null, 'the README has the generated list');
  t.equal(m![1], pgbouncerKeysReference(), 'regenerate with npx tsx scripts/pgbouncer-keys-reference.ts');
});
