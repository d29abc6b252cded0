// Cross-field checks on parsed values that the loader turns into file:line errors: listen
// addresses that cannot be bound as written, a database whose write gate can never pass, and the
// hint for a `;` written after a value (PgBouncer, too, reads it as part of the value).

import { isIP } from 'node:net';
import type { DatabaseConfig } from './types.js';

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Why `addr` cannot be listened on as written, or null. Host names pass here (resolving them is
 * the startup check's job); what fails is a port glued on, brackets, or text that is no address.
 */
export function checkListenAddress(addr: string, key: string, portKey: string): string | null {
  if (isIP(addr) !== 0 || addr === '*') return null;
  const bracketed = /^\[(.*)\](?::(\d+))?$/.exec(addr);
  if (bracketed !== null) {
    return bracketed[2] !== undefined
      ? `${key} ${JSON.stringify(addr)} includes a port: ${key} takes addresses only; write ${bracketed[1]} and put ${bracketed[2]} in ${portKey}`
      : `${key} ${JSON.stringify(addr)}: write IPv6 addresses without brackets (${bracketed[1]})`;
  }
  const withPort = /^(.*):(\d+)$/.exec(addr);
  if (withPort !== null && (isIP(withPort[1]!) === 4 || HOST_NAME.test(withPort[1]!))) {
    return `${key} ${JSON.stringify(addr)} includes a port: ${key} takes addresses only; write ${withPort[1]} and put ${withPort[2]} in ${portKey}`;
  }
  if (HOST_NAME.test(addr)) return null;
  return `${key} ${JSON.stringify(addr)} is not an IP address or a host name`;
}

// A connect_query that makes every session read-only: PostgreSQL reports the new
// default_transaction_read_only (ParameterStatus, 14+), so a read-write gate refuses every server.
const READ_ONLY_SESSION = [
  /default_transaction_read_only\s*(?:=|\bto\b)\s*'?(?:on|true|yes|1)\b/i,
  /\bset\s+session\s+characteristics\s+as\s+transaction\s+(?:[a-z ,]*\s)?read\s+only\b/i,
  /set_config\s*\(\s*'default_transaction_read_only'\s*,\s*'(?:on|true|yes|1)'/i,
];

/** Why no server can ever pass this database's write gate, or null when one might. */
export function gateNeverPasses(db: DatabaseConfig): string | null {
  const wantsWritable = db.targetSessionAttrs === 'read-write' || db.targetSessionAttrs === 'primary';
  if (wantsWritable && db.connectQuery !== null && READ_ONLY_SESSION.some((re) => re.test(db.connectQuery!))) {
    return (
      `connect_query makes every server session read-only, so no server can pass target_session_attrs=${db.targetSessionAttrs}: ` +
      'every client would wait query_wait_timeout and fail. Set target_session_attrs=any (or read-only) for a read-only pool, or drop the SET'
    );
  }
  return null;
}

/**
 * A hint for a value with ` ;` or ` #` in it: in pgbouncer.ini a comment is a whole line, so the rest
 * of the line is part of the value. '' when the value has none.
 */
export function inlineCommentHint(value: string): string {
  const m = /\s([;#])/.exec(value);
  if (m === null) return '';
  return ` (a "${m[1]}" after a value is not a comment in pgbouncer.ini, for pgrelay as for PgBouncer: it is part of the value; put comments on their own line)`;
}
