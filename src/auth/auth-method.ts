// Which check a client's login goes through: auth_type, or with auth_type = hba the method of the
// first auth_hba_file line that matches the connection. cert (as a method or as auth_type) is
// decided here, from the TLS handshake: a client certificate that verified against
// client_tls_ca_file and whose CN is the user name. Refusals carry PostgreSQL's wording.

import { ErrorCode, PgRelayError } from '../errors.js';
import type { AuthType } from '../config/types.js';
import type { ClientAuthMethod } from './client-auth.js';
import { HbaMethod, type HbaRules } from './hba.js';

/** What the login knows of the connection when it picks the method. */
export interface ClientConnection {
  readonly unix: boolean;
  readonly tls: boolean;
  readonly address: string;
  readonly database: string;
  readonly user: string;
  /** The client certificate from the TLS handshake; null when none was sent (or no TLS). */
  readonly certificate: { readonly verified: boolean; readonly commonName: string | null } | null;
}

export type AuthDecision =
  /** Run this exchange (trust ends it at once). */
  | { readonly kind: 'exchange'; readonly method: ClientAuthMethod }
  /** Authenticated already (the cert method). */
  | { readonly kind: 'accepted' }
  /** Refused before any exchange; `reason` is for the log only. */
  | { readonly kind: 'refused'; readonly error: PgRelayError; readonly reason: string };

export function chooseAuthMethod(authType: AuthType, hba: HbaRules | null, conn: ClientConnection): AuthDecision {
  if (authType === 'cert') return certCheck(conn);
  if (authType !== 'hba') return { kind: 'exchange', method: authType };
  const where = `host "${conn.unix ? '[local]' : conn.address}", user "${conn.user}", database "${conn.database}", ${conn.tls ? 'SSL encryption' : 'no encryption'}`;
  // auth_type = hba without rules cannot happen (the config refuses it); fail closed anyway.
  const rule = hba?.match(conn) ?? null;
  if (rule === null) return { kind: 'refused', reason: 'no_hba_line', error: new PgRelayError(ErrorCode.HbaRejected, `no pg_hba.conf entry for ${where}`) };
  switch (rule.method) {
    case HbaMethod.reject:
      return { kind: 'refused', reason: `hba_reject ${rule.file}:${rule.line}`, error: new PgRelayError(ErrorCode.HbaRejected, `pg_hba.conf rejects connection for ${where}`) };
    case HbaMethod.cert:
      return certCheck(conn);
    case HbaMethod.password:
      return { kind: 'exchange', method: 'plain' };
    case HbaMethod.trust:
    case HbaMethod.md5:
    case HbaMethod.scram:
      return { kind: 'exchange', method: rule.method };
  }
}

function certCheck(conn: ClientConnection): AuthDecision {
  const refuse = (reason: string): AuthDecision => ({
    kind: 'refused',
    reason,
    error: new PgRelayError(ErrorCode.CertAuthFailed, `certificate authentication failed for user "${conn.user}"`),
  });
  const cert = conn.certificate;
  if (!conn.tls || cert === null) return refuse('no client certificate');
  if (!cert.verified) return refuse('client certificate did not verify against client_tls_ca_file');
  if (cert.commonName !== conn.user) return refuse(`certificate CN "${cert.commonName ?? ''}" is not the user name`);
  return { kind: 'accepted' };
}
