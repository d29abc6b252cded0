// The TLS material of both sides, read from the files the settings name: a SecureContext for
// clients (pgrelay as TLS server) and one for PostgreSQL (pgrelay as TLS client). Built whole at
// startup and at each reload; a file that does not load refuses the reload (the running contexts
// stay), so a half-rotated certificate never reaches a client. Open connections keep the context
// their handshake used; new connections get the new one.

import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { ConfigError, TLS_MODE_ORDER, TlsMode, type Config, type Settings } from '../config/types.js';
import { nodeCiphers, tlsVersionRange } from '../config/tls-values.js';

/** TLS towards clients; null in TlsContexts when client_tls_sslmode = disable. */
export interface ClientTls {
  readonly mode: TlsMode;
  readonly secureContext: tls.SecureContext;
  /** A client certificate is asked for (client_tls_ca_file is set): the cert method can use it. */
  readonly requestCert: boolean;
  /** The handshake fails without a certificate that verifies (verify-ca, verify-full). */
  readonly requireCert: boolean;
  /** SHA-256 fingerprint of the certificate presented, for logs and reload reports. */
  readonly fingerprint: string;
}

/** TLS towards PostgreSQL; null in TlsContexts when server_tls_sslmode = disable. */
export interface ServerTls {
  readonly mode: TlsMode;
  readonly secureContext: tls.SecureContext;
  /** verify-ca and verify-full: the server's certificate must chain to server_tls_ca_file. */
  readonly verifyCert: boolean;
  /** verify-full: and name the host pgrelay connected to. */
  readonly verifyHost: boolean;
  /** Digest of every input (mode, options, file contents): a change means new server connections. */
  readonly digest: string;
}

export interface TlsContexts {
  readonly client: ClientTls | null;
  readonly server: ServerTls | null;
}

/** Whether `mode` is at least `floor` in PgBouncer's order (disable < allow < ... < verify-full). */
export function atLeast(mode: TlsMode, floor: TlsMode): boolean {
  return TLS_MODE_ORDER.indexOf(mode) >= TLS_MODE_ORDER.indexOf(floor);
}

/** Reads both sides' files and builds their contexts; throws ConfigError at the setting's line. */
export function loadTls(config: Config): TlsContexts {
  return { client: loadClientTls(config), server: loadServerTls(config) };
}

function loadClientTls(config: Config): ClientTls | null {
  const s = config.settings;
  if (s.clientTlsSslmode === TlsMode.disable) return null;
  const fail = failAt(config);
  // Cross-key rules are checked here too (buildConfig skips the file checks): fail closed.
  if (s.clientTlsKeyFile === null || s.clientTlsCertFile === null) {
    fail('clientTlsSslmode', `client_tls_sslmode = ${s.clientTlsSslmode} needs client_tls_key_file and client_tls_cert_file`);
  }
  const verify = atLeast(s.clientTlsSslmode, TlsMode.verifyCa);
  if (verify && s.clientTlsCaFile === null) fail('clientTlsSslmode', `client_tls_sslmode = ${s.clientTlsSslmode} needs client_tls_ca_file to verify client certificates`);
  const key = readPem(fail, 'clientTlsKeyFile', s.clientTlsKeyFile!);
  const cert = readPem(fail, 'clientTlsCertFile', s.clientTlsCertFile!);
  const leaf = firstCertificate(fail, 'clientTlsCertFile', s.clientTlsCertFile!, cert);
  const ca = s.clientTlsCaFile !== null ? readCaFile(fail, 'clientTlsCaFile', s.clientTlsCaFile) : undefined;
  const secureContext = buildContext(fail, 'clientTlsCertFile', {
    key,
    cert,
    ...(ca !== undefined && { ca }),
    ...tlsVersionRange(s.clientTlsProtocols),
    ...cipherOption(s.clientTlsCiphers, s.clientTls13Ciphers),
    ecdhCurve: s.clientTlsEcdhcurve,
    ...(s.clientTlsDheparams === 'auto' && { dhparam: 'auto' }),
  }, ['clientTlsCiphers', 'clientTlsEcdhcurve']);
  return { mode: s.clientTlsSslmode, secureContext, requestCert: ca !== undefined, requireCert: verify, fingerprint: leaf.fingerprint256 };
}

function loadServerTls(config: Config): ServerTls | null {
  const s = config.settings;
  if (s.serverTlsSslmode === TlsMode.disable) return null;
  const fail = failAt(config);
  const verifyCert = atLeast(s.serverTlsSslmode, TlsMode.verifyCa);
  if (verifyCert && s.serverTlsCaFile === null) fail('serverTlsSslmode', `server_tls_sslmode = ${s.serverTlsSslmode} needs server_tls_ca_file to verify the server's certificate`);
  if ((s.serverTlsKeyFile === null) !== (s.serverTlsCertFile === null)) {
    fail(s.serverTlsKeyFile === null ? 'serverTlsCertFile' : 'serverTlsKeyFile', 'server_tls_key_file and server_tls_cert_file go together: set both or neither');
  }
  const digest = createHash('sha256');
  digest.update(`${s.serverTlsSslmode}\0${s.serverTlsProtocols}\0${s.serverTlsCiphers}\0${s.serverTls13Ciphers}\0`);
  const ca = s.serverTlsCaFile !== null ? readCaFile(fail, 'serverTlsCaFile', s.serverTlsCaFile) : undefined;
  const key = s.serverTlsKeyFile !== null ? readPem(fail, 'serverTlsKeyFile', s.serverTlsKeyFile) : undefined;
  const cert = s.serverTlsCertFile !== null ? readPem(fail, 'serverTlsCertFile', s.serverTlsCertFile) : undefined;
  if (cert !== undefined) firstCertificate(fail, 'serverTlsCertFile', s.serverTlsCertFile!, cert);
  for (const part of [ca, key, cert]) digest.update(part ?? '').update('\0');
  const secureContext = buildContext(fail, key !== undefined ? 'serverTlsCertFile' : 'serverTlsSslmode', {
    ...(ca !== undefined && { ca }),
    ...(key !== undefined && { key }),
    ...(cert !== undefined && { cert }),
    ...tlsVersionRange(s.serverTlsProtocols),
    ...cipherOption(s.serverTlsCiphers, s.serverTls13Ciphers),
  }, ['serverTlsCiphers']);
  return { mode: s.serverTlsSslmode, secureContext, verifyCert, verifyHost: s.serverTlsSslmode === TlsMode.verifyFull, digest: digest.digest('hex') };
}

type Fail = (field: keyof Settings, reason: string) => never;

/** A ConfigError at the line that set `field` (or the config file itself when built in code). */
function failAt(config: Config): Fail {
  return (field, reason) => {
    const site = config.sites?.settings.get(field);
    throw new ConfigError(site?.file ?? config.file ?? '<config>', site?.line ?? 0, reason);
  };
}

const KEY_NAMES: Partial<Record<keyof Settings, string>> = {
  clientTlsKeyFile: 'client_tls_key_file',
  clientTlsCertFile: 'client_tls_cert_file',
  clientTlsCaFile: 'client_tls_ca_file',
  serverTlsKeyFile: 'server_tls_key_file',
  serverTlsCertFile: 'server_tls_cert_file',
  serverTlsCaFile: 'server_tls_ca_file',
};

function readPem(fail: Fail, field: keyof Settings, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return fail(field, `${KEY_NAMES[field]}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The first certificate of a PEM file (the leaf of a chain), or a ConfigError naming the file. */
function firstCertificate(fail: Fail, field: keyof Settings, path: string, pem: string): X509Certificate {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  if (block === null) return fail(field, `${KEY_NAMES[field]}: ${path} holds no PEM certificate`);
  try {
    return new X509Certificate(block[0]);
  } catch (err) {
    return fail(field, `${KEY_NAMES[field]}: ${path}: not a valid certificate: ${(err as Error).message}`);
  }
}

/** A CA file must hold at least one certificate: node would silently accept an empty or garbled one. */
function readCaFile(fail: Fail, field: keyof Settings, path: string): string {
  const pem = readPem(fail, field, path);
  firstCertificate(fail, field, path, pem);
  return pem;
}

function cipherOption(ciphers: string, ciphers13: string): { ciphers?: string } {
  const c = nodeCiphers(ciphers, ciphers13);
  return c === null ? {} : { ciphers: c };
}

/**
 * tls.createSecureContext, whose errors (a key that does not match the certificate, an unknown
 * cipher or curve) become ConfigErrors at the most likely line.
 */
function buildContext(fail: Fail, field: keyof Settings, options: tls.SecureContextOptions, optionFields: readonly (keyof Settings)[]): tls.SecureContext {
  try {
    return tls.createSecureContext(options);
  } catch (err) {
    const msg = (err as Error).message;
    if (/cipher/i.test(msg)) return fail(optionFields[0]!, `TLS cipher list refused by OpenSSL: ${msg}`);
    if (/curve|group/i.test(msg) && optionFields[1] !== undefined) return fail(optionFields[1], `ECDH curve refused by OpenSSL: ${msg}`);
    return fail(field, `TLS key or certificate refused by OpenSSL: ${msg}`);
  }
}
