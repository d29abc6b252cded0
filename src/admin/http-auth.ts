// Who may use the HTTP admin API: the bearer-token check, reading the token, and the rule that an
// admin port reachable from other hosts must have a token (it can pause every database).

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import type { Settings } from '../config/types.js';

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time. The token
 * can be replaced while the API runs (a reload rotates it); null or '' means no token is required.
 */
export class BearerCheck {
  private digest: Buffer | null = null;

  constructor(token: string | null) {
    this.set(token);
  }

  set(token: string | null): void {
    this.digest = token === null || token === '' ? null : sha256(token);
  }

  get required(): boolean {
    return this.digest !== null;
  }

  matches(authorization: string | undefined): boolean {
    if (this.digest === null) return true;
    if (authorization === undefined) return false;
    // RFC 6750 §2.1; the scheme name is case-insensitive (RFC 9110 §11.1).
    const m = /^Bearer +(.+)$/i.exec(authorization);
    if (m === null) return false;
    // Comparing fixed-length digests keeps the compare constant-time and hides the token's length.
    return timingSafeEqual(sha256(m[1]!), this.digest);
  }
}

/**
 * The admin token: admin_token, or the contents of admin_token_file (surrounding whitespace
 * trimmed), read again at each call so that a reload picks up a rotated file; null when neither
 * is set. An unreadable or empty file throws: a file caught empty halfway through a rotation must
 * neither open the API nor lock everyone out.
 */
export function readAdminToken(s: Pick<Settings, 'adminToken' | 'adminTokenFile'>): string | null {
  if (s.adminToken !== null) return s.adminToken;
  if (s.adminTokenFile === null) return null;
  let text: string;
  try {
    text = readFileSync(s.adminTokenFile, 'utf8');
  } catch (err) {
    throw new Error(`admin_token_file ${s.adminTokenFile}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (token === '') throw new Error(`admin_token_file ${s.adminTokenFile} is empty: write the admin API token in it`);
  return token;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether every address in a (comma-separated) listen address is a loopback one. */
export function isLoopback(addr: string): boolean {
  const parts = addr.split(',').map((a) => a.trim().replace(/^\[(.*)\]$/, '$1'));
  return parts.every((a) => {
    if (a.toLowerCase() === 'localhost') return true;
    const family = isIP(a);
    // BlockList also matches IPv4-mapped IPv6 (::ffff:127.0.0.1) against the IPv4 subnet.
    return family !== 0 && LOOPBACK.check(a, family === 4 ? 'ipv4' : 'ipv6');
  });
}

/**
 * Refuses an admin API that other hosts can reach without a token. Any name other than localhost
 * counts as non-loopback: it cannot be resolved here, and a wrong guess would open PAUSE to the network.
 */
export function checkAdminBinding(addr: string, token: string | null): void {
  if (token !== null && token !== '') return;
  if (isLoopback(addr)) return;
  throw new Error(
    `admin_listen_addr ${JSON.stringify(addr)} is not a loopback address and no admin token is set: anyone who can ` +
      'reach the admin API could pause every database. Set admin_token_file (or admin_token), or listen on 127.0.0.1.',
  );
}
