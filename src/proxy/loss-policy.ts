// What a client is told when the server running its work is lost: the one decision table behind
// "never tell a client 'I' while its transaction is open", and the replies of its FailRequests.

import type net from 'node:net';
import { TxStatus } from '../protocol/message-types.js';
import { errorResponse, ReadyForQueryIdle } from '../protocol/backend-messages.js';
import type { PgRelayError } from '../errors.js';

/** Where the client's protocol stood when its server went. */
export interface LossSite {
  /** The server was still being prepared for it (check query, SET replay): none of its bytes were sent. */
  readonly linking: boolean;
  /** The server sent the client a FATAL before it went. */
  readonly fatalForwarded: boolean;
  readonly transactionPooling: boolean;
  /** The status of the last ReadyForQuery the client was sent. */
  readonly txStatus: number;
  /** Requests sent and not yet answered. */
  readonly outstanding: number;
  /** Extended-protocol messages sent since the last Sync. */
  readonly unsynced: boolean;
  /** No partial message was forwarded. */
  readonly atBoundary: boolean;
}

/** The LossSite of a client whose protocol stands at `p`. */
export function lossSite(linking: boolean, fatalForwarded: boolean, transactionPooling: boolean, p: Omit<LossSite, 'linking' | 'fatalForwarded' | 'transactionPooling'>): LossSite {
  return { linking, fatalForwarded, transactionPooling, txStatus: p.txStatus, outstanding: p.outstanding, unsynced: p.unsynced, atBoundary: p.atBoundary };
}

export const LossAnswer = {
  /** Nothing reached the server: wait for another one, as if nothing happened. */
  Relink: 'relink',
  /** The client already has the server's FATAL: just end the connection. */
  End: 'end',
  /** Answer each unanswered request with an ERROR and an idle ReadyForQuery; the session goes on. */
  FailRequests: 'fail-requests',
  /** Close the client with a FATAL, as a backend crash would. */
  Fatal: 'fatal',
} as const;
export type LossAnswer = (typeof LossAnswer)[keyof typeof LossAnswer];

/**
 * The one case where the client may go on: transaction pooling, it believed no transaction was
 * open (its last ReadyForQuery said 'I'), and every request it sent is whole and complete (Syncs
 * included). Its unanswered autocommit statements failed; an idle ReadyForQuery after each error
 * is then exactly what PostgreSQL would say.
 *
 * Everything else gets a FATAL, as PostgreSQL's own backend death would give. Inside BEGIN ('T'
 * or 'E') an 'I' would turn the rest of the client's transaction into autocommit statements:
 * part 2 committed, part 1 lost. pgrelay cannot stand in for the lost transaction either (its
 * savepoints, its ROLLBACK TO, its prepared statements are gone), so the honest answer is the
 * one a backend crash gives. Session pooling always ends: the session's state is gone.
 */
export function answerToLoss(site: LossSite): LossAnswer {
  if (site.linking) return LossAnswer.Relink;
  if (site.fatalForwarded) return LossAnswer.End;
  if (site.transactionPooling && site.txStatus === TxStatus.Idle && site.outstanding > 0 && !site.unsynced && site.atBoundary) return LossAnswer.FailRequests;
  return LossAnswer.Fatal;
}

/**
 * Answers `count` unanswered requests (at least one) with an ERROR and an idle ReadyForQuery each,
 * as PostgreSQL would after a failed Sync segment. Only for a client whose last ReadyForQuery
 * said 'I' (see answerToLoss), or whose held requests never reached a server.
 */
export function failRequests(socket: net.Socket, count: number, err: PgRelayError): void {
  const reply = errorResponse({ severity: 'ERROR', code: err.sqlstate, message: err.message });
  socket.cork();
  for (let i = 0; i < Math.max(count, 1); i++) {
    socket.write(reply);
    socket.write(ReadyForQueryIdle);
  }
  socket.uncork();
}
