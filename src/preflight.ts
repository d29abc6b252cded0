// The startup checks a parsed config still has to pass: the files it names are readable (the
// auth_file parses), listen addresses resolve to this host, the admin API is not open to the
// network without a token. `--check` runs them, and so does startup before it binds anything, so
// both report the same problems with the file and line that set the value.

import { accessSync, constants, statSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname } from 'node:path';
import { loadCheckedAuthFile } from './auth/auth-file.js';
import { checkAdminBinding, readAdminToken } from './admin/http-auth.js';
import { inlineCommentHint } from './config/checks.js';
import { loadSecurity } from './auth/security.js';
import { SETTINGS_TABLE } from './config/settings.js';
import { ConfigError } from './config/types.js';
import type { Config, ConfigWarning, Settings } from './config/types.js';

export interface PreflightResult {
  /** What startup would refuse, each at the line that set the value. */
  readonly errors: ConfigError[];
  /** What loads but will not work as someone may expect (an empty secret in auth_file). */
  readonly warnings: ConfigWarning[];
}

export interface PreflightOptions {
  /** Longest wait for one DNS lookup of a listen address. */
  readonly dnsTimeoutMs?: number;
}

// Paths written by pgrelay, not read: their directory must exist instead (logfile's is created).
const WRITTEN_PATHS = new Set<keyof Settings>(['logfile', 'pidfile', 'unixSocketDir']);

export async function preflight(config: Config, opts: PreflightOptions = {}): Promise<PreflightResult> {
  const s = config.settings;
  const errors: ConfigError[] = [];
  const warnings: ConfigWarning[] = [];
  const site = (field: keyof Settings): { file: string; line: number; key: string } => {
    const found = config.sites?.settings.get(field);
    const spec = SETTINGS_TABLE.find((x) => x.field === field && x.aliasOf === undefined);
    return found ?? { file: config.file ?? '<config>', line: 0, key: spec?.key ?? field };
  };
  const fail = (field: keyof Settings, reason: string): void => {
    const at = site(field);
    errors.push(new ConfigError(at.file, at.line, reason));
  };

  // Every file the table names that pgrelay reads (auth_file, admin_token_file, and whatever
  // TLS or HBA files are set): it must be readable now, or startup and reload would refuse it.
  for (const spec of SETTINGS_TABLE) {
    if (spec.type !== 'path' || spec.aliasOf !== undefined || WRITTEN_PATHS.has(spec.field)) continue;
    const path = s[spec.field] as string | null;
    if (path === null) continue;
    const problem = unreadable(path);
    if (problem !== null) {
      const raw = site(spec.field);
      fail(spec.field, `${raw.key} ${path}: ${problem}${inlineCommentHint(path)}`);
    }
  }
  if (s.authFile !== null && unreadable(s.authFile) === null) {
    try {
      loadCheckedAuthFile(s.authFile, {
        warn: (fields, message) => warnings.push({ ...site('authFile'), section: 'pgbouncer', key: 'auth_file', message: `${message} (${String(fields['file'])})` }),
      });
    } catch (err) {
      fail('authFile', `auth_file: ${(err as Error).message}`);
    }
  }

  // TLS keys and certificates that load and match, the TLS settings that need them, the
  // auth_hba_file's rules: what startup and reload build, checked the same way.
  if (errors.length === 0) {
    try {
      loadSecurity(config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(err);
    }
  }

  if (s.unixSocketDir !== null && !isDirectory(s.unixSocketDir)) fail('unixSocketDir', `unix_socket_dir ${s.unixSocketDir} is not a directory`);
  if (s.pidfile !== null && !isDirectory(dirname(s.pidfile))) fail('pidfile', `pidfile ${s.pidfile}: its directory does not exist`);

  const dnsTimeoutMs = opts.dnsTimeoutMs ?? 5000;
  for (const addr of s.listenAddr) {
    const problem = await unbindable(addr, dnsTimeoutMs);
    if (problem !== null) fail('listenAddr', `listen_addr ${JSON.stringify(addr)} ${problem}`);
  }
  if (s.adminListenPort > 0) {
    const problem = await unbindable(s.adminListenAddr, dnsTimeoutMs);
    if (problem !== null) fail('adminListenAddr', `admin_listen_addr ${JSON.stringify(s.adminListenAddr)} ${problem}`);
    // An unreadable token file is reported above; then the binding rule is not what failed.
    if (s.adminTokenFile === null || unreadable(s.adminTokenFile) === null) {
      let token: string | null = null;
      try {
        token = readAdminToken(s);
      } catch (err) {
        fail('adminTokenFile', (err as Error).message);
        token = 'unusable';
      }
      try {
        checkAdminBinding(s.adminListenAddr, token);
      } catch (err) {
        fail('adminListenAddr', (err as Error).message);
      }
    }
  }
  // One error per line is enough: a file that is both missing and unreadable says it once.
  return { errors: dedupe(errors), warnings };
}

function unreadable(path: string): string | null {
  try {
    if (statSync(path).isDirectory()) return 'is a directory, not a file';
    accessSync(path, constants.R_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'not readable by this user' : `cannot read it (${code ?? (err as Error).message})`;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Why binding `addr` would fail, or null: a name that does not resolve, an address not on this host. */
async function unbindable(addr: string, timeoutMs: number): Promise<string | null> {
  if (addr === '*' || addr === '0.0.0.0' || addr === '::') return null;
  let addresses: string[];
  if (isIP(addr) !== 0) {
    addresses = [addr];
  } else {
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEOUT' })), timeoutMs);
      });
      addresses = (await Promise.race([lookup(addr, { all: true }), timeout]).finally(() => clearTimeout(timer))).map((a) => a.address);
    } catch (err) {
      return `does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }
  const local = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  // node listens on the first address a name resolves to.
  const first = addresses[0]!;
  if (local.has(first) || first.startsWith('127.')) return null;
  return `${first === addr ? 'is' : `resolves to ${first}, which is`} not an address of this host (binding it would fail with EADDRNOTAVAIL)`;
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.file}:${e.line}:${e.reason}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
