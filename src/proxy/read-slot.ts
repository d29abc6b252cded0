// Where a server socket's reads go: the login exchange first, then the ServerConn that owns the
// connection. The socket reads into the shared read buffer (socket-io.ts), so chunk[0, len) is
// valid only during the call; whoever needs bytes later copies them.

import type net from 'node:net';
import { connectOnread } from './socket-io.js';

export class ReadSlot {
  /** The current owner's handler; replaced when the socket changes hands. */
  sink: (chunk: Buffer, len: number) => void = () => {};

  /** The `onread` option for net.connect(). */
  readonly onread: net.OnReadOpts = connectOnread((chunk, len) => this.sink(chunk, len));
}
