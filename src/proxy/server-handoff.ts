// Handing a server from one owner to the next: what runs on it before a client's bytes do (the
// server_check_query and the replay of the client's session parameters), and what happens to it
// when the release rule frees it or its client leaves while linked (the server-return policy).

import { TxStatus } from '../protocol/message-types.js';
import { replaySql, settingsSql } from './session-params.js';
import { Disconnect, ErrorCode, PgRelayError } from '../errors.js';
import type { Settings } from '../config/types.js';
import type { ReplyQueue } from './reply-queue.js';
import type { ServerConn } from './server-conn.js';
import { ServerQueryError } from './internal-query.js';

/** A client's settings that PostgreSQL does not report (see session-params.ts). */
export interface ClientSettings {
  readonly values: ReadonlyMap<string, string>;
  readonly signature: string;
}

/**
 * The SQL a server must run before it serves a client, or '': server_check_query when the server
 * has been idle longer than server_check_delay (PgBouncer's rule: prove it is alive), the SETs
 * that bring its tracked parameters to the client's, and the client's other settings (what
 * pgrelay set there for someone else RESET). One Query, one round trip; free when all match.
 */
export function linkQuery(settings: Settings, now: number, server: ServerConn, clientParams: ReadonlyMap<string, string>, clientSig: string, clientSettings?: ClientSettings): string {
  const checkSql = checkStatement(settings.serverCheckQuery);
  // server_check_delay 0 means every time. `now` is the coarse clock, which can lag the precise
  // time the pool stamped on the release, so 0 cannot rest on the subtraction.
  const delay = settings.serverCheckDelayMs;
  const check = checkSql !== '' && (delay === 0 || now - server.idleSince >= delay) ? `${checkSql};` : '';
  const replay = clientSig === server.paramsSignature ? '' : replaySql(clientParams, server.params);
  const others = clientSettings === undefined ? '' : settingsSql(clientSettings.values, clientSettings.signature, server);
  return check + replay + others;
}

// server_check_query without its trailing ';'s, kept for the setting's current text: this runs
// on every link, once per transaction, and a regular expression there showed in profiles.
let checkQueryText: string | null = null;
let checkQuerySql = '';
function checkStatement(text: string): string {
  if (text !== checkQueryText) {
    checkQueryText = text;
    checkQuerySql = text.trim().replace(/;*$/, '');
  }
  return checkQuerySql;
}

/** After a link query ran: the server now has exactly the client's settings. */
export function recordSettings(server: ServerConn, clientSettings: ClientSettings): void {
  server.setByUs = clientSettings.values;
  server.setByUsSig = clientSettings.signature;
  server.setByUsDirty = false;
}

export type PrepareOutcome =
  /** The server ran the check and the replay: the client's bytes may follow. */
  | { readonly kind: 'ready' }
  /** The server refused the client's own settings; it stays usable (released to the pool). */
  | { readonly kind: 'refused'; readonly error: PgRelayError }
  /** The server failed (lost, timed out) and was discarded; another one may serve the client. */
  | { readonly kind: 'lost'; readonly error: PgRelayError };

/**
 * Runs linkQuery()'s SQL on a server just linked to a client. On failure the server is unlinked
 * and disposed of, unless the client left meanwhile (its departure disposed of the server then).
 */
export async function prepareLinked(server: ServerConn, sql: string): Promise<PrepareOutcome> {
  const client = server.client;
  try {
    await server.runInternal(sql);
    server.endInternal();
    return { kind: 'ready' };
  } catch (err) {
    const stillOurs = server.client === client && client !== null;
    if (err instanceof ServerQueryError) {
      // The server answered, so it is in sync: what it refused is the client's own setting (a
      // bad client_encoding, an unknown option), and the client learns why, as PostgreSQL would
      // tell it at startup.
      if (stillOurs) {
        server.unlink();
        if (server.txStatus === TxStatus.Idle) server.release();
        else server.discard(Disconnect.PrepareFailed);
      }
      return { kind: 'refused', error: new PgRelayError(ErrorCode.SessionSettingRefused, `could not apply the session's settings on a server: ${err.message}`, err.sqlstate || undefined) };
    }
    if (stillOurs) {
      server.unlink();
      server.discard(Disconnect.PrepareFailed);
    }
    return { kind: 'lost', error: new PgRelayError(ErrorCode.ServerPrepareFailed, `could not prepare a server connection: ${(err as Error).message}`) };
  }
}

/** Where the departed client's protocol stood when it left. */
export interface Departure {
  /** Requests sent and not yet answered. */
  readonly outstanding: number;
  /** Extended-protocol messages sent since the last Sync. */
  readonly unsynced: boolean;
  /** No partial message was forwarded (the client's frame scanner is between frames). */
  readonly atBoundary: boolean;
  readonly transactionPooling: boolean;
}

/**
 * The client left while linked. A server is reused only when it stands at a protocol boundary
 * (see server-conn.ts): every request answered, no extended-protocol message since the last
 * Sync, no COPY, none of pgrelay's own queries running. Then an open transaction is rolled back
 * (ROLLBACK cannot commit anything), or in session pooling server_reset_query runs, under
 * server_cleanup_timeout. Anything else is closed: PostgreSQL rolls back whatever the backend had
 * not committed when its connection ends, and nobody else's Sync can commit it.
 */
export function returnAfterDeparture(server: ServerConn, left: Departure, settings: Settings): void {
  server.unlink();
  if (left.outstanding > 0 || !left.atBoundary) {
    server.discard(Disconnect.ClientLeftMidRequest);
    return;
  }
  if (left.unsynced) {
    server.discard(Disconnect.ClientLeftUnsynced);
    return;
  }
  if (server.copyIn || server.state === 'internal') {
    server.discard(Disconnect.ClientLeftBusy);
    return;
  }
  // Session pooling resets the session after the ROLLBACK (DISCARD ALL cannot run inside a
  // transaction block, so they are two queries).
  const reset = left.transactionPooling ? server.resetOnRelease : settings.serverResetQuery;
  server.resetThenRelease(server.txStatus !== TxStatus.Idle ? ['ROLLBACK', reset] : [reset]);
}

/**
 * The release rule fired (see server-conn.ts) and the client is unlinked. With tracking, the
 * client's reply queue is empty at every true boundary: entries left mean the bookkeeping and the
 * server disagree, and a server nobody can vouch for is closed, never reused. Otherwise a client's
 * SQL PREPARE must not reach the next client, and server_reset_query_always cleans the session
 * before anyone else can get it.
 */
export function returnAfterRelease(server: ServerConn, replies: ReplyQueue | null): void {
  if (replies !== null && replies.length > 0) {
    replies.clear();
    server.discard(Disconnect.InvalidServerMessage, 'replies left unmatched at the end of a transaction');
    return;
  }
  if (server.statements !== null) server.statements.ownDeallocates = 0;
  // The common end of a transaction: nothing to run, so no list of queries is built.
  if (!server.sqlStatementsTouched && server.resetOnRelease === '') server.release();
  else server.resetThenRelease([server.sqlStatementsTouched ? 'DEALLOCATE ALL' : '', server.resetOnRelease]);
}
