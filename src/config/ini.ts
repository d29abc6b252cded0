// PgBouncer-flavoured INI reader: sections of ordered `key = value` entries, with
// `%include`. Our own (not an npm parser) so every error names file, line and reason.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './types.js';

export interface IniEntry {
  /** Lower-cased, except in sections whose keys are names (see preserveKeyCase). */
  readonly key: string;
  /** Verbatim text after `=`, trimmed. Not unquoted: `[databases]` values are connstrings. */
  readonly value: string;
  /** File the entry was written in (differs from the top file for `%include`d entries). */
  readonly file: string;
  readonly line: number;
}

export interface IniSection {
  /** Lower-cased section name. */
  readonly name: string;
  /** Where the section header first appeared. */
  readonly file: string;
  readonly line: number;
  /** Entries in file order; a repeated `[name]` header appends to the same section. */
  readonly entries: IniEntry[];
}

export interface IniOptions {
  /** Reads an `%include`d file; defaults to fs.readFileSync(path, 'utf8'). */
  readonly readFile?: (path: string) => string;
  /** Sections whose keys keep their case (database and user names are case-sensitive). */
  readonly preserveKeyCase?: (section: string) => boolean;
}

/** PgBouncer stops at 10 nested includes; so do we (also catches include cycles early). */
const MAX_INCLUDE_DEPTH = 10;

const NAME_SECTIONS = new Set(['databases', 'users', 'peers']);

interface ParseState {
  readonly sections: IniSection[];
  readonly byName: Map<string, IniSection>;
  current: IniSection | null;
  readonly readFile: (path: string) => string;
  readonly preserveKeyCase: (section: string) => boolean;
  readonly stack: string[];
}

/** Parses INI text as if read from `file` (used for error messages and include paths). */
export function parseIni(text: string, file: string, options: IniOptions = {}): IniSection[] {
  const state: ParseState = {
    sections: [],
    byName: new Map(),
    current: null,
    readFile: options.readFile ?? ((p) => readFileSync(p, 'utf8')),
    preserveKeyCase: options.preserveKeyCase ?? ((s) => NAME_SECTIONS.has(s)),
    stack: [resolve(file)],
  };
  parseInto(state, text, file);
  return state.sections;
}

/** Reads and parses `file`; an unreadable file is a ConfigError with line 0. */
export function readIniFile(file: string, options: IniOptions = {}): IniSection[] {
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new ConfigError(file, 0, `cannot read config file: ${errorText(err)}`);
  }
  return parseIni(text, file, { ...options, readFile });
}

// Section state is shared across includes, as in PgBouncer: an included file continues
// the including file's current section, and a header inside it stays in effect after.
function parseInto(state: ParseState, text: string, file: string): void {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;

    if (line === '%include' || /^%include\s/.test(line)) {
      includeFile(state, line.slice('%include'.length).trim(), file, lineNo);
      continue;
    }

    if (line.startsWith('[')) {
      startSection(state, line, file, lineNo);
      continue;
    }

    if (state.current === null) {
      throw new ConfigError(file, lineNo, 'key = value line before any [section] header');
    }
    const { key, value } = splitEntry(line, file, lineNo);
    const keepCase = state.preserveKeyCase(state.current.name);
    state.current.entries.push({ key: keepCase ? key : key.toLowerCase(), value, file, line: lineNo });
  }
}

function includeFile(state: ParseState, target: string, file: string, lineNo: number): void {
  if (target === '') throw new ConfigError(file, lineNo, '%include needs a file path');
  // Relative to the including file's directory (PgBouncer uses the working directory,
  // which makes a config's meaning depend on where the daemon was started).
  const path = resolve(dirname(resolve(file)), target);
  if (state.stack.includes(path)) {
    throw new ConfigError(file, lineNo, `%include cycle: ${path} is already being read`);
  }
  if (state.stack.length > MAX_INCLUDE_DEPTH) {
    throw new ConfigError(file, lineNo, `%include nested more than ${MAX_INCLUDE_DEPTH} levels deep`);
  }
  let text: string;
  try {
    text = state.readFile(path);
  } catch (err) {
    throw new ConfigError(file, lineNo, `cannot read %include file ${path}: ${errorText(err)}`);
  }
  state.stack.push(path);
  try {
    parseInto(state, text, path);
  } finally {
    state.stack.pop();
  }
}

function startSection(state: ParseState, line: string, file: string, lineNo: number): void {
  const close = line.indexOf(']');
  if (close < 0) throw new ConfigError(file, lineNo, 'unterminated section header (missing "]")');
  const name = line.slice(1, close).trim().toLowerCase();
  if (name === '') throw new ConfigError(file, lineNo, 'empty section name "[]"');
  const rest = line.slice(close + 1).trim();
  if (rest !== '' && !rest.startsWith(';') && !rest.startsWith('#')) {
    throw new ConfigError(file, lineNo, `unexpected text after section header: ${JSON.stringify(rest)}`);
  }
  let section = state.byName.get(name);
  if (section === undefined) {
    section = { name, file, line: lineNo, entries: [] };
    state.byName.set(name, section);
    state.sections.push(section);
  }
  state.current = section;
}

// Keys may be quoted so database names can hold any character: 'single quotes' (what
// PgBouncer's parser reads) or "double quotes" with "" for a quote (what its docs say).
function splitEntry(line: string, file: string, lineNo: number): { key: string; value: string } {
  let key: string;
  let rest: string;
  const q = line[0];
  if (q === "'" || q === '"') {
    let i = 1;
    key = '';
    for (;;) {
      if (i >= line.length) throw new ConfigError(file, lineNo, `unterminated quoted key (missing closing ${q})`);
      const c = line[i]!;
      if (c === q) {
        if (q === '"' && line[i + 1] === '"') {
          key += '"';
          i += 2;
          continue;
        }
        break;
      }
      key += c;
      i++;
    }
    if (key === '') throw new ConfigError(file, lineNo, 'empty quoted key');
    rest = line.slice(i + 1).trimStart();
    if (!rest.startsWith('=')) throw new ConfigError(file, lineNo, `expected "=" after key ${q}${key}${q}`);
  } else {
    const eq = line.indexOf('=');
    if (eq < 0) throw new ConfigError(file, lineNo, `expected "key = value", found no "=" in ${JSON.stringify(line)}`);
    key = line.slice(0, eq).trim();
    if (key === '') throw new ConfigError(file, lineNo, 'missing key before "="');
    if (/\s/.test(key)) {
      throw new ConfigError(file, lineNo, `key ${JSON.stringify(key)} contains whitespace (quote it, e.g. "my db" = ...)`);
    }
    rest = line.slice(eq);
  }
  return { key, value: rest.slice(1).trim() };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
