// Reading and rewriting the frontend messages that name a prepared statement (Parse, Bind,
// Describe, Close), and the few backend messages pgrelay answers with itself when it tracks
// statements (ParseComplete, CloseComplete, the errors PostgreSQL gives for a bad name). Pure
// byte work: the proxy decides what to send, this builds it ("Message Formats" page).

import { Frontend } from './message-types.js';
import { SqlState } from './sqlstate.js';

/** Frontend type bytes, re-exported for the rewriting code. */
const PARSE = Frontend.Parse;
const BIND = Frontend.Bind;
const DESCRIBE = Frontend.Describe;
const CLOSE = Frontend.Close;

/** 'S' (statement) and 'P' (portal): the first body byte of Describe and Close. */
export const TargetKind = { Statement: 0x53, Portal: 0x50 } as const;

export const ParseComplete = Buffer.from([0x31, 0, 0, 0, 4]);
export const CloseComplete = Buffer.from([0x33, 0, 0, 0, 4]);

/** The index of the NUL that ends the C string at `pos`, or -1 when it is not before `end`. */
export function cstringEnd(buf: Buffer, pos: number, end: number): number {
  const nul = buf.indexOf(0, pos);
  return nul < 0 || nul >= end ? -1 : nul;
}

/**
 * A Parse: buf[start] is 'P'. The statement name is buf[start + 5, nameEnd); the rest of the
 * body (query text, parameter count and types) is buf[nameEnd + 1, end). Null when malformed.
 */
export function readParse(buf: Buffer, start: number, end: number): { nameEnd: number } | null {
  const nameEnd = cstringEnd(buf, start + 5, end);
  if (nameEnd < 0) return null;
  // The query text must be terminated and the parameter count present.
  const queryEnd = cstringEnd(buf, nameEnd + 1, end);
  if (queryEnd < 0 || queryEnd + 3 > end) return null;
  return { nameEnd };
}

/** A Bind: where its portal name ends and its statement name starts and ends (NUL index). Null when malformed. */
export function readBind(buf: Buffer, start: number, end: number): { portalEnd: number; nameEnd: number } | null {
  const portalEnd = cstringEnd(buf, start + 5, end);
  if (portalEnd < 0) return null;
  const nameEnd = cstringEnd(buf, portalEnd + 1, end);
  if (nameEnd < 0) return null;
  return { portalEnd, nameEnd };
}

/** A Describe or Close: its target kind ('S' or 'P') and where the name ends. Null when malformed. */
export function readTarget(buf: Buffer, start: number, end: number): { kind: number; nameEnd: number } | null {
  if (start + 6 > end) return null;
  const nameEnd = cstringEnd(buf, start + 6, end);
  if (nameEnd < 0) return null;
  return { kind: buf[start + 5]!, nameEnd };
}

function header(type: number, bodyLength: number): Buffer {
  const out = Buffer.allocUnsafe(5 + bodyLength);
  out[0] = type;
  out.writeInt32BE(4 + bodyLength, 1);
  return out;
}

/** Parse of `nameZ` (the name and its NUL) with `spec`: query text, NUL, parameter count and types. */
export function parseMessage(nameZ: Buffer, spec: Buffer): Buffer {
  const out = header(PARSE, nameZ.length + spec.length);
  nameZ.copy(out, 5);
  spec.copy(out, 5 + nameZ.length);
  return out;
}

/**
 * The start of a Bind that names `nameZ` instead: type, length, the portal name as sent and the
 * new name. The rest of the original Bind (buf[nameEnd + 1, end)) follows it unchanged.
 */
export function bindPrefix(buf: Buffer, start: number, end: number, portalEnd: number, nameEnd: number, nameZ: Buffer): Buffer {
  const portalZ = portalEnd + 1 - (start + 5);
  const rest = end - (nameEnd + 1);
  const out = Buffer.allocUnsafe(5 + portalZ + nameZ.length);
  out[0] = BIND;
  out.writeInt32BE(4 + portalZ + nameZ.length + rest, 1);
  buf.copy(out, 5, start + 5, portalEnd + 1);
  nameZ.copy(out, 5 + portalZ);
  return out;
}

/** Query with `text`. */
export function queryMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const out = header(Frontend.Query, body.length);
  body.copy(out, 5);
  return out;
}

/** Parse of the unnamed statement with `text` and no parameter types. */
export function unnamedParse(text: string): Buffer {
  return parseMessage(Buffer.from([0]), Buffer.from(`${text}\0\0\0`, 'utf8'));
}

/** Whether the SQL at buf[pos, end) starts with DEALLOCATE (after whitespace), letter case aside. */
export function startsWithDeallocate(buf: Buffer, pos: number, end: number): boolean {
  while (pos < end && (buf[pos] === 0x20 || (buf[pos]! >= 0x09 && buf[pos]! <= 0x0d))) pos++;
  if (end - pos < 10) return false;
  for (let i = 0; i < 10; i++) if ((buf[pos + i]! | 0x20) !== DEALLOCATE[i]) return false;
  return true;
}
const DEALLOCATE = Buffer.from('deallocate');

/**
 * The statement name of a SQL `DEALLOCATE [PREPARE] name` (one statement, an optional ';') at
 * buf[pos, end), as PostgreSQL looks it up: an unquoted name with ASCII letters folded to lower
 * case, a quoted one as written; in the client's bytes (a latin1 string, as client names are kept).
 * Null for anything else (DEALLOCATE ALL, several statements, comments): the server runs those.
 */
export function deallocateTarget(buf: Buffer, pos: number, end: number): string | null {
  const m = DEALLOCATE_NAME.exec(buf.toString('latin1', pos, end));
  if (m === null) return null;
  const name = m[1]!;
  if (name.startsWith('"')) return name.slice(1, -1).replace(/""/g, '"');
  const folded = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return folded === 'all' ? null : folded;
}
const DEALLOCATE_NAME = /^[ \t\n\r\f\v]*deallocate[ \t\n\r\f\v]+(?:prepare[ \t\n\r\f\v]+)?("(?:[^"]|"")+"|[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)[ \t\n\r\f\v]*;?[ \t\n\r\f\v]*$/i;

/** Describe ('S') of the statement `nameZ`. */
export function describeStatement(nameZ: Buffer): Buffer {
  const out = header(DESCRIBE, 1 + nameZ.length);
  out[5] = TargetKind.Statement;
  nameZ.copy(out, 6);
  return out;
}

/** Close ('S') of the statement `nameZ`. */
export function closeStatement(nameZ: Buffer): Buffer {
  const out = header(CLOSE, 1 + nameZ.length);
  out[5] = TargetKind.Statement;
  nameZ.copy(out, 6);
  return out;
}

/**
 * A Parse that always fails without changing anything: a named statement (so the unnamed one is
 * kept) whose text fails in parse analysis (the literal is converted at analysis time) with 22P02,
 * or with 25P02 inside a failed transaction block, where PostgreSQL checks that first. It stands
 * in for a message PostgreSQL would refuse, so the server fails the rest of the pipeline exactly
 * as PostgreSQL would have; the error it draws is replaced by the one PostgreSQL would give.
 */
export const ProbeParse = parseMessage(Buffer.from('pgrelay_probe\0'), Buffer.from("SELECT 'pgrelay: statement name check'::pg_catalog.int4\0\0\0"));
/** The SQLSTATE ProbeParse draws outside a failed transaction block. */
export const PROBE_SQLSTATE = SqlState.InvalidTextRepresentation;

/** An ERROR as PostgreSQL sends it for a statement name (S, V, C, M; `name` in the client's bytes). */
export function statementError(code: string, before: string, name: Buffer, after: string): Buffer {
  const message = Buffer.concat([Buffer.from(before, 'utf8'), name, Buffer.from(after, 'utf8')]);
  const fields = Buffer.concat([Buffer.from(`SERROR\0VERROR\0C${code}\0M`, 'latin1'), message, Buffer.from([0, 0])]);
  const out = header(0x45, fields.length);
  fields.copy(out, 5);
  return out;
}

/** PostgreSQL's 42P05 for a Parse of a name in use. */
export function duplicateStatementError(name: Buffer): Buffer {
  return statementError(SqlState.DuplicatePreparedStatement, 'prepared statement "', name, '" already exists');
}

/** PostgreSQL's 26000 for a Bind or Describe of an unknown name. */
export function unknownStatementError(name: Buffer): Buffer {
  return statementError(SqlState.InvalidSqlStatementName, 'prepared statement "', name, '" does not exist');
}

/** The SQLSTATE (C field) of an ErrorResponse at buf[start, end), or '' when it has none. */
export function errorCode(buf: Buffer, start: number, end: number): string {
  let pos = start + 5;
  while (pos < end && buf[pos] !== 0) {
    const nul = cstringEnd(buf, pos + 1, end);
    if (nul < 0) return '';
    if (buf[pos] === 0x43) return buf.toString('latin1', pos + 1, nul);
    pos = nul + 1;
  }
  return '';
}

/** The ErrorResponse at buf[start, end) with a HINT field added (unchanged when it has one). */
export function withHint(buf: Buffer, start: number, end: number, hint: string): Buffer {
  let pos = start + 5;
  while (pos < end && buf[pos] !== 0) {
    if (buf[pos] === 0x48) return Buffer.from(buf.subarray(start, end));
    const nul = cstringEnd(buf, pos + 1, end);
    if (nul < 0) return Buffer.from(buf.subarray(start, end));
    pos = nul + 1;
  }
  const field = Buffer.from(`H${hint}\0`, 'utf8');
  const out = Buffer.allocUnsafe(end - start + field.length);
  buf.copy(out, 0, start, pos);
  field.copy(out, pos - start);
  buf.copy(out, pos - start + field.length, pos, end);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}
