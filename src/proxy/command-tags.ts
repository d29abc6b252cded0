// What a CommandComplete tag tells pgrelay about a server's session: DISCARD ALL and DEALLOCATE
// ALL drop every prepared statement, SQL PREPARE and DEALLOCATE make statements pgrelay does not
// know of, and SET, RESET and DISCARD ALL change the settings pgrelay may have SET for a client.

/** The part of a server connection its CommandComplete tags update. */
export interface TaggedServer {
  /** Session settings pgrelay SET on this server (see session-params.ts). */
  setByUs: ReadonlyMap<string, string>;
  setByUsSig: string;
  setByUsDirty: boolean;
  /** A client ran SQL PREPARE or DEALLOCATE here (see ServerConn). */
  sqlStatementsTouched: boolean;
  /** The statements pgrelay prepared here; ownDeallocates counts its own DEALLOCATEs still to come. */
  readonly statements: { ownDeallocates: number } | null;
  /** A tracking client is linked (its replies are matched), or one of pgrelay's own queries runs. */
  readonly watchesStatements: boolean;
  /** A client is linked and its bytes are being forwarded. */
  readonly forwarding: boolean;
  /** Every prepared statement on the server is gone. */
  statementsDropped(): void;
}

/** Reads the CommandComplete frame buf[start, end) and records what its tag changed, if anything. */
export function onCommandTag(server: TaggedServer, buf: Buffer, start: number, end: number): void {
  // Only tags of these lengths can matter (SET 3, RESET 5, PREPARE 7, DEALLOCATE 10, DISCARD ALL
  // 11, DEALLOCATE ALL 14): SELECT n, INSERT 0 n and the like end here without a string.
  const len = end - start - 6;
  if (len !== 3 && len !== 5 && len !== 7 && len !== 10 && len !== 11 && len !== 14) return;
  const first = buf[start + 5];
  if (first !== 0x44 && first !== 0x50 && first !== 0x53 && first !== 0x52) return;
  const tag = buf.toString('latin1', start + 5, end - 1);
  switch (tag) {
    case 'DISCARD ALL':
      // Every setting back to its default, and every statement gone.
      server.setByUs = new Map();
      server.setByUsSig = '';
      server.setByUsDirty = false;
      server.statementsDropped();
      return;
    case 'DEALLOCATE ALL':
      server.statementsDropped();
      return;
    case 'DEALLOCATE':
      if (server.statements !== null && server.statements.ownDeallocates > 0) {
        server.statements.ownDeallocates--;
        return;
      }
      if (server.watchesStatements) server.sqlStatementsTouched = true;
      return;
    case 'PREPARE':
      if (server.watchesStatements) server.sqlStatementsTouched = true;
      return;
    case 'SET':
    case 'RESET':
      if (server.forwarding) server.setByUsDirty = true;
      return;
  }
}
