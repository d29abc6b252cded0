// The listeners of an accepted client socket, shared by every client: each finds its session
// through a symbol on the socket, so ten thousand idle clients cost no closures.

import type net from 'node:net';
import { readIntoShared } from './socket-io.js';

/** What the socket's events reach. */
export interface SocketOwner {
  /** A read; `chunk` is a view of the shared read buffer, valid only during this call. */
  onData(chunk: Buffer): void;
  /** The client's socket drained: a server paused for it may be read again. */
  onDrain(): void;
  onSocketError(err: Error): void;
  onSocketClosed(): void;
}

const OWNER = Symbol('pgrelay.clientSocketOwner');
type OwnedSocket = net.Socket & { [OWNER]?: SocketOwner };

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]!.onData(chunk);
}
function onDrain(this: OwnedSocket): void {
  this[OWNER]!.onDrain();
}
function onError(this: OwnedSocket, err: Error): void {
  this[OWNER]!.onSocketError(err);
}
function onClose(this: OwnedSocket): void {
  this[OWNER]!.onSocketClosed();
}

/** Routes the socket's reads and events to `owner`; reads land in the shared buffer (socket-io.ts). */
export function attachClientSocket(socket: net.Socket, owner: SocketOwner): void {
  socket.setNoDelay(true);
  (socket as OwnedSocket)[OWNER] = owner;
  readIntoShared(socket, onData);
  socket.on('drain', onDrain);
  socket.on('error', onError);
  socket.on('close', onClose);
}
