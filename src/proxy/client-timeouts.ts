// The client half of the janitor sweep: client_login_timeout, idle_transaction_timeout and
// client_idle_timeout, each ending the client with its reason and SQLSTATE.

import { TxStatus } from '../protocol/message-types.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import type { ClientSession } from './client-session.js';
import { ClientState } from './client-state.js';
import type { Settings } from '../config/types.js';

export function sweepClients(clients: Iterable<ClientSession>, settings: Settings, now: number): void {
  const login = settings.clientLoginTimeoutMs;
  const idleTx = settings.idleTransactionTimeoutMs;
  const idle = settings.clientIdleTimeoutMs;
  const expired: [ClientSession, PgRelayError][] = [];
  for (const c of clients) {
    switch (c.state) {
      case ClientState.login:
        if (login > 0 && now - c.connectedAt >= login) expired.push([c, new PgRelayError(ErrorCode.LoginTimeout, 'client_login_timeout')]);
        break;
      case ClientState.active: {
        const s = c.server;
        // Idle in transaction: the server says T/E, nothing is outstanding, and the client is quiet.
        if (idleTx > 0 && s !== null && s.txStatus !== TxStatus.Idle && c.protocol.outstanding === 0 && now - c.lastActivity >= idleTx) {
          expired.push([c, new PgRelayError(ErrorCode.IdleTransactionTimeout, 'terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)')]);
        }
        break;
      }
      case ClientState.idle:
        if (idle > 0 && now - c.lastActivity >= idle) expired.push([c, new PgRelayError(ErrorCode.ClientIdleTimeout, 'client_idle_timeout')]);
        break;
      case ClientState.waiting:
      case ClientState.linking:
      case ClientState.console:
      case ClientState.closed:
        break;
    }
  }
  for (const [c, err] of expired) c.fatal(err);
}
