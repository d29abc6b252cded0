// The `options` startup parameter, read the way PostgreSQL reads it (pg_split_opts and the
// switches of process_postgres_switches): words split at unescaped whitespace, a backslash
// escaping the next character, and settings given as `-c name=value`, `-cname=value` or
// `--name=value` (a '-' in the name means '_'). Other switches of the postgres command line have
// no meaning for a pooled session and are refused by name.

import { ErrorCode, PgRelayError } from '../errors.js';

/** One setting from `options`: the name as PostgreSQL would look it up (lower case, '_' for '-'). */
export interface StartupSetting {
  readonly name: string;
  readonly value: string;
}

/** Splits `options` into words as pg_split_opts does. */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = options.length;
  while (i < n) {
    while (i < n && isSpace(options[i]!)) i++;
    if (i >= n) break;
    let word = '';
    let escaped = false;
    for (; i < n; i++) {
      const ch = options[i]!;
      if (isSpace(ch) && !escaped) break;
      if (!escaped && ch === '\\') {
        escaped = true;
      } else {
        escaped = false;
        word += ch;
      }
    }
    words.push(word);
  }
  return words;
}

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/**
 * A configuration parameter name PostgreSQL could accept: letters, digits, '_' and '$', in one
 * part or two joined by '.' (a custom setting such as myapp.tenant). Checked because pgrelay
 * writes the name into its own RESET statements.
 */
const NAME = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)*$/;

export function validSettingName(name: string): boolean {
  return NAME.test(name);
}

/**
 * The settings in `options`. Throws a PgRelayError naming the part pgrelay cannot honour: a
 * switch other than -c and --, a setting without '=', a name that is not one.
 */
export function parseOptions(options: string): StartupSetting[] {
  const words = splitOptions(options);
  const out: StartupSetting[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let arg: string;
    let flag: string;
    if (word.startsWith('--')) {
      flag = '--';
      arg = word.slice(2);
    } else if (word.startsWith('-c')) {
      flag = '-c';
      arg = word.length > 2 ? word.slice(2) : (words[++i] ?? '');
    } else {
      throw new PgRelayError(
        ErrorCode.UnsupportedStartupParameter,
        `unsupported switch in startup parameter "options": ${word.startsWith('-') ? word.slice(0, 2) : JSON.stringify(word)} (pgrelay accepts only -c name=value and --name=value)`,
      );
    }
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, `${flag === '--' ? `--${arg}` : `-c ${arg}`} requires a value (startup parameter "options")`);
    }
    const name = arg.slice(0, eq).replace(/-/g, '_').toLowerCase();
    if (!validSettingName(name)) {
      throw new PgRelayError(ErrorCode.UnsupportedStartupParameter, `invalid configuration parameter name "${arg.slice(0, eq)}" in startup parameter "options"`);
    }
    out.push({ name, value: arg.slice(eq + 1) });
  }
  return out;
}
