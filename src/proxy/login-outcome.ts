// What a finished login makes of its session: a pool session takes its identity, parameters and
// cancel key, a console session its link to the admin console, and a failed login becomes the
// error the client is sent, counted and logged (a flood of them is counted, not written out).

import { CONSOLE_DATABASE } from '../control/contract.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import type { ProtocolError } from '../protocol/readers.js';
import type { LoginOutcome } from './client-login.js';
import type { ClientSession } from './client-session.js';
import type { ConsoleLink, ProxyContext } from './context.js';

/** A login to a pool: who the session is, its parameters, and its BackendKeyData for cancels. */
export function adoptPoolLogin(session: ClientSession, outcome: Extract<LoginOutcome, { kind: 'pool' }>, ctx: ProxyContext): void {
  session.user = outcome.user;
  session.database = outcome.database;
  session.entry = outcome.entry;
  session.transactionPooling = outcome.entry.mode === 'transaction';
  // Named prepared statements need tracking only when servers change hands per transaction.
  if (session.transactionPooling && ctx.config.settings.maxPreparedStatements > 0) session.protocol.enableTracking();
  session.params.adopt(outcome.params, outcome.paramsSig, outcome.settings);
  ctx.cancelKeys.set(session.processId, session);
  if (ctx.config.settings.logConnections) {
    ctx.logger.info({ client: session.id, user: session.user, database: session.database, addr: session.remoteAddress, port: session.remotePort }, 'client login');
  }
}

/** A login to the admin console: the console reads and writes the client's socket from now on. */
export function openConsoleLogin(session: ClientSession, outcome: Extract<LoginOutcome, { kind: 'console' }>, ctx: ProxyContext): ConsoleLink {
  session.user = outcome.user;
  session.database = CONSOLE_DATABASE;
  const link = ctx.openConsole(
    { write: (b) => session.socket.write(b), close: (reason) => session.close(Disconnect.ConsoleClosed, reason) },
    { user: outcome.user, admin: outcome.admin, processId: session.processId, secretKey: session.secretKey },
  );
  ctx.logger.info({ client: session.id, user: session.user, admin: outcome.admin, addr: session.remoteAddress }, 'admin console login');
  return link;
}

/**
 * A failed login: the error the client is sent. One line per failed login, whatever failed, with
 * the address and a stable code; a flood of them (a client retrying a wrong password) is counted
 * rather than written out.
 */
export function loginFailure(session: ClientSession, err: unknown, ctx: ProxyContext): PgRelayError {
  const error = err instanceof PgRelayError ? err : new PgRelayError(ErrorCode.ProtocolViolation, (err as ProtocolError | Error).message);
  ctx.stats.countLoginFailure(error.code);
  ctx.repeatLog.warn(
    `login-failed:${error.code}`,
    { client: session.id, user: session.user, database: session.database, addr: session.remoteAddress, port: session.remotePort, code: error.code, sqlstate: error.sqlstate },
    `client login failed: ${error.message}`,
    ctx.clock.now,
  );
  return error;
}
