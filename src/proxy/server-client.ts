// What a server connection needs of the two parties around it: the client linked to it
// (ServerClient, told of each answer, each release and of the connection's loss) and the pool it
// goes back to (ServerOwner).

import type { ProtocolPosition } from './client-protocol.js';
import type { ServerConn } from './server-conn.js';

/** How a linked client learns that its server is gone. */
export interface ServerLoss {
  readonly reason: string;
  /** The server sent the client a FATAL before it went: the client expects its connection to end. */
  readonly fatalForwarded: boolean;
}

/** What a server connection needs of the client it is linked to. */
export interface ServerClient {
  /** Where the client stands in the protocol; the server counts its answers here. */
  readonly protocol: ProtocolPosition;
  readonly id: number;
  /** Writes server bytes to the client: carry, then chunk[from, end); false when the client's socket buffer is full. */
  forwardFromServer(carry: Buffer | null, chunk: Buffer, from: number, end: number): boolean;
  /** Writes bytes pgrelay made (its own ParseComplete, an error it replaced); false when the socket is full. */
  sendToClient(buf: Buffer): boolean;
  /** The server dropped every prepared statement on the client's behalf (DEALLOCATE ALL, DISCARD ALL). */
  onStatementsDropped?(seq: number): void;
  /** A session parameter changed by the client's own SET: it becomes part of its session state. */
  setParam(name: string, value: string): void;
  /** The link ended because of the release rule; the client goes idle. */
  onReleased(): void;
  /** The server connection broke while linked. */
  onServerLost(loss: ServerLoss): void;
  /** Whether the client's pool is in transaction mode (release at transaction end). */
  readonly transactionPooling: boolean;
  resumeReading(): void;
  /** A ReadyForQuery answered one of its requests (for the query-time statistics). */
  onAnswered?(): void;
}

/** Where a server connection goes back to, and who hears of its end (the pool, through the connector). */
export interface ServerOwner {
  /** A server at a protocol boundary, fit for the next client. */
  release(server: ServerConn): void;
  /** A server that must not be reused (it is closed already). */
  discard(server: ServerConn, code: string): void;
  /**
   * Told once when the connection is gone, whatever the cause: `code` is a stable Disconnect code,
   * `detail` the free text for the log, `byUs` whether pgrelay closed it.
   */
  onClosed(server: ServerConn, code: string, detail: string, byUs: boolean): void;
  /** server_cleanup_timeout in ms, read when each query of pgrelay's own starts (0 = none). */
  cleanupTimeoutMs(): number;
}
