// Reads the HTTP admin verbs' arguments from the query string and/or the body (JSON or form) and
// validates them by hand, so every 400 names its field (curl in a Patroni hook is the usual caller).

import { badRequest } from './http-errors.js';

export interface PauseInput {
  database?: string;
  timeoutMs?: number;
  node?: string;
}

export interface DatabaseInput {
  database?: string;
}

// The largest delay setTimeout accepts; a longer drain deadline would fire at once.
const MAX_TIMEOUT_MS = 2_147_483_647;

type Fields = Record<string, unknown>;

export function pauseInput(query: unknown, body: unknown): PauseInput {
  const f = fields(query, body, ['database', 'timeout_ms', 'node']);
  const out: PauseInput = {};
  const database = nonEmptyString(f, 'database');
  const timeoutMs = nonNegativeInteger(f, 'timeout_ms', MAX_TIMEOUT_MS);
  const node = hostPort(f, 'node');
  if (database !== undefined) out.database = database;
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  if (node !== undefined) out.node = node;
  return out;
}

export interface HintInput {
  node: string;
  role?: string;
}

export function hintInput(query: unknown, body: unknown): HintInput {
  const f = fields(query, body, ['node', 'role']);
  const node = hostPort(f, 'node');
  if (node === undefined) throw badRequest('node', '"node" (host:port of the PostgreSQL node that may be primary) is required');
  const role = nonEmptyString(f, 'role');
  return role === undefined ? { node } : { node, role };
}

export function databaseInput(query: unknown, body: unknown): DatabaseInput {
  const database = nonEmptyString(fields(query, body, ['database']), 'database');
  return database === undefined ? {} : { database };
}

/** Query string and body merged; unknown fields and fields given twice are refused. */
function fields(query: unknown, body: unknown, allowed: readonly string[]): Fields {
  const out: Fields = {};
  const q = (query ?? {}) as Fields;
  // No body, or an empty one, is the same as `{}`: `curl -X POST '...?database=app'` sends none.
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw badRequest('body', 'the body must be a JSON object');
  }
  const b = (body ?? {}) as Fields;
  for (const [source, values] of [['query string', q], ['body', b]] as const) {
    for (const key of Object.keys(values)) {
      if (!allowed.includes(key)) throw badRequest(key, `unknown field "${key}" in the ${source}; expected ${allowed.join(', ')}`);
      if (key in out) throw badRequest(key, `"${key}" is given in both the query string and the body`);
      const value = values[key];
      if (Array.isArray(value) && source === 'query string') throw badRequest(key, `"${key}" is given more than once`);
      // JSON null means "not given", as in a generated `{"database": null}` for every database.
      if (value !== null) out[key] = value;
    }
  }
  return out;
}

function nonEmptyString(f: Fields, key: string): string | undefined {
  const v = f[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badRequest(key, `"${key}" must be a string`);
  if (v === '') throw badRequest(key, `"${key}" must not be empty`);
  return v;
}

/** A JSON integer, or its decimal digits as text (query strings and forms carry only text). */
function nonNegativeInteger(f: Fields, key: string, max: number): number | undefined {
  const v = f[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) throw badRequest(key, `"${key}" must be a non-negative integer (milliseconds)`);
  if (n > max) throw badRequest(key, `"${key}" must be at most ${max}`);
  return n;
}

/** "host:port" or "[ipv6]:port", the PostgreSQL node a Patroni hook is about to stop. */
function hostPort(f: Fields, key: string): string | undefined {
  const v = nonEmptyString(f, key);
  if (v === undefined) return undefined;
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(v);
  const port = m === null ? 0 : Number(m[1]);
  if (port < 1 || port > 65535) throw badRequest(key, `"${key}" must be "host:port" (e.g. "10.0.0.5:5432")`);
  return v;
}
