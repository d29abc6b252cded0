// What a reload changes: compares two Configs key by key and says which changes
// cannot take effect without a restart (listening sockets, per SETTINGS_TABLE.reload).

import { SETTINGS_TABLE } from './settings.js';
import type { Config } from './types.js';

export interface ConfigDiff {
  /**
   * Every difference: setting keys (`default_pool_size`), and `databases.<name>` /
   * `users.<name>` for entries added, removed or changed.
   */
  readonly changed: string[];
  /** The subset of `changed` a reload cannot apply (the old value stays until a restart). */
  readonly needsRestart: string[];
}

export function diffConfig(old: Config, next: Config): ConfigDiff {
  const changed: string[] = [];
  const needsRestart: string[] = [];

  for (const spec of SETTINGS_TABLE) {
    if (spec.aliasOf !== undefined) continue;
    if (sameValue(old.settings[spec.field], next.settings[spec.field])) continue;
    changed.push(spec.key);
    if (!spec.reload) needsRestart.push(spec.key);
  }
  changed.push(...diffMap('databases', old.databases, next.databases));
  changed.push(...diffMap('users', old.users, next.users));
  return { changed, needsRestart };
}

function diffMap<V>(prefix: string, a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): string[] {
  const out: string[] = [];
  for (const [name, value] of a) {
    if (!b.has(name) || !sameValue(value, b.get(name))) out.push(`${prefix}.${name}`);
  }
  for (const name of b.keys()) {
    if (!a.has(name)) out.push(`${prefix}.${name}`);
  }
  return out;
}

/** Structural equality for config data (primitives, arrays, plain objects). */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
