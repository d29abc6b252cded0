// Idle client connections for the memory measurement: raw TCP sockets that each complete a
// StartupMessage login (trust) up to ReadyForQuery and then stay silent. A hand-rolled client keeps
// our own footprint to a socket and a few bytes per connection, so 10,000 fit in one process.

import net from 'node:net';
import { rssBytes, sleep } from './proc.js';

const LOGIN_TIMEOUT_MS = 30_000;

/** StartupMessage (protocol 3.0): int32 length, int32 196608, name/value pairs, a final NUL. */
function startupMessage(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0pgrelay-bench\0\0`, 'utf8');
  const msg = Buffer.allocUnsafe(8 + body.length);
  msg.writeInt32BE(msg.length, 0);
  msg.writeInt32BE(196608, 4);
  body.copy(msg, 8);
  return msg;
}

/** Connects and logs in; resolves with the socket once the first ReadyForQuery ('Z') arrives. */
function login(port: number, startup: Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf: Buffer = Buffer.alloc(0);
    const fail = (why: string): void => {
      clearTimeout(timer);
      s.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail('login timed out'), LOGIN_TIMEOUT_MS);
    s.once('connect', () => s.write(startup));
    s.on('error', (e) => fail(e.message));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let pos = 0;
      while (buf.length - pos >= 5) {
        const type = buf[pos]!;
        const len = buf.readInt32BE(pos + 1);
        if (buf.length - pos < 1 + len) break;
        if (type === 0x45 /* ErrorResponse */) {
          fail(`ErrorResponse: ${buf.subarray(pos + 5, pos + 1 + len).toString('utf8').replace(/\0/g, ' ').trim()}`);
          return;
        }
        if (type === 0x5a /* ReadyForQuery */) {
          clearTimeout(timer);
          s.off('data', onData);
          // Idle from here on: keep the socket, ignore anything else (e.g. a later 57P01).
          s.removeAllListeners('error');
          s.on('error', () => {});
          s.on('data', () => {});
          resolve(s);
          return;
        }
        pos += 1 + len;
      }
      buf = buf.subarray(pos);
    };
    s.on('data', onData);
  });
}

export interface IdleResult {
  requested: number;
  opened: number;
  failed: number;
  firstError: string | null;
  rssBeforeBytes: number | null;
  /** RSS 2 s after the last login: includes what the login burst left behind (garbage, grown heaps). */
  rssAfterBytes: number | null;
  /** (after - before) / opened */
  bytesPerClient: number | null;
  /** RSS once the clients have been idle for `settleSec`: what keeping them open costs. */
  rssSettledBytes: number | null;
  /** (settled - before) / opened */
  bytesPerClientSettled: number | null;
  settleSec: number;
  openSec: number;
}

/**
 * Measures a proxy's RSS cost per idle client: one warm-up login (so the pool has its server
 * connection and login parameters), RSS, then `n` more logins `concurrency` at a time, RSS 2 s
 * later and again after `settleSec` of idleness. A garbage-collected process (node) returns the
 * login burst's garbage only after some seconds without allocation (V8's memory reducer); the
 * second figure is the steady cost, the first the peak. Every socket is closed before returning.
 */
export async function measureIdleClients(port: number, pid: number, n: number, concurrency = 64, settleSec = 30): Promise<IdleResult> {
  const startup = startupMessage('postgres', 'postgres');
  const sockets: net.Socket[] = [];
  let failed = 0;
  let firstError: string | null = null;
  try {
    sockets.push(await login(port, startup));
    await sleep(1000);
    const rssBeforeBytes = rssBytes(pid);
    const t0 = Date.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        next++;
        try {
          sockets.push(await login(port, startup));
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    const openSec = (Date.now() - t0) / 1000;
    // Let the proxy finish whatever per-login work is deferred, then read RSS.
    await sleep(2000);
    const rssAfterBytes = rssBytes(pid);
    await sleep(Math.max(0, settleSec * 1000 - 2000));
    const rssSettledBytes = rssBytes(pid);
    const opened = sockets.length - 1;
    const perClient = (after: number | null): number | null => (rssBeforeBytes !== null && after !== null && opened > 0 ? Math.round((after - rssBeforeBytes) / opened) : null);
    return {
      requested: n,
      opened,
      failed,
      firstError,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerClient: perClient(rssAfterBytes),
      rssSettledBytes,
      bytesPerClientSettled: perClient(rssSettledBytes),
      settleSec,
      openSec: Math.round(openSec * 10) / 10,
    };
  } finally {
    for (const s of sockets) s.destroy();
  }
}
