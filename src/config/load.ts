// Turns a pgbouncer.ini-format file into a validated, deep-frozen Config: sections are
// dispatched to the settings table and the [databases]/[users] parsers, then checked
// across keys. Also builds Configs in code and prints the effective config (--check).

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  emptyDatabase,
  emptyUser,
  formatDatabaseEntry,
  formatEntryName,
  formatUserEntry,
  parseDatabaseEntry,
  parseUserEntry,
} from './databases.js';
import type { EntrySite } from './databases.js';
import { parseIni } from './ini.js';
import type { IniSection } from './ini.js';
import {
  applySetting,
  DEFAULT_SETTINGS,
  findSetting,
  formatSetting,
  SETTINGS_TABLE,
} from './settings.js';
import { SettingValueError } from './setting-values.js';
import { ConfigError } from './types.js';
import type { Config, ConfigSite, ConfigSites, ConfigWarning, DatabaseConfig, Settings, UserConfig } from './types.js';
import { KNOWN_SECTIONS, PGBOUNCER_SETTINGS, refusesToIgnore } from './pgbouncer-keys.js';
import { didYouMean } from './suggest.js';
import { checkListenAddress, gateNeverPasses, inlineCommentHint } from './checks.js';

/** Either name works for the main section, so a pgbouncer.ini loads unchanged. */
const SETTINGS_SECTIONS = ['pgbouncer', 'pgrelay'] as const;

export interface ParseOptions {
  /** Reads the config and `%include`d files; defaults to fs.readFileSync(path, 'utf8'). */
  readonly readFile?: (path: string) => string;
}

/**
 * Reads and parses a config file. Relative auth_file, logfile, pidfile and
 * admin_token_file paths resolve against the directory of the file that sets them
 * (PgBouncer uses its working directory; the config's own directory means the same
 * file behaves the same however the daemon is started).
 */
export function loadConfig(path: string, options: ParseOptions = {}): Config {
  const file = resolve(path);
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, 0, `cannot read config file: ${code ?? (err instanceof Error ? err.message : String(err))}`);
  }
  return parseConfig(text, file, { readFile });
}

/** Parses config text as if read from `file` (which anchors %include and relative paths). */
export function parseConfig(text: string, file: string, options: ParseOptions = {}): Config {
  const absFile = resolve(file);
  const sections = parseIni(text, absFile, options.readFile === undefined ? {} : { readFile: options.readFile });
  const warnings: ConfigWarning[] = [];

  const mainSections = sections.filter((s) => (SETTINGS_SECTIONS as readonly string[]).includes(s.name));
  if (mainSections.length > 1) {
    const second = mainSections[1]!;
    throw new ConfigError(second.file, second.line, 'both [pgbouncer] and [pgrelay] are present; they are the same section, use one');
  }

  const settingsSites = new Map<keyof Settings, ConfigSite>();
  const settings: Partial<Record<keyof Settings, unknown>> = {};
  const databases = new Map<string, DatabaseConfig>();
  const dbSites = new Map<string, ConfigSite>();
  const users = new Map<string, UserConfig>();
  const userSites = new Map<string, EntrySite>();

  for (const section of sections) {
    if (mainSections[0] === section) {
      readSettings(section, settings, settingsSites, warnings);
    } else if (section.name === 'databases') {
      for (const e of section.entries) {
        const { database, warnings: w } = withCommentHint(e.value, () => parseDatabaseEntry(e.key, e.value, e));
        warnings.push(...w);
        noteDuplicate(dbSites, e.key, e, 'databases', `database "${e.key}" is defined more than once`, warnings);
        databases.set(e.key, database);
        dbSites.set(e.key, { file: e.file, line: e.line, key: e.key });
      }
    } else if (section.name === 'users') {
      for (const e of section.entries) {
        const { user, warnings: w } = withCommentHint(e.value, () => parseUserEntry(e.key, e.value, e));
        warnings.push(...w);
        noteDuplicate(userSites, e.key, e, 'users', `user "${e.key}" is defined more than once`, warnings);
        users.set(e.key, user);
      }
    } else if (section.name === 'peers') {
      for (const e of section.entries) {
        warnings.push({
          file: e.file,
          line: e.line,
          section: section.name,
          key: e.key,
          message: `[peers] entry "${e.key}": PgBouncer peering is parsed but not implemented by pgrelay yet; ignored`,
        });
      }
    } else {
      // PgBouncer skips a section it does not know; a typo such as [database] would then leave
      // no databases at all, so pgrelay refuses it.
      throw new ConfigError(
        section.file,
        section.line,
        `unknown section [${section.name}]${didYouMean(section.name, KNOWN_SECTIONS, (n) => `[${n}]`)}: the sections are [pgbouncer] (or [pgrelay]), [databases], [users] and [peers]`,
      );
    }
  }

  const merged = { ...DEFAULT_SETTINGS, ...settings } as Settings;
  const siteOf = (field: keyof Settings): EntrySite => settingsSites.get(field) ?? { file: absFile, line: 0 };
  validate(merged, databases, siteOf, (name) => dbSites.get(name) ?? { file: absFile, line: 0 });
  requireSections(absFile, mainSections.length > 0, sections.some((s) => s.name === 'databases'));

  return freezeConfig({ file: absFile, settings: merged, databases, users, warnings, sites: { settings: settingsSites, databases: dbSites } });
}

/** Runs a [databases]/[users] parse; a failure on a line with an inline `;` says why it is not a comment. */
function withCommentHint<T>(value: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError) {
      const hint = inlineCommentHint(value);
      if (hint !== '') throw new ConfigError(err.file, err.line, `${err.reason}${hint}`);
    }
    throw err;
  }
}

/** Every key the main section can hold: pgrelay's table, then PgBouncer's (for suggestions). */
function knownSettingKeys(): string[] {
  return [...SETTINGS_TABLE.map((s) => s.key), ...PGBOUNCER_SETTINGS.keys()];
}

function readSettings(
  section: IniSection,
  out: Partial<Record<keyof Settings, unknown>>,
  sites: Map<keyof Settings, ConfigSite>,
  warnings: ConfigWarning[],
): void {
  for (const e of section.entries) {
    // The table decides what is implemented; PGBOUNCER_SETTINGS only classes what is not.
    const spec = findSetting(e.key);
    if (spec === undefined) {
      const known = PGBOUNCER_SETTINGS.get(e.key);
      if (known === undefined) {
        // PgBouncer refuses a key it does not know ("unknown parameter"); so does pgrelay.
        throw new ConfigError(e.file, e.line, `unknown key "${e.key}" in [${section.name}]${didYouMean(e.key, knownSettingKeys())}: not a pgrelay or PgBouncer setting`);
      }
      if (refusesToIgnore(known, e.value)) {
        throw new ConfigError(
          e.file,
          e.line,
          `"${e.key}" is a PgBouncer setting that pgrelay does not implement, and ignoring it would change ${known.impact === 'security' ? 'security' : 'behaviour'}: ${known.note}. Remove it, or set it off, to run pgrelay without it`,
        );
      }
      warnings.push({
        file: e.file,
        line: e.line,
        section: section.name,
        key: e.key,
        message: `"${e.key}" is a PgBouncer setting parsed but not implemented by pgrelay yet; it has no effect (${known.note})`,
      });
      continue;
    }
    try {
      applySetting(out, spec, e.value, { baseDir: dirname(e.file) });
    } catch (err) {
      if (err instanceof SettingValueError) throw new ConfigError(e.file, e.line, `${e.key}: ${err.reason}${inlineCommentHint(e.value)}`);
      throw err;
    }
    const hint = inlineCommentHint(e.value);
    if (hint !== '' && spec.type !== 'integer' && spec.type !== 'duration' && spec.type !== 'boolean' && spec.type !== 'enum') {
      warnings.push({ file: e.file, line: e.line, section: section.name, key: e.key, message: `${e.key}: the value ${JSON.stringify(e.value)} contains " ;"${hint}` });
    }
    const prev = sites.get(spec.field);
    if (prev !== undefined) {
      const what = prev.key === e.key ? `"${e.key}" is set more than once` : `"${e.key}" and "${prev.key}" set the same setting`;
      warnings.push({
        file: e.file,
        line: e.line,
        section: section.name,
        key: e.key,
        message: `${what} (also at ${prev.file}:${prev.line}); the last one wins`,
      });
    }
    sites.set(spec.field, { key: e.key, file: e.file, line: e.line });
  }
}

function noteDuplicate(
  sites: Map<string, EntrySite>,
  name: string,
  site: EntrySite,
  section: string,
  what: string,
  warnings: ConfigWarning[],
): void {
  const prev = sites.get(name);
  if (prev !== undefined) {
    warnings.push({ ...pick(site), section, key: name, message: `${what} (also at ${prev.file}:${prev.line}); the last one wins` });
  }
  sites.set(name, pick(site));
}

function pick(site: EntrySite): EntrySite {
  return { file: site.file, line: site.line };
}

/**
 * A config file must have its main section and [databases], as PgBouncer refuses a file without
 * its main section ("main section missing"). Without this an empty or truncated file, caught
 * half-written by a SIGHUP, would load as "no databases" and every client would get 3D000. Checked
 * after everything else so that a more precise error at a line wins. An empty [databases] is fine.
 */
function requireSections(file: string, hasMain: boolean, hasDatabases: boolean): void {
  if (hasMain && hasDatabases) return;
  const main = 'main section missing: no [pgbouncer] or [pgrelay] section';
  throw new ConfigError(
    file,
    0,
    !hasMain && !hasDatabases
      ? `${main}, and no [databases] section (is the file empty or truncated?)`
      : !hasMain
        ? main
        : 'no [databases] section: every client would be refused with "no such database" (write an empty [databases] section if that is meant)',
  );
}

/** Checks that need more than one key. Throws ConfigError at the most relevant line. */
function validate(
  s: Settings,
  databases: ReadonlyMap<string, DatabaseConfig>,
  siteOf: (field: keyof Settings) => EntrySite,
  dbSiteOf: (name: string) => EntrySite,
): void {
  const fail = (site: EntrySite, reason: string): never => {
    throw new ConfigError(site.file, site.line, reason);
  };
  if (s.minPoolSize > s.defaultPoolSize) {
    fail(siteOf('minPoolSize'), `min_pool_size (${s.minPoolSize}) is larger than default_pool_size (${s.defaultPoolSize})`);
  }
  if (s.listenAddr.length === 0 && s.unixSocketDir === null) {
    fail(siteOf('listenAddr'), 'listen_addr is empty and unix_socket_dir is not set: pgrelay would accept no clients');
  }
  for (const addr of s.listenAddr) {
    const problem = checkListenAddress(addr, 'listen_addr', 'listen_port');
    if (problem !== null) fail(siteOf('listenAddr'), problem);
  }
  const adminProblem = checkListenAddress(s.adminListenAddr, 'admin_listen_addr', 'admin_listen_port');
  if (adminProblem !== null) fail(siteOf('adminListenAddr'), adminProblem);
  if (s.adminToken !== null && s.adminTokenFile !== null) {
    const a = siteOf('adminToken');
    const b = siteOf('adminTokenFile');
    fail(a.line >= b.line ? a : b, 'set admin_token or admin_token_file, not both');
  }
  for (const db of databases.values()) {
    const poolSize = db.poolSize ?? s.defaultPoolSize;
    if (db.minPoolSize !== null && db.minPoolSize > poolSize) {
      fail(dbSiteOf(db.name), `database "${db.name}": min_pool_size (${db.minPoolSize}) is larger than its pool size (${poolSize})`);
    }
    const never = gateNeverPasses(db);
    if (never !== null) fail(dbSiteOf(db.name), `database "${db.name}": ${never}`);
  }
}

/** What buildConfig accepts: any subset, keyed by database/user name. */
export interface ConfigInput {
  readonly file?: string | null;
  readonly settings?: Partial<Settings>;
  readonly databases?: Readonly<Record<string, Partial<Omit<DatabaseConfig, 'name'>>>>;
  readonly users?: Readonly<Record<string, Partial<Omit<UserConfig, 'name'>>>>;
  readonly warnings?: readonly ConfigWarning[];
}

/** A Config without a file (tests, embedding): defaults fill the gaps; cross-key checks still run. */
export function buildConfig(partial: ConfigInput = {}): Config {
  const file = partial.file ?? null;
  // Cloned so freezing the result does not freeze arrays the caller still owns.
  const settings = { ...DEFAULT_SETTINGS, ...structuredClone(partial.settings) } as Settings;
  const databases = new Map<string, DatabaseConfig>();
  for (const [name, db] of Object.entries(partial.databases ?? {})) {
    databases.set(name, { ...emptyDatabase(name), ...structuredClone(db), name });
  }
  const users = new Map<string, UserConfig>();
  for (const [name, u] of Object.entries(partial.users ?? {})) {
    users.set(name, { ...emptyUser(name), ...structuredClone(u), name });
  }
  const site = { file: file ?? '<buildConfig>', line: 0 };
  validate(settings, databases, () => site, () => site);
  return freezeConfig({ file, settings, databases, users, warnings: structuredClone([...(partial.warnings ?? [])]) });
}

/**
 * Every effective setting as `key = value` (durations in seconds, as PgBouncer shows
 * them), then the databases and users, in INI form so the output loads again.
 * Secrets (passwords, admin_token) print as `****`. Warnings are not included:
 * callers print config.warnings themselves.
 */
export function formatEffectiveSettings(config: Config): string {
  const lines: string[] = [];
  lines.push(`; effective pgrelay configuration ${config.file === null ? '(built in code)' : `from ${config.file}`}`);
  lines.push('[pgrelay]');
  for (const spec of SETTINGS_TABLE) {
    if (spec.aliasOf !== undefined) continue;
    lines.push(`${spec.key} = ${formatSetting(spec, config.settings)}`);
  }
  lines.push('', '[databases]');
  for (const db of config.databases.values()) {
    lines.push(`${formatEntryName(db.name)} = ${formatDatabaseEntry(db)}`);
  }
  if (config.users.size > 0) {
    lines.push('', '[users]');
    for (const user of config.users.values()) {
      lines.push(`${formatEntryName(user.name)} = ${formatUserEntry(user)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---- freezing ---------------------------------------------------------------------

export interface ConfigParts {
  file: string | null;
  settings: Settings;
  databases: Map<string, DatabaseConfig>;
  users: Map<string, UserConfig>;
  warnings: ConfigWarning[];
  sites?: ConfigSites;
}

/** A Config from its parts, deep-frozen (the parts are taken over, not copied). */
export function freezeConfig(parts: ConfigParts): Config {
  return deepFreeze({
    file: parts.file,
    settings: { ...parts.settings },
    databases: parts.databases,
    users: parts.users,
    warnings: parts.warnings,
    ...(parts.sites !== undefined && { sites: parts.sites }),
  });
}

/** Object.freeze does not stop Map#set, so Maps also get throwing mutators. */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Map) {
    if (Object.isFrozen(value)) return value;
    const refuse = (): never => {
      throw new TypeError('Config is frozen; build a new one (reload replaces it whole)');
    };
    for (const method of ['set', 'delete', 'clear']) {
      Object.defineProperty(value, method, { value: refuse });
    }
    for (const [k, v] of value) {
      deepFreeze(k);
      deepFreeze(v);
    }
  } else {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return Object.freeze(value);
}
