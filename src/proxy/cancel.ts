// Cancel routing: a CancelRequest names a client by the BackendKeyData pgrelay gave it (never a
// real backend's), and reaches the server running that client's work with the server's own key.

import net from 'node:net';
import { randomInt } from 'node:crypto';
import { serialize } from '../protocol/frontend-messages.js';
import type { HostPort } from '../config/types.js';
import type { ProxyContext } from './context.js';

/** Finds the client a CancelRequest names and asks it to cancel; a wrong key is ignored, as PostgreSQL does. */
export function routeCancel(ctx: ProxyContext, processId: number, secretKey: number): void {
  const target = ctx.cancelKeys.get(processId);
  if (target === undefined || target.secretKey !== secretKey) {
    ctx.stats.cancelsIgnored++;
    return;
  }
  target.cancel();
}

/** Sends a CancelRequest for a server backend to its host (fire and forget, bounded by `timeoutMs`). */
export function sendCancel(address: HostPort, processId: number, secretKey: number, timeoutMs: number): void {
  const socket = net.connect({ host: address.host, port: address.port });
  socket.setTimeout(timeoutMs, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.once('connect', () => socket.end(serialize.cancel(processId, secretKey)));
}

/**
 * A BackendKeyData of pgrelay's own for a new client, its process id unused by any other client:
 * the client's cancel key never names a real backend.
 */
export function newBackendKey(cancelKeys: ReadonlyMap<number, unknown>): { processId: number; secretKey: number } {
  let processId = randomInt(1, 0x7fffffff);
  while (cancelKeys.has(processId)) processId = randomInt(1, 0x7fffffff);
  return { processId, secretKey: randomInt(-0x80000000, 0x7fffffff) };
}
