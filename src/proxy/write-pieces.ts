// Writes a run of pieces (views of the current read and small frames pgrelay built) to a socket in
// order, in one writev(2) when nothing is queued on it: a rewritten Bind and the rest of the read
// go out as one system call, as the unrewritten read would have. The shared-buffer rule of
// socket-io.ts holds: whatever the kernel does not take is copied before this returns.

import { writevSync } from 'node:fs';
import type net from 'node:net';
import { handleOf, isEncrypted, writeView } from './socket-io.js';

/** Like writeView() for several pieces; false when the caller should wait for 'drain'. */
export function writePieces(socket: net.Socket, pieces: readonly Buffer[]): boolean {
  if (pieces.length === 1) return writeView(socket, pieces[0]!, 0, pieces[0]!.length);
  const handle = handleOf(socket);
  // A TLS socket encrypts in its stream (its descriptor carries records); writeView knows how.
  if (handle === null || isEncrypted(socket) || !socket.writable || socket.writableLength !== 0 || socket.connecting || handle.fd < 0) {
    let ok = true;
    for (const p of pieces) ok = writeView(socket, p, 0, p.length);
    return ok;
  }
  let written = 0;
  try {
    written = writevSync(handle.fd, pieces as Buffer[]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
      socket.destroy(err as Error);
      return false;
    }
  }
  // Whatever the kernel did not take is copied and queued in order (writeView queues a copy).
  let ok = true;
  for (const p of pieces) {
    if (written >= p.length) {
      written -= p.length;
      continue;
    }
    ok = writeView(socket, p, written, p.length);
    written = 0;
  }
  return ok;
}
