// libpq-style `key=value key2='quoted \' value'` parsing for [databases] / [users]
// values, and libpq host lists (`host=a,b port=5432,5433`) → HostPort[].

import type { HostPort } from './types.js';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 5432;

/** A malformed connection string; `reason` is shown to the operator with file:line. */
export class ConnStringError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ConnStringError';
  }
}

/** Parameters whose values must never appear in error messages. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'sslpassword']);

export interface ConnParam {
  /** Lower-cased (libpq keywords are lower-case; accepting `Host=` is friendlier). */
  readonly key: string;
  readonly value: string;
}

/**
 * Splits a connection string into ordered key/value pairs (a repeated key appears twice;
 * callers let the last win, as libpq does). Quoting follows libpq: a value in single
 * quotes may contain spaces, `\'` and `\\`; PgBouncer's `''` escape is accepted too.
 * Other backslashes are kept literally, so PgBouncer-era passwords keep their meaning.
 */
export function parseConnString(text: string): ConnParam[] {
  const out: ConnParam[] = [];
  // Error messages quote the offending text, except right after a secret's value: a
  // password with an unquoted space would otherwise be echoed into logs.
  const shown = (token: string): string => {
    const prev = out[out.length - 1]?.key;
    return prev !== undefined && SECRET_KEYS.has(prev) ? `(text after the ${prev} value, not shown)` : `"${token}"`;
  };
  let i = 0;
  const n = text.length;
  const skipWs = (): void => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };

  for (;;) {
    skipWs();
    if (i >= n) return out;

    const keyStart = i;
    while (i < n && text[i] !== '=' && !/\s/.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    skipWs();
    if (text[i] !== '=') {
      throw new ConnStringError(`expected "=" after ${shown(key)} (quote values that contain spaces: key='a b')`);
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) {
      throw new ConnStringError(key === '' ? 'missing parameter name before "="' : `invalid parameter name ${shown(key)}`);
    }
    i++; // '='
    skipWs();

    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new ConnStringError(`unterminated quoted value for "${key}"`);
        const c = text[i]!;
        if (c === '\\' && (text[i + 1] === "'" || text[i + 1] === '\\')) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'" && text[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (i < n && !/\s/.test(text[i]!)) {
        throw new ConnStringError(`unexpected text after the quoted value of "${key}" (separate parameters with spaces)`);
      }
    } else {
      const start = i;
      while (i < n && !/\s/.test(text[i]!)) i++;
      value = text.slice(start, i);
      if (value === '') throw new ConnStringError(`missing value for "${key}" (use '' for an empty value)`);
    }
    out.push({ key: key.toLowerCase(), value });
  }
}

/** Quotes a value for a connection string only when it needs it (spaces, quotes, empty). */
export function quoteConnValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * libpq host/port lists: comma-separated, matched by position. One port applies to
 * every host; otherwise the counts must match. Empty elements take the defaults
 * (libpq does the same). A host may be a DNS name, an IP address or a socket directory.
 */
export function parseHostList(host: string | undefined, port: string | undefined): HostPort[] {
  const hosts = host === undefined ? [''] : host.split(',').map((h) => h.trim());
  const ports = port === undefined ? [''] : port.split(',').map((p) => p.trim());
  if (ports.length !== 1 && ports.length !== hosts.length) {
    throw new ConnStringError(
      `port lists ${ports.length} ports for ${hosts.length} hosts; give one port for all hosts or one per host`,
    );
  }
  return hosts.map((h, idx) => ({
    host: h === '' ? DEFAULT_HOST : h,
    port: parsePort(ports.length === 1 ? ports[0]! : ports[idx]!),
  }));
}

function parsePort(raw: string): number {
  if (raw === '') return DEFAULT_PORT;
  if (!/^\d+$/.test(raw)) throw new ConnStringError(`invalid port "${raw}" (expected 1..65535)`);
  const port = Number(raw);
  if (port < 1 || port > 65535) throw new ConnStringError(`port ${raw} out of range 1..65535`);
  return port;
}
