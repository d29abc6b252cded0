// What a client sees when it logs in to the admin console: the virtual database's name and the
// AuthenticationOk / ParameterStatus / BackendKeyData / ReadyForQuery that open the session.

import { AuthenticationOk, backendKeyData, parameterStatus, ReadyForQueryIdle } from '../protocol/backend-messages.js';
import { VERSION } from '../version.js';

/** ParameterStatus a console client sees (psql needs a server_version and an encoding). */
const CONSOLE_PARAMS: ReadonlyMap<string, string> = new Map([
  ['server_version', `${VERSION}/pgrelay`],
  ['server_encoding', 'UTF8'],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['TimeZone', 'UTC'],
  ['integer_datetimes', 'on'],
  ['standard_conforming_strings', 'on'],
  ['is_superuser', 'off'],
  ['application_name', 'pgrelay-console'],
]);

/** The messages that complete a console login. */
export function consoleWelcome(user: string, processId: number, secretKey: number): Buffer[] {
  const out: Buffer[] = [AuthenticationOk];
  for (const [name, value] of CONSOLE_PARAMS) out.push(parameterStatus(name, value));
  out.push(parameterStatus('session_authorization', user), backendKeyData(processId, secretKey), ReadyForQueryIdle);
  return out;
}
