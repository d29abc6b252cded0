// Decoders for the few messages pgrelay must look inside: the untyped first packet, password
// messages, ErrorResponse fields, ParameterStatus and ReadyForQuery. Pure and synchronous.

import { StartupCode } from './message-types.js';

/** Reads a NUL-terminated UTF-8 string at `pos`; returns [value, position after the NUL]. */
export function readCString(buf: Buffer, pos: number, end: number): [string, number] {
  const nul = buf.indexOf(0, pos);
  if (nul < 0 || nul >= end) throw new ProtocolError('unterminated string in message');
  return [buf.toString('utf8', pos, nul), nul + 1];
}

export class ProtocolError extends Error {
  readonly code = 'PGRELAY_PROTOCOL_VIOLATION';
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export type StartupPacket =
  | { readonly kind: 'startup'; readonly major: number; readonly minor: number; readonly params: Map<string, string> }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: number }
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' };

/** Largest first packet accepted: PostgreSQL itself caps it at 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10000;

/** Decodes a whole untyped first packet (int32 length, int32 code, body). */
export function readStartupPacket(buf: Buffer): StartupPacket {
  if (buf.length < 8) throw new ProtocolError('startup packet too short');
  const code = buf.readInt32BE(4);
  if (code === StartupCode.SSLRequest) return { kind: 'ssl' };
  if (code === StartupCode.GSSENCRequest) return { kind: 'gssenc' };
  if (code === StartupCode.CancelRequest) {
    if (buf.length !== 16) throw new ProtocolError('malformed cancel request');
    return { kind: 'cancel', processId: buf.readInt32BE(8), secretKey: buf.readInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  const params = new Map<string, string>();
  let pos = 8;
  const end = buf.length;
  while (pos < end && buf[pos] !== 0) {
    const [key, afterKey] = readCString(buf, pos, end);
    const [value, afterValue] = readCString(buf, afterKey, end);
    params.set(key, value);
    pos = afterValue;
  }
  if (pos >= end) throw new ProtocolError('startup packet is missing its terminator');
  return { kind: 'startup', major, minor, params };
}

/** The body of a 'p' message as a cleartext/md5 password (a C string). */
export function readPassword(buf: Buffer, start: number, end: number): string {
  return readCString(buf, start + 5, end)[0];
}

/** SASLInitialResponse: mechanism name, int32 length (-1 = none), data. */
export function readSASLInitialResponse(buf: Buffer, start: number, end: number): { mechanism: string; data: string } {
  const [mechanism, pos] = readCString(buf, start + 5, end);
  if (pos + 4 > end) throw new ProtocolError('malformed SASLInitialResponse');
  const n = buf.readInt32BE(pos);
  if (n < -1 || pos + 4 + Math.max(n, 0) > end) throw new ProtocolError('malformed SASLInitialResponse');
  return { mechanism, data: n < 0 ? '' : buf.toString('utf8', pos + 4, pos + 4 + n) };
}

/** SASLResponse: the rest of the message is the mechanism's data. */
export function readSASLResponse(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start + 5, end);
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter codes (S, V, C, M, D, H ...). */
export function readErrorFields(buf: Buffer, start: number, end: number): Map<string, string> {
  const out = new Map<string, string>();
  let pos = start + 5;
  while (pos < end && buf[pos] !== 0) {
    const code = String.fromCharCode(buf[pos]!);
    const [value, next] = readCString(buf, pos + 1, end);
    out.set(code, value);
    pos = next;
  }
  return out;
}

export function readParameterStatus(buf: Buffer, start: number, end: number): [string, string] {
  const [name, pos] = readCString(buf, start + 5, end);
  const [value] = readCString(buf, pos, end);
  return [name, value];
}
