// Builders for the backend messages pgrelay itself sends to clients (login, errors, the admin
// console). Forwarded traffic never passes through here. Constant frames are built once.

import { AuthRequest, TxStatus } from './message-types.js';

/** Encodes one message: type byte, int32 length, body. */
function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

function cstring(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

export const ReadyForQueryIdle = frame(0x5a, Buffer.from([TxStatus.Idle]));
export const AuthenticationOk = frame(0x52, int32(AuthRequest.Ok));
export const AuthenticationCleartextPassword = frame(0x52, int32(AuthRequest.CleartextPassword));
export const EmptyQueryResponse = frame(0x49, Buffer.alloc(0));
/** The one-byte answer to SSLRequest / GSSENCRequest when encryption is not offered. */
export const EncryptionRefused = Buffer.from('N');

export function authenticationMD5Password(salt: Buffer): Buffer {
  return frame(0x52, Buffer.concat([int32(AuthRequest.MD5Password), salt]));
}

export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  return frame(0x52, Buffer.concat([int32(AuthRequest.SASL), ...mechanisms.map(cstring), Buffer.from([0])]));
}

export function authenticationSASLContinue(data: string): Buffer {
  return frame(0x52, Buffer.concat([int32(AuthRequest.SASLContinue), Buffer.from(data, 'utf8')]));
}

export function authenticationSASLFinal(data: string): Buffer {
  return frame(0x52, Buffer.concat([int32(AuthRequest.SASLFinal), Buffer.from(data, 'utf8')]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return frame(0x53, Buffer.concat([cstring(name), cstring(value)]));
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeInt32BE(processId, 0);
  body.writeInt32BE(secretKey, 4);
  return frame(0x4b, body);
}

/** NegotiateProtocolVersion: the newest minor version we speak plus the options we ignored. */
export function negotiateProtocolVersion(newestMinor: number, unrecognized: readonly string[]): Buffer {
  return frame(0x76, Buffer.concat([int32((3 << 16) | newestMinor), int32(unrecognized.length), ...unrecognized.map(cstring)]));
}

export interface ErrorFields {
  /** ERROR, FATAL, PANIC (errors) or WARNING, NOTICE, LOG ... (notices). */
  readonly severity: string;
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

function fields(e: ErrorFields): Buffer {
  const parts = [Buffer.from('S'), cstring(e.severity), Buffer.from('V'), cstring(e.severity), Buffer.from('C'), cstring(e.code), Buffer.from('M'), cstring(e.message)];
  if (e.detail !== undefined) parts.push(Buffer.from('D'), cstring(e.detail));
  if (e.hint !== undefined) parts.push(Buffer.from('H'), cstring(e.hint));
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export function errorResponse(e: ErrorFields): Buffer {
  return frame(0x45, fields(e));
}

export function noticeResponse(e: ErrorFields): Buffer {
  return frame(0x4e, fields(e));
}

// Result sets for the admin console ("Simple Query" message flow).

export const Oid = { text: 25, int8: 20, int4: 23, bool: 16, numeric: 1700 } as const;

export interface Column {
  readonly name: string;
  readonly typeOid: number;
}

export function rowDescription(columns: readonly Column[]): Buffer {
  const parts: Buffer[] = [Buffer.from([columns.length >> 8, columns.length & 0xff])];
  for (const c of columns) {
    const meta = Buffer.alloc(18);
    // table oid 0, attnum 0, type oid, typlen -1, typmod -1, text format
    meta.writeInt32BE(c.typeOid, 6);
    meta.writeInt16BE(-1, 10);
    meta.writeInt32BE(-1, 12);
    meta.writeInt16BE(0, 16);
    parts.push(cstring(c.name), meta);
  }
  return frame(0x54, Buffer.concat(parts));
}

export function dataRow(values: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const v of values) {
    if (v === null) {
      parts.push(int32(-1));
    } else {
      const b = Buffer.from(v, 'utf8');
      parts.push(int32(b.length), b);
    }
  }
  return frame(0x44, Buffer.concat(parts));
}

export function commandComplete(tag: string): Buffer {
  return frame(0x43, cstring(tag));
}
