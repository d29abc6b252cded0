// The client half of the janitor sweep: client_login_timeout, idle_transaction_timeout and
// client_idle_timeout, each ending the client with its reason and SQLSTATE.

import { TxStatus } from '../protocol/message-types.js';
import { SqlState } from '../protocol/sqlstate.js';
import { ClientState, type ClientSession } from './client-session.js';
import type { Settings } from '../config/types.js';

export function sweepClients(clients: Iterable<ClientSession>, settings: Settings, now: number): void {
  const login = settings.clientLoginTimeoutMs;
  const idleTx = settings.idleTransactionTimeoutMs;
  const idle = settings.clientIdleTimeoutMs;
  const expired: [ClientSession, string, string, string][] = [];
  for (const c of clients) {
    switch (c.state) {
      case ClientState.login:
        if (login > 0 && now - c.connectedAt >= login) expired.push([c, SqlState.ProtocolViolation, 'client_login_timeout', 'client_login_timeout']);
        break;
      case ClientState.active: {
        const s = c.server;
        // Idle in transaction: the server says T/E, nothing is outstanding, and the client is quiet.
        if (idleTx > 0 && s !== null && s.txStatus !== TxStatus.Idle && c.outstanding === 0 && now - c.lastActivity >= idleTx) {
          expired.push([c, SqlState.IdleInTransactionTimeout, 'terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)', 'idle_transaction_timeout']);
        }
        break;
      }
      case ClientState.idle:
        if (idle > 0 && now - c.lastActivity >= idle) expired.push([c, SqlState.ProtocolViolation, 'client_idle_timeout', 'client_idle_timeout']);
        break;
      case ClientState.waiting:
      case ClientState.linking:
      case ClientState.console:
      case ClientState.closed:
        break;
    }
  }
  for (const [c, code, message, reason] of expired) c.fatal(code, message, reason);
}
