// PgBouncer's TLS setting values (client_tls_* / server_tls_*): sslmode words, protocol lists,
// cipher shortcuts and DH parameters, parsed into what node's TLS options can express. A value
// node cannot honour is refused here, never approximated by something weaker.

import { TlsMode } from './types.js';

/** A value that cannot be used; the settings table turns it into a SettingValueError (file, line, key). */
export class TlsValueError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TlsValueError';
  }
}

const MODES: readonly TlsMode[] = Object.values(TlsMode);

export function parseTlsMode(raw: string): TlsMode {
  const v = raw.trim().toLowerCase();
  const found = MODES.find((m) => m === v);
  if (found === undefined) throw new TlsValueError(`invalid sslmode "${raw}" (use ${MODES.join(', ')})`);
  return found;
}

/** TLS versions in order; node enables one contiguous range of them (minVersion..maxVersion). */
export const TLS_VERSIONS = ['tlsv1.0', 'tlsv1.1', 'tlsv1.2', 'tlsv1.3'] as const;
export type TlsVersionWord = (typeof TLS_VERSIONS)[number];
const NODE_VERSION: Record<TlsVersionWord, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'> = {
  'tlsv1.0': 'TLSv1',
  'tlsv1.1': 'TLSv1.1',
  'tlsv1.2': 'TLSv1.2',
  'tlsv1.3': 'TLSv1.3',
};
const SHORTCUTS: Record<string, readonly TlsVersionWord[]> = {
  all: TLS_VERSIONS,
  legacy: TLS_VERSIONS,
  secure: ['tlsv1.2', 'tlsv1.3'],
  default: ['tlsv1.2', 'tlsv1.3'],
};

/**
 * client_tls_protocols / server_tls_protocols: versions and shortcuts (`all`, `secure`, `legacy`,
 * `default`) separated by commas, colons or blanks, as PgBouncer takes them. Returns the versions
 * as a normalised list ("tlsv1.2,tlsv1.3"). A list with a gap (tlsv1.0,tlsv1.2) is refused: node
 * can only enable a range, and enabling the gap would allow a version the operator left out.
 */
export function parseTlsProtocols(raw: string): string {
  const words = raw.trim().toLowerCase().split(/[\s,:]+/).filter((w) => w !== '');
  if (words.length === 0) throw new TlsValueError('empty TLS protocol list (use secure, all, or versions such as tlsv1.2,tlsv1.3)');
  const on = new Set<TlsVersionWord>();
  for (const w of words) {
    const shortcut = SHORTCUTS[w];
    if (shortcut !== undefined) shortcut.forEach((v) => on.add(v));
    else if ((TLS_VERSIONS as readonly string[]).includes(w)) on.add(w as TlsVersionWord);
    else throw new TlsValueError(`unknown TLS protocol "${w}" (use ${TLS_VERSIONS.join(', ')}, all, secure or legacy)`);
  }
  const idx = TLS_VERSIONS.map((v, i) => (on.has(v) ? i : -1)).filter((i) => i >= 0);
  if (idx[idx.length - 1]! - idx[0]! + 1 !== idx.length) {
    throw new TlsValueError(`TLS protocols "${raw}" leave a gap: only a contiguous range of versions can be enabled`);
  }
  return idx.map((i) => TLS_VERSIONS[i]).join(',');
}

/** The normalised protocol list as node's minVersion / maxVersion. */
export function tlsVersionRange(protocols: string): { minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; maxVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' } {
  const list = parseTlsProtocols(protocols).split(',') as TlsVersionWord[];
  return { minVersion: NODE_VERSION[list[0]!], maxVersion: NODE_VERSION[list[list.length - 1]!] };
}

/** PgBouncer's cipher shortcuts that mean "OpenSSL's defaults". */
const DEFAULT_CIPHER_WORDS = new Set(['default', 'secure', 'fast', 'normal']);

/**
 * The `ciphers` option for node from PgBouncer's *_tls_ciphers (TLS 1.2 and older) and
 * *_tls13_ciphers (TLS 1.3 suites; empty = the TLS 1.3 defaults). Null: node's defaults.
 * Node takes both kinds in one OpenSSL list, TLS 1.3 suites being the TLS_* names.
 */
export function nodeCiphers(ciphers: string, ciphers13: string): string | null {
  const c = ciphers.trim();
  const legacy = DEFAULT_CIPHER_WORDS.has(c.toLowerCase()) ? null : c.toLowerCase() === 'all' ? 'ALL' : c;
  const v13 = ciphers13.trim();
  if (legacy === null && v13 === '') return null;
  // Node applies TLS_* names to TLS 1.3 and the rest to TLS 1.2 and older; a list without TLS 1.3
  // names leaves the TLS 1.3 defaults on.
  return [v13, legacy ?? 'DEFAULT'].filter((x) => x !== '').join(':');
}

/** client_tls_dheparams: none, auto (2048-bit, node's 'auto') or legacy (1024-bit: refused). */
export function parseDheParams(raw: string): string {
  const v = raw.trim().toLowerCase();
  if (v === 'none' || v === 'auto') return v;
  if (v === 'legacy') throw new TlsValueError('client_tls_dheparams "legacy" (1024-bit DH) is refused: OpenSSL 3 rejects such weak parameters; use auto or none');
  throw new TlsValueError(`invalid dheparams "${raw}" (use auto or none)`);
}

/** client_tls_ecdhcurve: auto or OpenSSL curve names; "none" cannot be expressed in node and is refused. */
export function parseEcdhCurve(raw: string): string {
  const v = raw.trim();
  if (v.toLowerCase() === 'none') throw new TlsValueError('client_tls_ecdhcurve "none" is not supported: node cannot turn ECDH off; use auto or a curve name');
  if (v === '') throw new TlsValueError('empty client_tls_ecdhcurve (use auto or a curve name such as prime256v1)');
  return v.toLowerCase() === 'auto' ? 'auto' : v;
}
