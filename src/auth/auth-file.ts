// Parses PgBouncer's auth_file: `"username" "secret"` per line. Only the text
// format lives here; what a secret means is secret.ts's job.

import { readFileSync } from 'node:fs';
import { parseSecret } from './secret.js';

/**
 * Parse auth_file text into username → secret (later lines win, as in PgBouncer).
 *
 * Format: each non-blank line holds two double-quoted fields separated by
 * whitespace; `""` inside a field is a literal `"`; anything after the second
 * field is ignored; lines whose first non-blank character is `;` or `#` are
 * comments. Unlike PgBouncer, a field may not span lines, and a broken line is
 * an error rather than silently ending the file.
 *
 * Errors read `file:line: reason` and never contain the secret, because they
 * end up in logs.
 */
export function parseAuthFile(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  // A UTF-8 BOM from a Windows editor must not become part of the first username.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = body.split('\n');

  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const fail = (reason: string): Error => new Error(`${file}:${i + 1}: ${reason}`);

    let pos = skipBlanks(line, 0);
    if (pos === line.length) continue;
    const first = line[pos];
    if (first === ';' || first === '#') continue;
    if (first !== '"') throw fail('expected a double-quoted username at the start of the line');

    const user = readQuoted(line, pos);
    if (user === null) throw fail('unterminated quoted username');
    if (user.value === '') throw fail('empty username');

    pos = skipBlanks(line, user.end);
    if (pos === line.length) throw fail(`missing secret for user "${user.value}"`);
    if (pos === user.end || line[pos] !== '"') {
      throw fail(`expected whitespace and a double-quoted secret after username "${user.value}"`);
    }

    const secret = readQuoted(line, pos);
    if (secret === null) throw fail(`unterminated quoted secret for user "${user.value}"`);
    // Extra fields after the secret are ignored (PgBouncer skips to end of line).

    users.set(user.value, secret.value);
  }
  return users;
}

/** Read and parse an auth_file; I/O errors are rethrown naming the file. */
export function loadAuthFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read auth_file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseAuthFile(text, path);
}

function skipBlanks(line: string, pos: number): number {
  while (pos < line.length && (line[pos] === ' ' || line[pos] === '\t')) pos++;
  return pos;
}

/**
 * Read a `"..."` field starting at the opening quote `line[start]`. Returns the
 * unescaped value and the index just past the closing quote, or null if the
 * closing quote is missing.
 */
function readQuoted(line: string, start: number): { value: string; end: number } | null {
  let value = '';
  let pos = start + 1;
  for (;;) {
    const close = line.indexOf('"', pos);
    if (close === -1) return null;
    value += line.slice(pos, close);
    if (line[close + 1] === '"') {
      value += '"';
      pos = close + 2;
      continue;
    }
    return { value, end: close + 1 };
  }
}

/** Where loadCheckedAuthFile() reports entries that load but can never be used (a pino logger fits). */
export interface AuthFileWarnings {
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Loads an auth_file and checks every secret parses, so a broken verifier fails at startup. An
 * empty secret loads (auth_type trust ignores secrets) but is reported, naming the user: under
 * plain, md5 and scram-sha-256 it never authenticates, which the operator should know.
 */
export function loadCheckedAuthFile(path: string, warnings?: AuthFileWarnings): Map<string, string> {
  const secrets = loadAuthFile(path);
  for (const [user, secret] of secrets) {
    if (secret === '') {
      warnings?.warn({ file: path, user }, `auth_file: user "${user}" has an empty secret and will never authenticate (except with auth_type trust)`);
      continue;
    }
    try {
      parseSecret(secret);
    } catch (err) {
      throw new Error(`${path}: secret of user "${user}": ${(err as Error).message}`);
    }
  }
  return secrets;
}
