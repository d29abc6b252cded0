// auth_type = hba: pg_hba.conf rules in the subset PgBouncer supports. Connection types local,
// host, hostssl, hostnossl; databases (all, sameuser, replication, names, @file); users (all,
// names, @file); addresses (all, CIDR, address + mask); methods trust, reject, md5,
// scram-sha-256, password and cert. The first line that matches decides; no match is a refusal.
//
// Fail closed: anything outside the subset (an unknown method, an option such as map= or
// clientcert=, a host name, +group) refuses the whole file with file:line:reason, where
// PgBouncer would skip the line and PostgreSQL would refuse to start. A bad file at reload keeps
// the rules already running (the app builds the new rules before replacing anything).

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../config/types.js';

export const HbaConnType = { local: 'local', host: 'host', hostssl: 'hostssl', hostnossl: 'hostnossl' } as const;
export type HbaConnType = (typeof HbaConnType)[keyof typeof HbaConnType];

export const HbaMethod = { trust: 'trust', reject: 'reject', md5: 'md5', scram: 'scram-sha-256', password: 'password', cert: 'cert' } as const;
export type HbaMethod = (typeof HbaMethod)[keyof typeof HbaMethod];

const METHODS: readonly string[] = Object.values(HbaMethod);
/** PostgreSQL methods outside PgBouncer's subset, named so the error says "not supported", not "unknown". */
const OTHER_PG_METHODS = new Set(['peer', 'ident', 'ldap', 'pam', 'gss', 'sspi', 'radius', 'bsd', 'oauth']);

interface NameSet {
  all: boolean;
  /** Database field only: the database named like the user. */
  sameuser: boolean;
  /** Database field only: physical replication connections (which pgrelay refuses anyway). */
  replication: boolean;
  readonly names: Set<string>;
}

type Address = { readonly all: true } | { readonly all: false; readonly family: 4 | 6; readonly bytes: Buffer; readonly mask: Buffer };

export interface HbaRule {
  readonly file: string;
  readonly line: number;
  readonly type: HbaConnType;
  readonly databases: NameSet;
  readonly users: NameSet;
  /** null for local lines. */
  readonly address: Address | null;
  readonly method: HbaMethod;
}

/** What a login knows about its connection when the rules are checked. */
export interface HbaConnection {
  /** A Unix-socket connection (only `local` lines apply). */
  readonly unix: boolean;
  readonly tls: boolean;
  /** The client's IP address (as node reports it; IPv4-mapped IPv6 counts as IPv4). */
  readonly address: string;
  readonly database: string;
  readonly user: string;
}

export class HbaRules {
  constructor(
    readonly file: string,
    readonly rules: readonly HbaRule[],
  ) {}

  /** The first rule that matches, as PostgreSQL reads pg_hba.conf; null = no line allows it. */
  match(conn: HbaConnection): HbaRule | null {
    const addr = conn.unix ? null : addressBytes(conn.address);
    for (const r of this.rules) {
      if (conn.unix !== (r.type === HbaConnType.local)) continue;
      if (r.type === HbaConnType.hostssl && !conn.tls) continue;
      if (r.type === HbaConnType.hostnossl && conn.tls) continue;
      if (r.address !== null && !addressMatches(r.address, addr)) continue;
      // pgrelay takes no replication connections: `replication` never matches, as in PostgreSQL
      // (where it matches only those).
      if (!(r.databases.all || (r.databases.sameuser && conn.database === conn.user) || r.databases.names.has(conn.database))) continue;
      if (!(r.users.all || r.users.names.has(conn.user))) continue;
      return r;
    }
    return null;
  }

  /** Whether any rule uses `method` (the cert method needs client certificates). */
  uses(method: HbaMethod): HbaRule | undefined {
    return this.rules.find((r) => r.method === method);
  }
}

/** Reads and parses auth_hba_file; every error is a ConfigError at the file and line that caused it. */
export function loadHbaFile(path: string): HbaRules {
  return parseHba(readText(path, null), path);
}

/** Parses hba text as if read from `file` (which anchors @file includes). */
export function parseHba(text: string, file: string, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): HbaRules {
  const rules: HbaRule[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const tokens = tokenize(lines[i]!.replace(/\r$/, ''), file, i + 1);
    if (tokens.length === 0) continue;
    rules.push(parseLine(tokens, file, i + 1, readFile));
  }
  return new HbaRules(file, rules);
}

// ---- tokens --------------------------------------------------------------------------------

interface Token {
  readonly text: string;
  /** A double-quoted token: never a keyword ("all" quoted is a name). */
  readonly quoted: boolean;
  /** A comma follows: the field goes on with the next token. */
  comma: boolean;
}

/** PgBouncer's tokenizer: blanks separate, `#` starts a comment, `"..."` quotes (`""` is a quote), `,` joins. */
function tokenize(line: string, file: string, lineNo: number): Token[] {
  const out: Token[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && /\s/.test(line[pos]!)) pos++;
    if (pos >= line.length || line[pos] === '#') return out;
    if (line[pos] === ',') {
      if (out.length === 0 || out[out.length - 1]!.comma) throw new ConfigError(file, lineNo, 'unexpected comma');
      out[out.length - 1]!.comma = true;
      pos++;
      continue;
    }
    if (line[pos] === '"') {
      let text = '';
      let p = pos + 1;
      for (;;) {
        const q = line.indexOf('"', p);
        if (q < 0) throw new ConfigError(file, lineNo, 'unterminated quoted string');
        text += line.slice(p, q);
        if (line[q + 1] === '"') {
          text += '"';
          p = q + 2;
          continue;
        }
        pos = q + 1;
        break;
      }
      out.push({ text, quoted: true, comma: false });
      continue;
    }
    let end = pos;
    while (end < line.length && !/[\s,#"]/.test(line[end]!)) end++;
    out.push({ text: line.slice(pos, end), quoted: false, comma: false });
    pos = end;
  }
}

/** Splits tokens into fields: a field is a token and every token joined to it by commas. */
function fields(tokens: readonly Token[], file: string, lineNo: number): Token[][] {
  const out: Token[][] = [];
  let cur: Token[] = [];
  for (const t of tokens) {
    cur.push(t);
    if (!t.comma) {
      out.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) throw new ConfigError(file, lineNo, 'line ends with a comma');
  return out;
}

// ---- lines ---------------------------------------------------------------------------------

function parseLine(tokens: readonly Token[], file: string, lineNo: number, readFile: (path: string) => string): HbaRule {
  const fail = (reason: string): never => {
    throw new ConfigError(file, lineNo, reason);
  };
  const f = fields(tokens, file, lineNo);
  const single = (i: number, what: string): Token => {
    const field = f[i];
    if (field === undefined) return fail(`missing ${what}`);
    if (field.length > 1) return fail(`${what} takes one value, not a list`);
    return field[0]!;
  };
  const typeTok = single(0, 'connection type');
  const type = Object.values(HbaConnType).find((t) => t === typeTok.text && !typeTok.quoted);
  if (type === undefined) {
    const hint = /^host(gss|nogss)enc$/.test(typeTok.text) ? ' (GSSAPI encryption is not supported)' : '';
    fail(`unknown connection type "${typeTok.text}" (use local, host, hostssl or hostnossl)${hint}`);
  }
  if (f[1] === undefined) fail('missing database field');
  if (f[2] === undefined) fail('missing user field');
  const databases = parseNames(f[1]!, true, file, lineNo, readFile, 0);
  const users = parseNames(f[2]!, false, file, lineNo, readFile, 0);
  let next = 3;
  let address: Address | null = null;
  if (type !== HbaConnType.local) {
    const tok = single(next++, 'address');
    const parsed = parseAddress(tok, f[next]?.[0], fail);
    address = parsed.address;
    if (parsed.usedMask) next++;
  }
  const methodTok = single(next++, 'authentication method');
  const method = METHODS.find((m) => m === methodTok.text && !methodTok.quoted) as HbaMethod | undefined;
  if (method === undefined) {
    if (OTHER_PG_METHODS.has(methodTok.text)) fail(`authentication method "${methodTok.text}" is not supported by pgrelay (use trust, reject, md5, scram-sha-256, password or cert)`);
    fail(`unknown authentication method "${methodTok.text}" (use trust, reject, md5, scram-sha-256, password or cert)`);
  }
  if (f.length > next) {
    const extra = f[next]![0]!.text;
    fail(`options after the method are not supported (${extra}${/^map=/.test(extra) ? ': user name maps are not supported' : ''}); pgrelay refuses the file rather than ignore them`);
  }
  if (method === HbaMethod.cert && type !== HbaConnType.hostssl) fail('the cert method needs a hostssl line (a certificate exists only on a TLS connection)');
  return { file, line: lineNo, type: type!, databases, users, address, method: method! };
}

function parseNames(field: readonly Token[], isDatabase: boolean, file: string, lineNo: number, readFile: (path: string) => string, depth: number): NameSet {
  const set: NameSet = { all: false, sameuser: false, replication: false, names: new Set() };
  addNames(set, field, isDatabase, file, lineNo, readFile, depth);
  return set;
}

function addNames(set: NameSet, tokens: readonly Token[], isDatabase: boolean, file: string, lineNo: number, readFile: (path: string) => string, depth: number): void {
  const fail = (reason: string): never => {
    throw new ConfigError(file, lineNo, reason);
  };
  for (const t of tokens) {
    if (!t.quoted) {
      if (t.text === 'all') {
        set.all = true;
        continue;
      }
      if (isDatabase && t.text === 'sameuser') {
        set.sameuser = true;
        continue;
      }
      if (isDatabase && t.text === 'replication') {
        set.replication = true;
        continue;
      }
      if (isDatabase && (t.text === 'samerole' || t.text === 'samegroup')) fail(`"${t.text}" is not supported by pgrelay`);
      if (!isDatabase && t.text.startsWith('+')) fail(`group membership (${t.text}) is not supported by pgrelay`);
      if (t.text.startsWith('@')) {
        if (depth >= 10) fail('@file includes nest more than 10 deep');
        const path = isAbsolute(t.text.slice(1)) ? t.text.slice(1) : resolve(dirname(file), t.text.slice(1));
        const text = readText(path, { file, line: lineNo }, readFile);
        const lines = text.split('\n');
        for (let i = 0; i < lines.length; i++) {
          const inner = tokenize(lines[i]!.replace(/\r$/, ''), path, i + 1);
          addNames(set, inner, isDatabase, path, i + 1, readFile, depth + 1);
        }
        continue;
      }
      if (t.text === '') fail('empty name');
    }
    set.names.add(t.text);
  }
}

function parseAddress(tok: Token, maskTok: Token | undefined, fail: (reason: string) => never): { address: Address; usedMask: boolean } {
  if (!tok.quoted && tok.text === 'all') return { address: { all: true }, usedMask: false };
  if (tok.text === 'samehost' || tok.text === 'samenet') fail(`"${tok.text}" is not supported by pgrelay; write the address range`);
  const [addr, bits] = tok.text.split('/', 2) as [string, string | undefined];
  const family = isIP(addr);
  if (family === 0) fail(`invalid address "${tok.text}" (use all, an IP address with /bits, or an address and a mask; host names are not supported)`);
  const bytes = addressBytes(addr)!;
  let mask: Buffer;
  let usedMask = false;
  if (bits !== undefined) {
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(bits) || Number(bits) > max) fail(`invalid mask length "/${bits}" (0..${max})`);
    mask = prefixMask(Number(bits), bytes.length);
  } else {
    const m = maskTok === undefined ? null : addressBytes(maskTok.text);
    if (m === null) fail(`address "${tok.text}" needs a /bits suffix or a mask field`);
    if (m!.length !== bytes.length) fail(`mask "${maskTok!.text}" is not of the same family as ${tok.text}`);
    mask = m!;
    usedMask = true;
  }
  // As PostgreSQL: bits set outside the mask would make the line match nothing it seems to.
  for (let i = 0; i < bytes.length; i++) bytes[i]! &= mask[i]!;
  return { address: { all: false, family: family as 4 | 6, bytes, mask }, usedMask };
}

function prefixMask(bits: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    const b = Math.min(8, Math.max(0, bits - i * 8));
    out[i] = b === 0 ? 0 : (0xff << (8 - b)) & 0xff;
  }
  return out;
}

/** IPv4 as 4 bytes, IPv6 as 16; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its IPv4 bytes. */
function addressBytes(text: string): Buffer | null {
  const v = text.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(v);
  if (mapped !== null) return addressBytes(mapped[1]!);
  const family = isIP(v);
  if (family === 4) return Buffer.from(v.split('.').map(Number));
  if (family !== 6) return null;
  const [head, tail] = v.includes('::') ? (v.split('::', 2) as [string, string]) : [v, null];
  const parse = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const b = part.split('.').map(Number);
        out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else {
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const h = parse(head);
  const tl = tail === null ? [] : parse(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - tl.length).fill(0), ...tl];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

function addressMatches(rule: Address, addr: Buffer | null): boolean {
  if (rule.all) return true;
  if (addr === null || addr.length !== rule.bytes.length) return false;
  for (let i = 0; i < addr.length; i++) if ((addr[i]! & rule.mask[i]!) !== rule.bytes[i]) return false;
  return true;
}

function readText(path: string, from: { file: string; line: number } | null, readFile?: (path: string) => string): string {
  try {
    return readFile !== undefined ? readFile(path) : readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    if (from === null) throw new ConfigError(path, 0, `cannot read auth_hba_file: ${code}`);
    throw new ConfigError(from.file, from.line, `cannot read included file ${path}: ${code}`);
  }
}
