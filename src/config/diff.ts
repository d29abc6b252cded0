// What a reload changes: compares the running Config with the one just loaded, key by key, and
// builds the Config to run with, in which whatever cannot change without a restart keeps its
// running value (per SETTINGS_TABLE.reload), so that SHOW CONFIG and the log never claim otherwise.

import { SETTINGS_TABLE } from './settings.js';
import { freezeConfig } from './load.js';
import type { Config, DatabaseConfig, Settings, UserConfig } from './types.js';

export interface ReloadPlan {
  /** `next`, except that restart-only values keep their running value. */
  readonly config: Config;
  /**
   * What the reload changes: setting keys (`default_pool_size`), and `databases.<name>` /
   * `users.<name>` for entries added, removed or changed.
   */
  readonly changed: string[];
  /** Changed in the file but kept at the running value until a restart. */
  readonly needsRestart: string[];
}

export function planReload(current: Config, next: Config): ReloadPlan {
  const changed: string[] = [];
  const needsRestart: string[] = [];

  const settings: Record<string, unknown> = { ...next.settings };
  for (const spec of SETTINGS_TABLE) {
    if (spec.aliasOf !== undefined) continue;
    if (sameValue(current.settings[spec.field], next.settings[spec.field])) continue;
    if (spec.reload) {
      changed.push(spec.key);
    } else {
      needsRestart.push(spec.key);
      settings[spec.field] = current.settings[spec.field];
    }
  }
  const databases = planEntries('databases', current.databases, next.databases, changed, needsRestart);
  const users = planEntries('users', current.users, next.users, changed, needsRestart);
  return {
    config: freezeConfig({ file: next.file, settings: settings as unknown as Settings, databases, users, warnings: [...next.warnings], ...(next.sites !== undefined && { sites: next.sites }) }),
    changed,
    needsRestart,
  };
}

/**
 * Entries added, removed or changed. A pool keeps the pool_mode it was created with, so an entry's
 * new pool_mode waits for a restart: the entry keeps its running pool_mode, and the rest applies.
 */
function planEntries<V extends DatabaseConfig | UserConfig>(
  prefix: string,
  current: ReadonlyMap<string, V>,
  next: ReadonlyMap<string, V>,
  changed: string[],
  needsRestart: string[],
): Map<string, V> {
  const out = new Map<string, V>();
  for (const [name, entry] of next) {
    const old = current.get(name);
    out.set(name, old !== undefined && old.poolMode !== entry.poolMode ? { ...entry, poolMode: old.poolMode } : entry);
  }
  // Reported in the running config's order, then the entries that are new.
  for (const [name, old] of current) {
    const entry = next.get(name);
    if (entry === undefined) {
      changed.push(`${prefix}.${name}`);
      continue;
    }
    if (old.poolMode !== entry.poolMode) needsRestart.push(`${prefix}.${name}.pool_mode`);
    if (!sameValue(old, out.get(name))) changed.push(`${prefix}.${name}`);
  }
  for (const name of next.keys()) if (!current.has(name)) changed.push(`${prefix}.${name}`);
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
