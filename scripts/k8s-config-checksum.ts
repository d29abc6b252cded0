// Writes the SHA-256 of deploy/k8s/configmap.yaml's pgrelay.ini into the Deployment's pod template
// annotation checksum/config, so that a changed config is a changed pod template and a rollout
// replaces the pods: `npx tsx scripts/k8s-config-checksum.ts` (--check: exit 1 when out of date).
// test/deploy/shipping.test.ts fails when the annotation does not match.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const K8S = fileURLToPath(new URL('../deploy/k8s/', import.meta.url));

export function configChecksum(configMapYaml: string): string {
  const cm = YAML.parse(configMapYaml, { version: '1.1' }) as { data: Record<string, string> };
  return `sha256:${createHash('sha256').update(cm.data['pgrelay.ini'] ?? '', 'utf8').digest('hex')}`;
}

const ANNOTATION = /^(\s+checksum\/config: )"?[^"\n]*"?$/m;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sum = configChecksum(readFileSync(`${K8S}configmap.yaml`, 'utf8'));
  const deployment = readFileSync(`${K8S}deployment.yaml`, 'utf8');
  if (!ANNOTATION.test(deployment)) throw new Error('deployment.yaml has no checksum/config annotation line');
  const updated = deployment.replace(ANNOTATION, `$1"${sum}"`);
  if (process.argv.includes('--check')) {
    if (updated !== deployment) {
      process.stderr.write(`deploy/k8s/deployment.yaml: checksum/config is out of date (want ${sum}); run npx tsx scripts/k8s-config-checksum.ts\n`);
      process.exit(1);
    }
  } else if (updated !== deployment) {
    writeFileSync(`${K8S}deployment.yaml`, updated);
    process.stdout.write(`checksum/config = ${sum}\n`);
  }
}
