// The README's list of PgBouncer keys pgrelay does not implement, as Markdown: those that fail the
// load unless set off, and those that only warn. Built from the loader's own tables.

import { DATABASE_KEYS, KeyImpact, PGBOUNCER_SETTINGS, type UnimplementedKey } from './pgbouncer-keys.js';
import { DATABASE_ENTRY_KEYS } from './databases.js';
import { findSetting } from './settings.js';

function names(entries: Iterable<[string, UnimplementedKey]>, fails: boolean): string {
  const out: string[] = [];
  for (const [key, k] of entries) if ((k.impact !== KeyImpact.tuning) === fails) out.push(`\`${key}\``);
  return out.length === 0 ? '(none)' : out.join(', ');
}

export function pgbouncerKeysReference(): string {
  const settings = [...PGBOUNCER_SETTINGS].filter(([key]) => findSetting(key) === undefined);
  const dbKeys = [...DATABASE_KEYS].filter(([key]) => !(DATABASE_ENTRY_KEYS as readonly string[]).includes(key));
  return [
    `- Fail the load unless set off (\`0\`, \`off\`, \`disable\`, empty, or PgBouncer's default), because ignoring them would weaken security or change behaviour: ${names(settings, true)}.`,
    `- Load with a warning (tuning only, or used only with a key that fails): ${names(settings, false)}.`,
    `- On a \`[databases]\` line, fail unless off: ${names(dbKeys, true)}; warn: ${names(dbKeys, false)}.`,
  ].join('\n');
}
