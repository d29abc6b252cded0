// The manifests in deploy/ against each other and against pgrelay itself: every YAML file parses the
// way Kubernetes reads it (YAML 1.1), the kustomizations resolve, and every name, port, path, label
// and setting that one file expects of another is there. pgrelay.ini goes through pgrelay's own
// parser, and the Patroni wrappers run under sh with a stand-in for the hook.

import t from 'tap';
import YAML from 'yaml';
import { NODE_OPTIONS } from '../../src/node-options.js';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { parseAuthFile } from '../../src/auth/auth-file.js';
import { buildAdminServer, checkAdminBinding } from '../../src/admin/http.js';
import type { Control } from '../../src/control/contract.js';
import type { Config } from '../../src/config/types.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const STACKGRES = join(DEPLOY, 'stackgres');
const HOOK_SOURCE = join(DEPLOY, 'patroni', 'pgrelay-hook');
/** Applied by hand (see deploy/README.md), so in no kustomization. */
// Applied by hand: the pgbench demo, and the Prometheus Operator's objects (their CRDs may be absent).
const STANDALONE = new Set(['stackgres/pgbench-job.yaml', 'stackgres/sgdbops-restart.yaml', 'k8s/podmonitor.yaml', 'k8s/prometheusrule.yaml', 'k8s/certificate.yaml']);

// ---- the subset of the Kubernetes API these checks read ------------------------------------------

type Labels = Record<string, string>;
interface Meta {
  name: string;
  labels?: Labels;
  annotations?: Labels;
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: Meta;
}
interface LabelSelector {
  matchLabels?: Labels;
  matchExpressions?: unknown[];
}
interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}
interface ConfigMapSource {
  name: string;
  items?: KeyToPath[];
  defaultMode?: number;
}
interface SecretSource {
  secretName?: string;
  name?: string;
  items?: KeyToPath[];
  defaultMode?: number;
}
interface Volume {
  name: string;
  configMap?: ConfigMapSource;
  secret?: SecretSource;
  projected?: { defaultMode?: number; sources: { configMap?: ConfigMapSource; secret?: SecretSource }[] };
  emptyDir?: Record<string, unknown>;
}
interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
interface HttpProbe {
  httpGet?: { path: string; port: string | number };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  readinessProbe?: HttpProbe;
  livenessProbe?: HttpProbe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Labels; limits?: Labels };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: VolumeMount[];
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  affinity?: {
    podAntiAffinity?: {
      preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; podAffinityTerm: { topologyKey: string; labelSelector: LabelSelector } }[];
    };
  };
}
interface PodTemplate {
  metadata: { labels: Labels; annotations?: Labels };
  spec: PodSpec;
}
interface Deployment extends Resource {
  spec: { replicas: number; selector: LabelSelector; template: PodTemplate };
}
interface Job extends Resource {
  spec: { template: PodTemplate };
}
interface ServicePort {
  name?: string;
  port: number;
  targetPort?: string | number;
  protocol?: string;
}
interface Service extends Resource {
  spec: { type?: string; clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Labels; ports: ServicePort[] };
}
interface Pdb extends Resource {
  spec: { minAvailable?: number | string; maxUnavailable?: number | string; selector: LabelSelector };
}
interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
}
interface NetworkPolicyPort {
  port: string | number;
  protocol?: string;
}
interface NetworkPolicy extends Resource {
  spec: {
    podSelector: LabelSelector;
    policyTypes: string[];
    ingress?: { from: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] }[];
    egress?: { to: NetworkPolicyPeer[]; ports: NetworkPolicyPort[] }[];
  };
}
interface ConfigMap extends Resource {
  data?: Labels;
}
interface Secret extends Resource {
  data?: Labels;
  stringData?: Labels;
}
interface SGCluster extends Resource {
  spec: {
    instances: number;
    configurations: {
      patroni: { initialConfig: { postgresql: { before_stop?: string; callbacks?: Labels } } };
      credentials?: { users?: { superuser?: { password?: { name: string; key: string } } } };
    };
    pods: {
      disableConnectionPooling?: boolean;
      customVolumes?: Volume[];
      customVolumeMounts?: Record<string, VolumeMount[]>;
    };
  };
}
interface Kustomization {
  resources?: string[];
  configMapGenerator?: { name: string; behavior?: string; files?: string[] }[];
  generatorOptions?: { disableNameSuffixHash?: boolean };
}

// ---- reading ---------------------------------------------------------------------------------------

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p));
    else if (entry.isFile()) out.push(p);
  }
  return out.sort();
}

const isYaml = (file: string): boolean => /\.ya?ml$/.test(file);

/** Kubernetes (sigs.k8s.io/yaml over go-yaml) reads YAML 1.1: 0444 is octal, `on` is true. */
function parseYaml(file: string): { docs: unknown[]; errors: string[] } {
  const parsed = YAML.parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' });
  if (!Array.isArray(parsed)) return { docs: [], errors: [] };
  const errors = parsed.flatMap((d) => [...d.errors, ...d.warnings].map((e) => e.message));
  return { docs: parsed.map((d) => d.toJS() as unknown).filter((d) => d !== null && d !== undefined), errors };
}

function isResource(doc: unknown): doc is Resource {
  if (typeof doc !== 'object' || doc === null) return false;
  const r = doc as Partial<Resource>;
  return typeof r.apiVersion === 'string' && typeof r.kind === 'string' && typeof r.metadata?.name === 'string';
}

function loadResources(file: string): Resource[] {
  const { docs, errors } = parseYaml(file);
  if (errors.length > 0) throw new Error(`${file}: ${errors.join('; ')}`);
  return docs.map((d) => {
    if (!isResource(d)) throw new Error(`${file}: a document without apiVersion, kind and metadata.name`);
    return d;
  });
}

interface Build {
  resources: Resource[];
  /** Every manifest file the build read, relative to deploy/. */
  files: string[];
}

/** What `kustomize build` does with the features these kustomizations use. */
function kustomize(dir: string): Build {
  const k = parseYaml(join(dir, 'kustomization.yaml')).docs[0] as Kustomization;
  const resources: Resource[] = [];
  const files: string[] = [];
  for (const entry of k.resources ?? []) {
    const p = resolve(dir, entry);
    if (statSync(p).isDirectory()) {
      const sub = kustomize(p);
      resources.push(...sub.resources);
      files.push(...sub.files);
    } else {
      resources.push(...structuredClone(loadResources(p)));
      files.push(relative(DEPLOY, p));
    }
  }
  for (const gen of k.configMapGenerator ?? []) {
    const data: Labels = {};
    for (const spec of gen.files ?? []) {
      const eq = spec.indexOf('=');
      const [key, path] = eq < 0 ? [basename(spec), spec] : [spec.slice(0, eq), spec.slice(eq + 1)];
      data[key] = readFileSync(resolve(dir, path), 'utf8');
    }
    if (gen.behavior === 'merge' || gen.behavior === 'replace') {
      const target = resources.find((r): r is ConfigMap => r.kind === 'ConfigMap' && r.metadata.name === gen.name);
      if (target === undefined) throw new Error(`${dir}: configMapGenerator ${gen.behavior}s into ConfigMap ${gen.name}, which no resource defines`);
      target.data = gen.behavior === 'merge' ? { ...target.data, ...data } : data;
    } else {
      resources.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data } as ConfigMap);
    }
  }
  return { resources, files };
}

function find<T extends Resource>(build: Build, kind: string, name: string): T {
  const found = build.resources.filter((r) => r.kind === kind && r.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

function all<T extends Resource>(build: Build, kind: string): T[] {
  return build.resources.filter((r) => r.kind === kind) as T[];
}

function secretData(secret: Secret): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ...out, ...secret.stringData };
}

/** Whether a selector (matchLabels only: these manifests use no expressions) selects these labels. */
function selects(selector: LabelSelector | Labels, labels: Labels): boolean {
  const sel = selector as LabelSelector;
  if (sel.matchExpressions !== undefined) throw new Error('matchExpressions are not evaluated by this test');
  const match = sel.matchLabels ?? (selector as Labels);
  return Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => labels[k] === v);
}

interface MountedFile {
  kind: 'ConfigMap' | 'Secret';
  name: string;
  key: string;
  mode: number;
}

/** The files a container sees from ConfigMap, Secret and projected volumes, by absolute path. */
function mountedFiles(pod: PodSpec, container: Container, dataOf: (kind: 'ConfigMap' | 'Secret', name: string) => Labels): Map<string, MountedFile> {
  const files = new Map<string, MountedFile>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
    if (volume === undefined) throw new Error(`volumeMount ${mount.name} names no volume`);
    const sources: { kind: 'ConfigMap' | 'Secret'; name: string; items: KeyToPath[] | undefined; mode: number }[] = [];
    const secretName = (s: SecretSource): string => s.secretName ?? s.name ?? '';
    if (volume.configMap) sources.push({ kind: 'ConfigMap', name: volume.configMap.name, items: volume.configMap.items, mode: volume.configMap.defaultMode ?? 0o644 });
    if (volume.secret) sources.push({ kind: 'Secret', name: secretName(volume.secret), items: volume.secret.items, mode: volume.secret.defaultMode ?? 0o644 });
    for (const s of volume.projected?.sources ?? []) {
      const mode = volume.projected?.defaultMode ?? 0o644;
      if (s.configMap) sources.push({ kind: 'ConfigMap', name: s.configMap.name, items: s.configMap.items, mode });
      if (s.secret) sources.push({ kind: 'Secret', name: secretName(s.secret), items: s.secret.items, mode });
    }
    for (const src of sources) {
      const data = dataOf(src.kind, src.name);
      const items = src.items ?? Object.keys(data).map((key): KeyToPath => ({ key, path: key }));
      for (const item of items) {
        if (!(item.key in data)) throw new Error(`volume ${volume.name} projects key ${item.key}, which ${src.kind} ${src.name} does not have`);
        const file: MountedFile = { kind: src.kind, name: src.name, key: item.key, mode: item.mode ?? src.mode };
        if (mount.subPath === undefined) files.set(posix.join(mount.mountPath, item.path), file);
        else if (mount.subPath === item.path) files.set(mount.mountPath, file);
      }
    }
  }
  return files;
}

/** A container port by name or number. */
function containerPort(c: Container, port: string | number): number | undefined {
  const p = (c.ports ?? []).find((cp) => (typeof port === 'number' ? cp.containerPort === port : cp.name === port));
  return p?.containerPort;
}

// ---- the objects under test ------------------------------------------------------------------------

const k8s = kustomize(K8S);
const stackgres = kustomize(STACKGRES);
const deployment = find<Deployment>(k8s, 'Deployment', 'pgrelay');
const pod = deployment.spec.template;
const container = pod.spec.containers.find((c) => c.name === 'pgrelay')!;
const configMap = find<ConfigMap>(k8s, 'ConfigMap', 'pgrelay-config');
const secret = find<Secret>(k8s, 'Secret', 'pgrelay-secrets');
const clientService = find<Service>(k8s, 'Service', 'pgrelay');
const adminService = find<Service>(k8s, 'Service', 'pgrelay-admin');
const sgcluster = find<SGCluster>(stackgres, 'SGCluster', 'cluster');
const callbacks = find<ConfigMap>(stackgres, 'ConfigMap', 'callbacks');
const pgbench = loadResources(join(STACKGRES, 'pgbench-job.yaml'))[0] as Job;
const INI_PATH = container.args?.[0] ?? '';
const config: Config = parseConfig(configMap.data?.['pgrelay.ini'] ?? '', INI_PATH);
const userlist = parseAuthFile(secretData(secret)['userlist.txt'] ?? '', 'userlist.txt');

/** cert-manager's objects (certificate.yaml, applied by hand): the Secrets its Certificates write. */
interface Certificate extends Resource {
  spec: { secretName: string; dnsNames?: string[]; isCA?: boolean; issuerRef: { name: string; kind: string }; usages?: string[] };
}
const certManager = loadResources(join(K8S, 'certificate.yaml'));
const certificates = certManager.filter((r): r is Certificate => r.kind === 'Certificate');
const issuedSecret = (name: string): boolean => certificates.some((c) => c.spec.secretName === name && c.spec.isCA !== true);

function dataOf(build: Build) {
  return (kind: 'ConfigMap' | 'Secret', name: string): Labels => {
    // A Secret a Certificate writes holds tls.crt, tls.key and ca.crt (cert-manager's CA issuer).
    if (kind === 'Secret' && issuedSecret(name) && !build.resources.some((r) => r.kind === 'Secret' && r.metadata.name === name)) {
      return { 'tls.crt': '', 'tls.key': '', 'ca.crt': '' };
    }
    const r = find<ConfigMap & Secret>(build, kind, name);
    return kind === 'Secret' ? secretData(r) : (r.data ?? {});
  };
}

/** The StackGres patroni container as a pod: custom volume <name> is volume custom-<name> in the pod. */
function patroniPod(): { pod: PodSpec; container: Container } {
  const volumes = (sgcluster.spec.pods.customVolumes ?? []).map((v) => ({ ...v, name: `custom-${v.name}` }));
  const patroni: Container = { name: 'patroni', image: '', volumeMounts: sgcluster.spec.pods.customVolumeMounts?.['patroni'] ?? [] };
  return { pod: { containers: [patroni], volumes }, container: patroni };
}

/** `exec /path ...` targets and flags of a wrapper script (continuation lines joined). */
function execLine(script: string): { target: string; flags: Map<string, string> } | null {
  const joined = script.replace(/\\\n\s*/g, ' ');
  const m = /^\s*exec\s+(\/\S+)(.*)$/m.exec(joined);
  if (m === null) return null;
  const flags = new Map<string, string>();
  for (const f of m[2]!.matchAll(/(--[a-z-]+)\s+("[^"]*"|[^\s"-][^\s]*)/g)) flags.set(f[1]!, f[2]!.replace(/^"|"$/g, ''));
  return { target: m[1]!, flags };
}

const hookFlags = execLine(callbacks.data?.['pgrelay-callback'] ?? '')?.flags ?? new Map<string, string>();

// ---- checks ---------------------------------------------------------------------------------------

t.test('every YAML file under deploy/ parses as Kubernetes reads it, each manifest is built or applied on its own', async (t) => {
  const files = walk(DEPLOY);
  const yamlFiles = files.filter(isYaml);
  t.ok(files.some((f) => !isYaml(f)), 'non-YAML files (the hook, README) are there and skipped');
  const expected = ['configmap', 'secret', 'deployment', 'service', 'service-admin-headless', 'pdb', 'networkpolicy', 'kustomization']
    .map((n) => `k8s/${n}.yaml`)
    .concat(['sgcluster', 'callbacks-configmap', 'credentials-secret', 'pgbench-job', 'sgdbops-restart', 'kustomization'].map((n) => `stackgres/${n}.yaml`));
  const rel = yamlFiles.map((f) => relative(DEPLOY, f));
  for (const e of expected) t.ok(rel.includes(e), `${e} exists`);
  let documents = 0;
  for (const file of yamlFiles) {
    const { docs, errors } = parseYaml(file);
    t.same(errors, [], `${relative(ROOT, file)} parses without errors or warnings`);
    documents += docs.length;
    const r = relative(DEPLOY, file);
    if ((r.startsWith('k8s/') || r.startsWith('stackgres/')) && basename(r) !== 'kustomization.yaml') {
      t.ok(docs.length > 0 && docs.every(isResource), `${r}: every document has apiVersion, kind and metadata.name`);
      t.ok(k8s.files.includes(r) || stackgres.files.includes(r) || STANDALONE.has(r), `${r} is in a kustomization or documented as applied by hand`);
    }
  }
  t.ok(documents >= expected.length, `${documents} documents read`);
  for (const build of [k8s, stackgres]) {
    const ids = build.resources.map((r) => `${r.kind}/${r.metadata.name}`);
    t.same([...new Set(ids)].length, ids.length, `no kind/name twice in one build: ${ids.join(', ')}`);
  }
});

t.test('kustomizations: resources and generator files exist; the hook is merged into the callbacks ConfigMap', async (t) => {
  for (const dir of [K8S, STACKGRES]) {
    const k = parseYaml(join(dir, 'kustomization.yaml')).docs[0] as Kustomization;
    t.ok((k.resources ?? []).length > 0, `${relative(ROOT, dir)} lists resources`);
    for (const r of k.resources ?? []) t.ok(existsSync(resolve(dir, r)), `${relative(ROOT, dir)}: resource ${r} exists`);
    for (const g of k.configMapGenerator ?? []) {
      for (const f of g.files ?? []) t.ok(existsSync(resolve(dir, f.slice(f.indexOf('=') + 1))), `${relative(ROOT, dir)}: generator file ${f} exists`);
    }
  }
  t.same(
    k8s.resources.map((r) => r.kind).sort(),
    ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Secret', 'Service', 'Service'].sort(),
    'deploy/k8s builds pgrelay and nothing else',
  );
  t.ok(k8s.resources.every((r) => stackgres.resources.some((s) => s.kind === r.kind && s.metadata.name === r.metadata.name)), 'deploy/stackgres includes deploy/k8s');
  const gen = (parseYaml(join(STACKGRES, 'kustomization.yaml')).docs[0] as Kustomization).configMapGenerator ?? [];
  t.same(gen.map((g) => [g.name, g.behavior, g.files]), [['callbacks', 'merge', ['pgrelay-hook=../patroni/pgrelay-hook']]], 'the generator merges deploy/patroni/pgrelay-hook');
  t.equal(callbacks.data?.['pgrelay-hook'], readFileSync(HOOK_SOURCE, 'utf8'), 'the built callbacks ConfigMap holds the hook verbatim');
  t.ok(callbacks.data?.['pgrelay-callback'] !== undefined, '...next to the wrappers of callbacks-configmap.yaml');
  t.equal((parseYaml(join(STACKGRES, 'kustomization.yaml')).docs[0] as Kustomization).generatorOptions?.disableNameSuffixHash, true,
    'no hash suffix: the SGCluster refers to the ConfigMap by its plain name');

  // The real kustomize, when this machine has it, must build the same objects.
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    t.comment('kubectl not found: the builds were checked by this test\'s own resolver only');
    return;
  }
  for (const [dir, build, args] of [
    [K8S, k8s, []],
    [STACKGRES, stackgres, ['--load-restrictor', 'LoadRestrictionsNone']],
  ] as const) {
    const out = spawnSync('kubectl', ['kustomize', ...args, dir], { encoding: 'utf8' });
    t.equal(out.status, 0, `kubectl kustomize ${args.join(' ')} ${relative(ROOT, dir)}: ${out.stderr}`);
    const docs = YAML.parseAllDocuments(out.stdout, { version: '1.1' });
    const built = (Array.isArray(docs) ? docs : []).map((d) => d.toJS() as Resource);
    t.same(built.map((r) => `${r.kind}/${r.metadata.name}`).sort(), build.resources.map((r) => `${r.kind}/${r.metadata.name}`).sort(), 'same objects as kustomize builds');
    const cm = built.find((r) => r.kind === 'ConfigMap' && r.metadata.name === 'callbacks') as ConfigMap | undefined;
    if (dir === STACKGRES) t.same(cm?.data, callbacks.data, 'kustomize builds the same callbacks ConfigMap');
  }
});

t.test('Deployment: replicas, selector, ports, probes, image, args, security, resources, spreading, Prometheus', async (t) => {
  t.ok(deployment.spec.replicas >= 2, `replicas ${deployment.spec.replicas} >= 2`);
  t.ok(selects(deployment.spec.selector, pod.metadata.labels), 'the selector matches the pod template labels');
  t.equal(containerPort(container, 'pgrelay'), 6432, 'container port pgrelay = 6432');
  t.equal(containerPort(container, 'admin'), 8080, 'container port admin = 8080');

  for (const [probe, path] of [[container.readinessProbe, '/health/ready'], [container.livenessProbe, '/health/live']] as const) {
    t.equal(probe?.httpGet?.path, path, `probe GET ${path}`);
    t.equal(probe?.httpGet?.port, 'admin', `${path} on the named port admin`);
    t.ok(containerPort(container, probe?.httpGet?.port ?? '') !== undefined, `${path}: its port exists`);
  }

  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.equal(container.image, `ghcr.io/example/pgrelay:${pkg.version}`, 'image tag is the package version');
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const cmd = JSON.parse(/^CMD\s+(\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
  t.same(container.args, cmd, 'args name the config file the image expects (its CMD)');
  t.equal(INI_PATH, '/etc/pgrelay/pgrelay.ini', 'args point at /etc/pgrelay/pgrelay.ini');
  const exposed = (/^EXPOSE\s+(.*)$/m.exec(dockerfile)?.[1] ?? '').split(/\s+/).map(Number);
  for (const p of container.ports ?? []) t.ok(exposed.includes(p.containerPort), `the image EXPOSEs ${p.containerPort}`);
  t.equal(container.command, undefined, 'no command: the image ENTRYPOINT runs node dist/main.js');
  const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
  t.same(entrypoint, ['node', ...NODE_OPTIONS, '/app/dist/main.js'], 'the image runs node with src/node-options.ts');
  const shebang = readFileSync(join(ROOT, 'src', 'main.ts'), 'utf8').split('\n')[0];
  t.equal(shebang, `#!/usr/bin/env -S node ${NODE_OPTIONS.join(' ')}`, 'so does the npm bin (main.ts shebang)');
  const dockerCheck = readFileSync(join(ROOT, 'scripts', 'docker-steps-check.sh'), 'utf8');
  t.ok(dockerCheck.includes(`node ${NODE_OPTIONS.join(' ')} "$app/dist/main.js"`), 'and docker-steps-check.sh, which replays the image');

  const podSec = pod.spec.securityContext ?? {};
  t.equal(podSec.runAsNonRoot, true, 'runAsNonRoot');
  t.ok(typeof podSec.runAsUser === 'number' && podSec.runAsUser > 0, 'a numeric non-root runAsUser (the image user is a name, which runAsNonRoot cannot check)');
  t.equal(container.securityContext?.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
  t.equal(container.securityContext?.allowPrivilegeEscalation, false, 'no privilege escalation');
  t.same(container.securityContext?.capabilities?.drop, ['ALL'], 'drops ALL capabilities');
  for (const k of ['cpu', 'memory']) t.ok(container.resources?.requests?.[k] !== undefined, `requests.${k}`);
  t.ok(container.resources?.limits?.['memory'] !== undefined, 'limits.memory');

  const anti = pod.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  t.ok(anti.some((a) => a.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' && selects(a.podAffinityTerm.labelSelector, pod.metadata.labels)),
    'preferred anti-affinity across nodes, against its own pods');

  const ann = pod.metadata.annotations ?? {};
  t.equal(ann['prometheus.io/scrape'], 'true', 'prometheus.io/scrape');
  t.equal(Number(ann['prometheus.io/port']), containerPort(container, 'admin'), 'prometheus.io/port is the admin port');
  t.equal(ann['prometheus.io/path'], '/metrics', 'prometheus.io/path is /metrics');
});

t.test('Services select the pods and target named container ports; the admin one is headless and publishes not-ready pods', async (t) => {
  const services = all<Service>(k8s, 'Service');
  t.equal(services.length, 2);
  for (const svc of services) {
    t.ok(selects(svc.spec.selector, pod.metadata.labels), `Service ${svc.metadata.name} selects the pgrelay pods`);
    for (const p of svc.spec.ports) {
      t.type(p.targetPort, 'string', `${svc.metadata.name}:${p.port} targets a named port`);
      t.ok(containerPort(container, p.targetPort ?? p.port) !== undefined, `${svc.metadata.name}:${p.port} -> ${String(p.targetPort)} exists`);
    }
  }
  t.equal(clientService.spec.type ?? 'ClusterIP', 'ClusterIP', 'client Service is ClusterIP');
  t.same(clientService.spec.ports.map((p) => [p.port, p.targetPort]), [[5432, 'pgrelay']], 'clients use 5432 -> pgrelay');
  t.equal(adminService.spec.clusterIP, 'None', 'admin Service is headless');
  t.equal(adminService.spec.publishNotReadyAddresses, true, 'admin Service publishes not-ready pods');
  t.same(adminService.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['admin', 8080, 'admin']], 'admin 8080 -> admin');
});

t.test('pgrelay.ini loads with pgrelay\'s parser and agrees with the pod: ports, mounted files, token, timeouts', async (t) => {
  t.same(config.warnings.map((w) => w.message), [], 'no warnings');
  t.equal(config.settings.listenPort, containerPort(container, 'pgrelay'), 'listen_port = container port pgrelay');
  t.equal(config.settings.adminListenPort, containerPort(container, 'admin'), 'admin_listen_port = container port admin');
  t.same(config.settings.listenAddr, ['0.0.0.0'], 'listens on the pod address');
  t.equal(config.settings.poolMode, 'transaction');

  const files = mountedFiles(pod.spec, container, dataOf(k8s));
  const at = (p: string | null): MountedFile | undefined => (p === null ? undefined : files.get(p));
  t.match(at(INI_PATH), { kind: 'ConfigMap', name: configMap.metadata.name, key: 'pgrelay.ini' }, 'the ini is the ConfigMap key');
  t.match(at(config.settings.authFile), { kind: 'Secret', name: secret.metadata.name, key: 'userlist.txt' }, `auth_file ${String(config.settings.authFile)} is the Secret's userlist.txt`);
  t.match(at(config.settings.adminTokenFile), { kind: 'Secret', name: secret.metadata.name, key: 'admin-token' }, `admin_token_file ${String(config.settings.adminTokenFile)} is the Secret's admin-token`);
  const sec = pod.spec.securityContext ?? {};
  for (const p of [INI_PATH, config.settings.authFile, config.settings.adminTokenFile]) {
    const mode = at(p)?.mode ?? 0;
    const readable = (mode & 0o004) !== 0 || ((mode & 0o040) !== 0 && sec.fsGroup !== undefined);
    t.ok(readable, `${String(p)} (mode ${mode.toString(8)}, fsGroup ${String(sec.fsGroup)}) is readable by uid ${String(sec.runAsUser)}`);
  }
  t.ok(container.volumeMounts?.some((m) => m.mountPath === '/tmp'), 'a writable /tmp beside the read-only root');

  // The admin port listens on all pod addresses: pgrelay refuses that without a token, accepts it with the Secret's.
  const token = secretData(secret)['admin-token']!.trim();
  t.throws(() => checkAdminBinding(config.settings.adminListenAddr, null), /not a loopback address/, 'without a token pgrelay would refuse to start');
  t.doesNotThrow(() => checkAdminBinding(config.settings.adminListenAddr, token), 'with the Secret\'s token it starts');
  t.ok(token.length >= 16, 'the token (placeholder) is not trivially short');

  t.ok(userlist.size > 0, 'userlist.txt parses with pgrelay\'s auth_file parser');
  for (const u of [...config.settings.adminUsers, ...config.settings.statsUsers]) t.ok(userlist.has(u), `admin/stats user ${u} is in userlist.txt`);

  const db = config.databases.get('*');
  t.same(db?.hosts, [{ host: sgcluster.metadata.name, port: 5432 }], 'the fallback database is the SGCluster primary Service');
  t.equal(db?.targetSessionAttrs, 'read-write', 'write gate on');

  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  const sleep = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  t.ok(grace > sleep + config.settings.shutdownTimeoutMs / 1000, `terminationGracePeriodSeconds ${grace} > preStop ${sleep} s + shutdown_timeout ${config.settings.shutdownTimeoutMs / 1000} s`);
  const hookTimeout = Number(hookFlags.get('--timeout'));
  t.ok(config.settings.pauseDrainTimeoutMs / 1000 <= hookTimeout, `pause_drain_timeout ${config.settings.pauseDrainTimeoutMs / 1000} s <= the hook's --timeout ${hookTimeout} s`);
  t.ok(config.settings.pauseMaxDurationMs > config.settings.pauseDrainTimeoutMs, 'a forgotten pause ends by itself, after the drain deadline');
});

t.test('the admin API serves the probe and metrics paths without the token and refuses PAUSE without it', async (t) => {
  const token = secretData(secret)['admin-token']!.trim();
  const control = { ready: () => true } as unknown as Control;
  const app = buildAdminServer({ control, metrics: null, token, logger: false });
  t.teardown(() => app.close());
  await app.ready();
  for (const probe of [container.readinessProbe, container.livenessProbe]) {
    const res = await app.inject({ method: 'GET', url: probe?.httpGet?.path ?? '' });
    t.equal(res.statusCode, 200, `GET ${String(probe?.httpGet?.path)} without a token: 200`);
  }
  const metricsPath = pod.metadata.annotations?.['prometheus.io/path'] ?? '';
  t.ok(app.hasRoute({ method: 'GET', url: metricsPath }), `GET ${metricsPath} is a route`);
  t.not((await app.inject({ method: 'GET', url: metricsPath })).statusCode, 401, `${metricsPath} needs no token`);
  t.equal((await app.inject({ method: 'POST', url: '/v1/pause' })).statusCode, 401, 'POST /v1/pause without the token: 401');
  const ok = await app.inject({ method: 'GET', url: '/health/live', headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.statusCode, 200);
});

t.test('PodDisruptionBudget and NetworkPolicy select the pods; their ports exist; the right peers get in', async (t) => {
  const pdb = find<Pdb>(k8s, 'PodDisruptionBudget', 'pgrelay');
  t.equal(pdb.spec.minAvailable, 1, 'minAvailable 1');
  t.ok(Number(pdb.spec.minAvailable) < deployment.spec.replicas, 'fewer than the replicas, so a node can be drained');
  t.ok(selects(pdb.spec.selector, pod.metadata.labels), 'PDB selects the pgrelay pods');

  const np = find<NetworkPolicy>(k8s, 'NetworkPolicy', 'pgrelay');
  t.ok(selects(np.spec.podSelector, pod.metadata.labels), 'NetworkPolicy selects the pgrelay pods');
  t.same([...np.spec.policyTypes].sort(), ['Egress', 'Ingress']);
  const ingress = np.spec.ingress ?? [];
  for (const rule of ingress) {
    for (const p of rule.ports) t.ok(containerPort(container, p.port) !== undefined, `ingress port ${String(p.port)} exists on the container`);
  }
  const admits = (labels: Labels, port: string): boolean =>
    ingress.some((r) => r.ports.some((p) => p.port === port) && r.from.some((f) => f.namespaceSelector === undefined && f.podSelector !== undefined && selects(f.podSelector, labels)));

  const patroniLabels = { app: 'StackGresCluster', 'stackgres.io/cluster-name': sgcluster.metadata.name, role: 'master' };
  t.ok(admits(patroniLabels, 'admin'), 'the SGCluster pods reach the admin port');
  t.ok(admits(pgbench.spec.template.metadata.labels, 'pgrelay'), 'the pgbench Job pod reaches the client port');
  t.notOk(admits(pgbench.spec.template.metadata.labels, 'admin'), 'but not the admin port');
  const promPort = Number(pod.metadata.annotations?.['prometheus.io/port']);
  t.ok(ingress.some((r) => r.from.some((f) => f.namespaceSelector !== undefined) && r.ports.some((p) => containerPort(container, p.port) === promPort)),
    'Prometheus (another namespace) reaches the scrape port');

  const egress = np.spec.egress ?? [];
  const allows = (port: number, protocol: string, peer: (p: NetworkPolicyPeer) => boolean): boolean =>
    egress.some((r) => r.to.some(peer) && r.ports.some((p) => p.port === port && (p.protocol ?? 'TCP') === protocol));
  const toPatroni = (p: NetworkPolicyPeer): boolean => p.podSelector !== undefined && selects(p.podSelector, patroniLabels);
  t.ok(allows(5432, 'TCP', toPatroni), 'egress to PostgreSQL 5432 in the SGCluster pods');
  t.ok(allows(8008, 'TCP', toPatroni), 'egress to the Patroni REST API 8008');
  const toDns = (p: NetworkPolicyPeer): boolean => p.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns';
  t.ok(allows(53, 'UDP', toDns) && allows(53, 'TCP', toDns), 'egress to DNS on 53/UDP and 53/TCP');
});

t.test('SGCluster: the Patroni hooks are files of the callbacks ConfigMap (+ generator) and reach pgrelay-hook', async (t) => {
  const pg = sgcluster.spec.configurations.patroni.initialConfig.postgresql;
  t.equal(pg.before_stop, '/callbacks/before_stop');
  t.same(Object.keys(pg.callbacks ?? {}).sort(), ['on_restart', 'on_role_change', 'on_start'], 'on_role_change, on_start and on_restart are wired');
  t.equal(sgcluster.spec.pods.disableConnectionPooling, true, 'no PgBouncer sidecar between pgrelay and PostgreSQL');
  t.ok(sgcluster.spec.instances >= 2, 'a replica to switch over to');

  const { pod: ppod, container: patroni } = patroniPod();
  const files = mountedFiles(ppod, patroni, dataOf(stackgres));
  const commands = [pg.before_stop ?? '', ...Object.values(pg.callbacks ?? {})];
  for (const cmd of commands) {
    // Follow `exec /callbacks/...` from the configured file down to the hook itself.
    const chain: string[] = [];
    let path: string | undefined = cmd;
    while (path !== undefined && chain.length < 5) {
      chain.push(path);
      const file = files.get(path);
      t.match(file, { kind: 'ConfigMap', name: callbacks.metadata.name }, `${path} is a file of ConfigMap callbacks`);
      if (file === undefined) break;
      t.equal(file.mode & 0o555, 0o555, `${path} is readable and executable by anyone (mode ${file.mode.toString(8)})`);
      const script = callbacks.data?.[file.key] ?? '';
      t.match(script, /^#!\/bin\/sh\n/, `${path} is a POSIX sh script`);
      if (file.key === 'pgrelay-hook') break;
      path = execLine(script)?.target;
    }
    t.equal(chain.at(-1), '/callbacks/pgrelay-hook', `${cmd} ends in the hook: ${chain.join(' -> ')}`);
  }

  // What the wrapper passes: the headless Service, the token pgrelay checks, flags the hook knows.
  const admin = new URL(hookFlags.get('--admin') ?? '');
  t.equal(admin.hostname, adminService.metadata.name, '--admin names the headless Service');
  t.equal(Number(admin.port), adminService.spec.ports[0]!.port, '--admin uses its port');
  const tokenFile = files.get(hookFlags.get('--token-file') ?? '');
  t.match(tokenFile, { kind: 'Secret', name: secret.metadata.name, key: 'admin-token' }, '--token-file is pgrelay\'s admin token, mounted from its Secret');
  t.ok(((tokenFile?.mode ?? 0) & 0o004) !== 0, 'the token is readable by the postgres user');
  t.notOk([...files.values()].some((f) => f.kind === 'Secret' && f.key === 'userlist.txt'), 'userlist.txt is not mounted into the Patroni pods');
  const hookSource = readFileSync(HOOK_SOURCE, 'utf8');
  for (const flag of hookFlags.keys()) t.ok(hookSource.includes(`${flag})`), `pgrelay-hook parses ${flag}`);
  t.same([...hookFlags.keys()].sort(), ['--admin', '--node', '--pg', '--timeout', '--token-file'], 'the wrapper passes these flags');

  const consolePath = /\[ -s (\/\S+) \]/.exec(callbacks.data?.['pgrelay-callback'] ?? '')?.[1] ?? '';
  const consoleFile = files.get(consolePath);
  t.match(consoleFile, { kind: 'Secret', name: secret.metadata.name, key: 'console-url' }, 'the console URL is mounted where the wrapper reads it');
  const consoleRaw = secretData(secret)['console-url'] ?? '';
  if (consoleRaw === '') {
    t.comment('console-url is empty: the psql fallback is off');
  } else {
    const consoleUrl = new URL(consoleRaw);
    t.equal(consoleUrl.hostname, clientService.metadata.name, 'console-url goes to the client Service');
    t.equal(Number(consoleUrl.port), clientService.spec.ports[0]!.port, '...on its port');
    t.equal(consoleUrl.pathname, '/pgbouncer', '...database pgbouncer (the admin console)');
    t.ok(config.settings.adminUsers.includes(consoleUrl.username), 'its user is an admin_users entry');
    t.equal(userlist.get(consoleUrl.username), decodeURIComponent(consoleUrl.password), 'its password is that user\'s in userlist.txt');
  }

  const cred = sgcluster.spec.configurations.credentials?.users?.superuser?.password;
  const credSecret = find<Secret>(stackgres, 'Secret', cred?.name ?? '');
  t.ok(secretData(credSecret)[cred?.key ?? ''] !== undefined, 'the superuser password Secret and key exist');
});

t.test('pgbench Job goes through the pgrelay Service with a password pgrelay knows', async (t) => {
  const c = pgbench.spec.template.spec.containers[0]!;
  const script = c.command?.at(-1) ?? '';
  const urls = [...script.matchAll(/postgresql:\/\/\S+/g)].map((m) => new URL(m[0]));
  t.equal(urls.length, 2, 'init and run');
  const pw = c.env?.find((e) => e.name === 'PGPASSWORD')?.valueFrom?.secretKeyRef;
  const credSecret = find<Secret>(stackgres, 'Secret', pw?.name ?? '');
  const password = secretData(credSecret)[pw?.key ?? ''];
  t.ok(password !== undefined, `PGPASSWORD comes from Secret ${String(pw?.name)} key ${String(pw?.key)}`);
  for (const u of urls) {
    t.equal(u.hostname, clientService.metadata.name, `${u.href}: the pgrelay Service`);
    t.equal(Number(u.port || 5432), clientService.spec.ports[0]!.port, '...on its port');
    t.equal(userlist.get(u.username), password, `user ${u.username} is in userlist.txt with the cluster's password`);
  }
  t.match(script, /-T \d+ -c \d+ -j \d+ -P \d+/, 'the runbook\'s run');
});

t.test('the wrappers under sh: node address, Patroni\'s arguments and the console URL reach the hook', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pgrelay-callbacks-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const cbDir = join(root, 'callbacks');
  const secretDir = join(root, 'etc/pgrelay-admin');
  const binDir = join(root, 'bin');
  for (const d of [cbDir, secretDir, binDir]) mkdirSync(d, { recursive: true });
  const relocate = (s: string): string => s.replaceAll('/callbacks/', `${cbDir}/`).replaceAll('/etc/pgrelay-admin/', `${secretDir}/`);
  for (const [key, text] of Object.entries(callbacks.data ?? {})) {
    writeFileSync(join(cbDir, key), relocate(text));
    chmodSync(join(cbDir, key), 0o555);
  }
  // A stand-in hook that records what it was given.
  const out = join(root, 'argv');
  writeFileSync(join(cbDir, 'pgrelay-hook'), '#!/bin/sh\n{ for a in "$@"; do printf \'%s\\n\' "$a"; done; printf \'CONSOLE=%s\\n\' "${PGRELAY_CONSOLE_URL:-}"; } > "$OUT"\n', { mode: 0o555 });
  writeFileSync(join(secretDir, 'admin-token'), 'token');
  writeFileSync(join(binDir, 'hostname'), '#!/bin/sh\necho "10.7.7.7 fd00::7"\n', { mode: 0o555 });

  const run = (file: string, args: string[], env: Record<string, string>): string[] => {
    rmSync(out, { force: true });
    const r = spawnSync(join(cbDir, file), args, { env: { PATH: `${binDir}:/usr/bin:/bin`, OUT: out, ...env }, encoding: 'utf8' });
    t.equal(r.status, 0, `${[file, ...args].join(' ')} exits 0 ${r.stderr}`);
    return existsSync(out) ? readFileSync(out, 'utf8').trimEnd().split('\n') : [];
  };
  const flag = (argv: string[], name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  const after = (argv: string[]): string[] => argv.slice(argv.indexOf('--') + 1, -1);

  let argv = run('on_role_change', ['on_role_change', 'master', 'cluster'], { PATRONI_POSTGRESQL_CONNECT_ADDRESS: '10.1.2.3:7433', PATRONI_KUBERNETES_POD_IP: '10.9.9.9' });
  t.equal(flag(argv, '--node'), '10.1.2.3:5432', 'host of PATRONI_POSTGRESQL_CONNECT_ADDRESS, client port 5432');
  t.same(after(argv), ['on_role_change', 'master', 'cluster'], 'Patroni\'s arguments follow --');
  t.equal(flag(argv, '--admin'), hookFlags.get('--admin'));
  t.equal(flag(argv, '--token-file'), `${secretDir}/admin-token`);
  t.equal(argv.at(-1), 'CONSOLE=', 'no console-url file: no console fallback');

  writeFileSync(join(secretDir, 'console-url'), 'postgresql://a:b@pgrelay:5432/pgbouncer');
  argv = run('before_stop', [], { PATRONI_POSTGRESQL_CONNECT_ADDRESS: '${PATRONI_KUBERNETES_POD_IP}:7433', PATRONI_KUBERNETES_POD_IP: '10.9.9.9' });
  t.equal(flag(argv, '--node'), '10.9.9.9:5432', 'an unexpanded connect address falls back to the pod IP');
  t.same(after(argv), [], 'before_stop: no arguments after --');
  t.equal(argv.at(-1), 'CONSOLE=postgresql://a:b@pgrelay:5432/pgbouncer', 'the console URL goes through the environment');
  t.notOk(argv.slice(0, -1).some((a) => a.includes('a:b@')), '...not through argv');

  argv = run('on_restart', ['on_restart', 'primary', 'cluster'], {});
  t.equal(flag(argv, '--node'), '10.7.7.7:5432', 'no Patroni variables: the first address of hostname -i');
  t.same(after(argv), ['on_restart', 'primary', 'cluster']);

  argv = run('on_start', ['on_start', 'replica', 'cluster'], { PGRELAY_NODE: 'pg-0.example:6000', PGRELAY_NODE_PORT: '1' });
  t.equal(flag(argv, '--node'), 'pg-0.example:6000', 'PGRELAY_NODE wins');

  // The real hook takes the wrapper's flags without complaint (a replica event: it contacts nothing).
  writeFileSync(join(cbDir, 'pgrelay-hook'), readFileSync(HOOK_SOURCE, 'utf8'), { mode: 0o555 });
  chmodSync(join(cbDir, 'pgrelay-hook'), 0o555);
  const real = spawnSync(join(cbDir, 'on_role_change'), ['on_role_change', 'replica', 'cluster'], {
    env: { PATH: `${binDir}:/usr/bin:/bin`, PATRONI_KUBERNETES_POD_IP: '10.9.9.9' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  t.equal(real.status, 0, 'the real hook exits 0');
  t.notMatch(real.stderr, /unknown option/, `the real hook knows every flag: ${real.stderr.trim()}`);
});

t.test('TLS on both sides: the Secret cert-manager writes is mounted where pgrelay.ini reads it; PostgreSQL gets a certificate for the host pgrelay verifies', async (t) => {
  const s = config.settings;
  t.equal(s.clientTlsSslmode, 'require', 'clients must use TLS');
  t.equal(s.serverTlsSslmode, 'verify-full', 'PostgreSQL\'s certificate and host name are verified');
  t.ok(s.tlsFileCheckPeriodMs > 0, 'rotated files are picked up without a restart');
  const files = mountedFiles(pod.spec, container, dataOf(k8s));
  const tlsSecret = (p: string | null): MountedFile | undefined => (p === null ? undefined : files.get(p));
  const cert = tlsSecret(s.clientTlsCertFile);
  t.match(cert, { kind: 'Secret', key: 'tls.crt' }, `client_tls_cert_file ${String(s.clientTlsCertFile)} is a Secret's tls.crt`);
  t.match(tlsSecret(s.clientTlsKeyFile), { kind: 'Secret', name: cert?.name, key: 'tls.key' }, 'client_tls_key_file is its tls.key');
  t.match(tlsSecret(s.serverTlsCaFile), { kind: 'Secret', name: cert?.name, key: 'ca.crt' }, 'server_tls_ca_file is its ca.crt');
  const sec = pod.spec.securityContext ?? {};
  const keyMode = tlsSecret(s.clientTlsKeyFile)?.mode ?? 0;
  t.ok((keyMode & 0o004) === 0 && (keyMode & 0o040) !== 0 && sec.fsGroup !== undefined, `the key is readable by the pod's group only (mode ${keyMode.toString(8)})`);

  const relayCert = certificates.find((c) => c.spec.secretName === cert?.name);
  t.ok(relayCert !== undefined, `a cert-manager Certificate writes Secret ${String(cert?.name)}`);
  t.ok(relayCert?.spec.dnsNames?.includes(clientService.metadata.name), 'its names include the client Service');
  t.ok(relayCert?.spec.usages?.includes('server auth'));

  const pgSsl = (sgcluster as unknown as { spec: { postgres: { ssl?: { enabled: boolean; certificateSecretKeySelector: { name: string; key: string }; privateKeySecretKeySelector: { name: string; key: string } } } } }).spec.postgres.ssl;
  t.equal(pgSsl?.enabled, true, 'the SGCluster serves TLS');
  const pgCert = certificates.find((c) => c.spec.secretName === pgSsl?.certificateSecretKeySelector.name);
  t.ok(pgCert !== undefined, 'with the Secret of a cert-manager Certificate');
  t.equal(pgSsl?.privateKeySecretKeySelector.name, pgCert?.spec.secretName, 'key and certificate from the same Secret');
  const upstream = config.databases.get('*')?.hosts[0]?.host ?? '';
  t.ok(pgCert?.spec.dnsNames?.includes(upstream), `its names include ${upstream}, the host verify-full checks`);
  t.equal(pgCert?.spec.issuerRef.name, relayCert?.spec.issuerRef.name, 'both signed by the issuer whose CA is ca.crt');
  const issuer = certManager.find((r) => r.kind === 'Issuer' && r.metadata.name === relayCert?.spec.issuerRef.name) as (Resource & { spec: { ca?: { secretName: string } } }) | undefined;
  t.ok(certificates.some((c) => c.spec.isCA === true && c.spec.secretName === issuer?.spec.ca?.secretName), 'that issuer is a CA made here');

  t.match(new URL(secretData(secret)['console-url'] ?? '').searchParams.get('sslmode'), /^(require|verify-ca|verify-full)$/, 'the hooks\' console URL asks for TLS');
  const script = pgbench.spec.template.spec.containers[0]!.command?.at(-1) ?? '';
  for (const m of script.matchAll(/postgresql:\/\/[^\s']+/g)) t.equal(new URL(m[0]).searchParams.get('sslmode'), 'require', `pgbench asks for TLS: ${m[0]}`);
});

t.test('the StackGres example keeps auth_query: users come from PostgreSQL, auth_user from userlist.txt', async (t) => {
  const s = config.settings;
  t.equal(s.authUser, 'postgres', 'auth_user, as in the runbook');
  t.match(s.authQuery, /pg_shadow|pg_authid/, 'auth_query reads PostgreSQL\'s verifiers');
  t.ok(userlist.has(s.authUser!), 'auth_user\'s password is in userlist.txt');
});
