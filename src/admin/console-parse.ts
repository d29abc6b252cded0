// Lexing for the admin console, with PgBouncer's rules: a Query may hold several statements
// separated by `;`, words are case-insensitive, a name may be "double-quoted" ("" is a quote
// inside it), and `SET key = value` has its own shape. Pure: strings in, statements out.

import { ErrorCode, PgRelayError } from '../errors.js';

/** An error the console reports to its client as an ErrorResponse (then ReadyForQuery): 08P01, as PgBouncer. */
export class ConsoleError extends PgRelayError {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(ErrorCode.AdminCommandFailed, message);
    this.name = 'ConsoleError';
  }
}

export type Statement =
  /** VERB [arg]; `verb` is lower-cased, `arg` keeps its case (PgBouncer compares names as typed). */
  | { readonly kind: 'command'; readonly text: string; readonly verb: string; readonly arg: string | null }
  | { readonly kind: 'set'; readonly text: string; readonly key: string; readonly value: string };

/** PgBouncer's reply to anything it cannot parse; `text` is the statement as sent. */
export function syntaxError(text: string): ConsoleError {
  return new ConsoleError(`invalid command '${text}', use SHOW HELP;`);
}

/**
 * Splits a query on `;` outside quotes. Returns the trimmed, non-empty statements: an empty
 * result means an empty query (answered with EmptyQueryResponse). An unterminated quote runs
 * to the end of the text and is reported when that statement is parsed.
 */
export function splitStatements(query: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quote: string | null = null;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (quote !== null) {
      // A doubled quote inside a quoted run is an escaped quote: it toggles twice, net no change.
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ';') {
      out.push(query.slice(start, i));
      start = i + 1;
    }
  }
  out.push(query.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

type Token =
  | { readonly kind: 'word'; readonly value: string }
  | { readonly kind: 'quoted'; readonly value: string }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'eq' };

const SPACE = /\s/;

/** Reads a quoted run starting at `start` (the opening quote); returns [value, next] or null. */
function readQuoted(text: string, start: number, q: string): [string, number] | null {
  let value = '';
  let i = start + 1;
  for (;;) {
    const end = text.indexOf(q, i);
    if (end < 0) return null;
    value += text.slice(i, end);
    if (text[end + 1] === q) {
      value += q;
      i = end + 2;
    } else {
      return [value, end + 1];
    }
  }
}

function tokenize(text: string): Token[] | null {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (SPACE.test(c)) {
      i++;
    } else if (c === '"' || c === "'") {
      const r = readQuoted(text, i, c);
      if (r === null) return null;
      tokens.push({ kind: c === '"' ? 'quoted' : 'string', value: r[0] });
      i = r[1];
    } else if (c === '=') {
      tokens.push({ kind: 'eq' });
      i++;
    } else {
      let j = i;
      while (j < text.length && !SPACE.test(text[j]!) && !'"\'='.includes(text[j]!)) j++;
      tokens.push({ kind: 'word', value: text.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

/** A word or a double-quoted name; an empty quoted name is refused rather than read as "all". */
function nameOf(t: Token | undefined): string | null {
  if (t === undefined) return null;
  if (t.kind === 'word') return t.value;
  if (t.kind === 'quoted' && t.value.length > 0) return t.value;
  return null;
}

/** Parses one statement from splitStatements(); throws the PgBouncer syntax error. */
export function parseStatement(text: string): Statement {
  const tokens = tokenize(text);
  if (tokens === null || tokens.length === 0) throw syntaxError(text);
  const first = tokens[0]!;
  if (first.kind === 'word' && first.value.toLowerCase() === 'set') {
    // SET key = value | SET key TO value; the value may be a word, "name" or 'string'.
    const [, k, op, v] = tokens;
    const key = nameOf(k);
    const isOp = op !== undefined && (op.kind === 'eq' || (op.kind === 'word' && op.value.toLowerCase() === 'to'));
    if (tokens.length !== 4 || key === null || !isOp || v === undefined || v.kind === 'eq') throw syntaxError(text);
    return { kind: 'set', text, key, value: v.value };
  }
  const verb = nameOf(first);
  if (verb === null || tokens.length > 2) throw syntaxError(text);
  let arg: string | null = null;
  if (tokens.length === 2) {
    arg = nameOf(tokens[1]);
    if (arg === null) throw syntaxError(text);
  }
  return { kind: 'command', text, verb: verb.toLowerCase(), arg };
}
