// Certificates for TLS tests, made with openssl at test time: a CA, server certificates for given
// names, and client certificates whose CN is a user name. Files are readable by the `postgres`
// user (the server runs as it when the tests run as root), keys are 0600 as PostgreSQL demands.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { runAs } from './pg-cluster.js';

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export class TestCa {
  readonly cert: string;
  private readonly key: string;
  private serial = 1;

  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.cert = join(dir, `${name}.crt`);
    this.key = join(dir, `${name}.key`);
  }

  /** A new CA in its own temp dir (removed by cleanup()). */
  static create(name = 'test-ca', dir?: string): TestCa {
    const d = dir ?? mkdtempSync(join(tmpdir(), 'pgrelay-tls-'));
    const ca = new TestCa(d, name);
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', ca.key, '-out', ca.cert, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    ca.own(ca.cert, ca.key);
    return ca;
  }

  /** A server certificate for `cn`, with the given subjectAltNames (DNS:x, IP:y). */
  server(file: string, cn: string, altNames: readonly string[] = [`DNS:${cn}`]): CertPair {
    return this.issue(file, cn, ['extendedKeyUsage=serverAuth', `subjectAltName=${altNames.join(',')}`]);
  }

  /** A client certificate whose CN is `user` (the cert auth method takes the user name from it). */
  client(file: string, user: string): CertPair {
    return this.issue(file, user, ['extendedKeyUsage=clientAuth']);
  }

  /** SHA-256 fingerprint as node prints it (AA:BB:...). */
  static fingerprint(certFile: string): string {
    return new X509Certificate(readFileSync(certFile)).fingerprint256;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private issue(file: string, cn: string, ext: readonly string[]): CertPair {
    const key = join(this.dir, `${file}.key`);
    const csr = join(this.dir, `${file}.csr`);
    const cert = join(this.dir, `${file}.crt`);
    const extFile = join(this.dir, `${file}.ext`);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr]);
    execFileSync('sh', ['-c', `printf '%s\\n' "$@" > ${JSON.stringify(extFile)}`, 'sh', ...ext]);
    openssl(['x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', this.key, '-set_serial', String(this.serial++ + Date.now()), '-days', '2', '-extfile', extFile, '-out', cert]);
    this.own(cert, key);
    return { cert, key };
  }

  /** PostgreSQL (run as `postgres` when we are root) must read them; keys stay private. */
  private own(cert: string, key: string): void {
    chmodSync(key, 0o600);
    chmodSync(cert, 0o644);
    chmodSync(this.dir, 0o755);
    const ids = runAs();
    if (ids.uid !== undefined && ids.gid !== undefined) {
      for (const f of [cert, key, this.dir]) chownSync(f, ids.uid, ids.gid);
    }
  }
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
