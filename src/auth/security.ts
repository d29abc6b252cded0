// What a config needs read from other files before it can run: the TLS material of both sides
// and the auth_hba_file rules, with the checks that need them together. Built whole at startup,
// by --check and at each reload; any failure is a ConfigError (file:line:reason) and, at reload,
// leaves the running TLS contexts and rules in place.

import { ConfigError, type Config, type Settings } from '../config/types.js';
import { loadTls, type TlsContexts } from '../tls/tls-contexts.js';
import { HbaMethod, loadHbaFile, type HbaRules } from './hba.js';

export interface Security {
  readonly tls: TlsContexts;
  /** auth_hba_file's rules; null unless auth_type = hba. */
  readonly hba: HbaRules | null;
}

export function loadSecurity(config: Config): Security {
  const s = config.settings;
  const fail = (field: keyof Settings, reason: string): never => {
    const site = config.sites?.settings.get(field);
    throw new ConfigError(site?.file ?? config.file ?? '<config>', site?.line ?? 0, reason);
  };
  const tls = loadTls(config);
  let hba: HbaRules | null = null;
  if (s.authType === 'hba') {
    if (s.authHbaFile === null) fail('authType', 'auth_type = hba needs auth_hba_file');
    hba = loadHbaFile(s.authHbaFile!);
    const certLine = hba.uses(HbaMethod.cert);
    if (certLine !== undefined && tls.client?.requestCert !== true) {
      throw new ConfigError(certLine.file, certLine.line, 'the cert method needs client TLS (client_tls_sslmode) with client_tls_ca_file to verify client certificates against');
    }
  }
  if (s.authType === 'cert' && tls.client?.requireCert !== true) {
    fail('authType', 'auth_type = cert needs client_tls_sslmode = verify-ca or verify-full with client_tls_ca_file');
  }
  return { tls, hba };
}
