// A raw protocol client for tests that must control every message: logs in with trust, sends any
// frames (including incomplete pipelines with no Sync), and reads the replies one message at a
// time. Drivers hide exactly what the fault tests need to see, so this speaks bytes.

import net from 'node:net';
import { serialize } from '../../src/protocol/frontend-messages.js';

export interface WireMessage {
  /** The type byte as a character ('Z', 'E', 'C', ...). */
  readonly type: string;
  readonly body: Buffer;
}

export interface WireLogin {
  user?: string;
  database?: string;
  params?: Record<string, string>;
}

/** The fields of an ErrorResponse / NoticeResponse body, keyed by their one-letter codes. */
export function errorFields(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    out.set(code, body.toString('utf8', i + 1, end));
    i = end + 1;
  }
  return out;
}

export class WireClient {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: WireMessage[] = [];
  private waiter: (() => void) | null = null;
  /** Set once the socket closed (by either side). */
  closed = false;
  /** The BackendKeyData of the login. */
  processId = 0;
  secretKey = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      while (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < 1 + len) break;
        this.queue.push({ type: String.fromCharCode(this.buf[0]!), body: Buffer.from(this.buf.subarray(5, 1 + len)) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and logs in (trust); resolves after the first ReadyForQuery. */
  static async connect(port: number, login: WireLogin = {}, host = '127.0.0.1'): Promise<WireClient> {
    const socket = net.connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const c = new WireClient(socket);
    socket.write(startupMessage({ user: login.user ?? 'postgres', database: login.database ?? 'postgres', client_encoding: 'UTF8', ...login.params }));
    const msgs = await c.readUntilReady(1, 10_000);
    const err = msgs.find((m) => m.type === 'E');
    if (err !== undefined) throw new Error(`login failed: ${errorFields(err.body).get('M')}`);
    const key = msgs.find((m) => m.type === 'K');
    if (key !== undefined) {
      c.processId = key.body.readInt32BE(0);
      c.secretKey = key.body.readInt32BE(4);
    }
    return c;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** The next message; rejects after `timeoutMs` or when the connection closes first. */
  async next(timeoutMs = 10_000): Promise<WireMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.queue.shift();
      if (m !== undefined) return m;
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Messages up to and including the `count`-th ReadyForQuery. */
  async readUntilReady(count = 1, timeoutMs = 10_000): Promise<WireMessage[]> {
    const out: WireMessage[] = [];
    let seen = 0;
    while (seen < count) {
      const m = await this.next(timeoutMs);
      out.push(m);
      if (m.type === 'Z') seen++;
    }
    return out;
  }

  /** Everything that arrives within `ms` (for "nothing more comes" checks). */
  async readFor(ms: number): Promise<WireMessage[]> {
    const out: WireMessage[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return out;
      try {
        out.push(await this.next(left));
      } catch {
        return out;
      }
    }
  }

  /** Resolves once the server side closed the connection (or after `timeoutMs`, with false). */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      if (this.queue.length > 0) this.queue.shift();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.closed;
  }

  /** Messages received and not yet read. */
  get pending(): readonly WireMessage[] {
    return this.queue;
  }

  /** Sends Terminate and closes. */
  end(): void {
    if (!this.closed) this.socket.end(serialize.end());
  }

  /** Drops the TCP connection without a Terminate (a client that vanishes). */
  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A StartupMessage (protocol 3.0) with exactly these parameters. pg-protocol's own serializer
 * appends client_encoding=UTF8 after them, which would override a test's value.
 */
export function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

/** One simple-protocol Query. */
export const query = (sql: string): Buffer => serialize.query(sql);
/** Parse + Bind + Execute of the unnamed statement, without Sync. */
export const pbe = (sql: string, values: (string | null)[] = [], name = ''): Buffer =>
  Buffer.concat([serialize.parse({ text: sql, name }), serialize.bind({ statement: name, values }), serialize.execute()]);
export const sync = (): Buffer => serialize.sync();
export const flush = (): Buffer => serialize.flush();
export const parse = (sql: string, name = ''): Buffer => serialize.parse({ text: sql, name });

/** The types of a reply, as a string ("1", "2", "C", "Z" ...), for compact assertions. */
export const types = (msgs: readonly WireMessage[]): string => msgs.map((m) => m.type).join('');

/** The status byte of the last ReadyForQuery in `msgs`, as a character. */
export function lastStatus(msgs: readonly WireMessage[]): string | undefined {
  for (let i = msgs.length - 1; i >= 0; i--) if (msgs[i]!.type === 'Z') return String.fromCharCode(msgs[i]!.body[0]!);
  return undefined;
}
