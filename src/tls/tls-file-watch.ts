// tls_file_check_period: notices that the TLS files changed under the same names (cert-manager
// renewing a Secret that a Kubernetes volume projects, a certbot hook) so that the new
// certificates are loaded without anyone sending SIGHUP. Cheap: one stat() per file per period,
// from the janitor. What a change leads to is the caller's (App.reloadTls).

import { statSync } from 'node:fs';
import type { Settings } from '../config/types.js';

/** The TLS files a config names, both sides. */
export function tlsFiles(s: Settings): string[] {
  return [s.clientTlsKeyFile, s.clientTlsCertFile, s.clientTlsCaFile, s.serverTlsKeyFile, s.serverTlsCertFile, s.serverTlsCaFile].filter((p): p is string => p !== null);
}

/** What stat() says of the files: a change of content, inode or size shows here. */
export function filesSignature(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const st = statSync(p);
        return `${p}:${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch (err) {
        return `${p}:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    })
    .join('\n');
}

export class TlsFileWatch {
  private lastCheck = 0;
  private seen: string | null = null;

  constructor(
    private readonly settings: () => Settings,
    /** Called once per change seen (a failed load is not retried until the files change again). */
    private readonly onChange: () => void,
  ) {}

  /** The files as they are now count as seen (after startup or a reload loaded them). */
  accept(): void {
    this.seen = filesSignature(tlsFiles(this.settings()));
  }

  sweep(now: number): void {
    const period = this.settings().tlsFileCheckPeriodMs;
    if (period <= 0 || now - this.lastCheck < period) return;
    this.lastCheck = now;
    const sig = filesSignature(tlsFiles(this.settings()));
    if (this.seen === null) {
      this.seen = sig;
      return;
    }
    if (sig === this.seen) return;
    this.seen = sig;
    this.onChange();
  }
}
