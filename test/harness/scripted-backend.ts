// A fake PostgreSQL on a loopback socket for session tests: it logs each connection in
// (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery 'I'), answers each expected
// sequence of client messages with scripted bytes, and records exactly what it received. A
// CancelRequest arriving on a connection of its own is recorded too, as PostgreSQL would take it.

import net from 'node:net';
import { frame } from './frames.js';

/** One message the backend received, as it arrived. */
export interface ReceivedMessage {
  /** The type byte as a character ('Q', 'P', 'S', 'X', ...). */
  readonly type: string;
  readonly body: Buffer;
  /** The whole frame, type byte and length included. */
  readonly bytes: Buffer;
}

/** What a step answers: frames to write, 'close' to drop the connection (a lost server), or a function deciding later. */
export type Reply = readonly Buffer[] | 'close' | ((got: readonly ReceivedMessage[]) => readonly Buffer[] | 'close' | Promise<readonly Buffer[] | 'close'>);

export interface Step {
  /** The type letters of the messages this step answers, in order ('Q', 'PBES'). */
  readonly expect: string;
  readonly reply: Reply;
}

export interface CancelPacket {
  readonly processId: number;
  readonly secretKey: number;
}

export interface ScriptedBackendOptions {
  /** ParameterStatus sent at login; the defaults are a writable PostgreSQL 16 in UTF8. */
  readonly params?: Record<string, string>;
  /** The script of the i-th connection (0: the first, which pgrelay opens when its first client logs in). */
  readonly scripts?: readonly (readonly Step[])[];
}

const PROTOCOL_30 = 196608;
const CANCEL_REQUEST = 80877102;
const SSL_REQUEST = 80877103;

export const DEFAULT_PARAMS: Readonly<Record<string, string>> = {
  server_version: '16.0',
  server_encoding: 'UTF8',
  client_encoding: 'UTF8',
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  integer_datetimes: 'on',
  standard_conforming_strings: 'on',
  in_hot_standby: 'off',
  default_transaction_read_only: 'off',
};

// ---- backend message builders ----------------------------------------------------------------

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);

export const readyForQuery = (status: 'I' | 'T' | 'E'): Buffer => frame('Z', Buffer.from(status));
export const commandComplete = (tag: string): Buffer => frame('C', cstr(tag));
export const parseComplete = (): Buffer => frame('1');
export const bindComplete = (): Buffer => frame('2');
/** A DataRow of text columns. */
export function dataRow(...values: string[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(values.length, 0);
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(Buffer.byteLength(v), 0);
    parts.push(len, Buffer.from(v));
  }
  return frame('D', Buffer.concat(parts));
}
export function errorResponse(severity: 'ERROR' | 'FATAL', code: string, message: string): Buffer {
  return frame('E', Buffer.concat([cstr(`S${severity}`), cstr(`V${severity}`), cstr(`C${code}`), cstr(`M${message}`), Buffer.from([0])]));
}
/** CopyInResponse: text format, `columns` text columns. */
export function copyInResponse(columns = 1): Buffer {
  const body = Buffer.alloc(3 + 2 * columns);
  body.writeInt16BE(columns, 1);
  return frame('G', body);
}
export function parameterStatus(name: string, value: string): Buffer {
  return frame('S', Buffer.concat([cstr(name), cstr(value)]));
}
function backendKeyData(processId: number, secretKey: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(processId, 0);
  body.writeInt32BE(secretKey, 4);
  return frame('K', body);
}

// ---- the backend -----------------------------------------------------------------------------

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); ) {
    if (Date.now() > end) throw new Error(`scripted backend: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One server connection of the fake backend, after its StartupMessage. */
export class ScriptedConnection {
  /** Every message received after the StartupMessage, in order. */
  readonly received: ReceivedMessage[] = [];
  /** The same bytes as the socket delivered them, one entry per read. */
  readonly reads: Buffer[] = [];
  /** Steps whose expectation the received messages did not meet ("expected Q, got PBE"). */
  readonly mismatches: string[] = [];
  closed = false;
  private readonly steps: Step[] = [];
  /** Received messages no step has answered yet. */
  private readonly unanswered: ReceivedMessage[] = [];
  private answering = false;
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    readonly index: number,
    private readonly socket: net.Socket,
    /** The StartupMessage parameters (user, database, ...). */
    readonly startup: ReadonlyMap<string, string>,
    readonly processId: number,
    readonly secretKey: number,
  ) {
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** The types of everything received, as one string ("QQX"). */
  get types(): string {
    return this.received.map((m) => m.type).join('');
  }

  /** Appends steps to this connection's script. */
  script(...steps: Step[]): void {
    this.steps.push(...steps);
    void this.answer();
  }

  /** Writes frames now, outside the script. */
  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** Drops the connection without a word, as a crashed backend or a cut network would. */
  close(): void {
    this.socket.destroy();
  }

  waitForMessages(count: number, timeoutMs = 10_000): Promise<void> {
    return until(() => this.received.length >= count, timeoutMs, `no ${count} messages (got "${this.types}")`);
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    return until(() => this.closed, timeoutMs, `connection ${this.index} not closed`);
  }

  /** Bytes read after the StartupMessage. */
  onData(chunk: Buffer): void {
    this.reads.push(Buffer.from(chunk));
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 5) {
      const len = this.buf.readInt32BE(1);
      if (this.buf.length < 1 + len) break;
      const bytes = Buffer.from(this.buf.subarray(0, 1 + len));
      const m: ReceivedMessage = { type: String.fromCharCode(bytes[0]!), body: bytes.subarray(5), bytes };
      this.received.push(m);
      this.unanswered.push(m);
      this.buf = this.buf.subarray(1 + len);
    }
    void this.answer();
  }

  /** Runs the script's steps, one at a time, as their messages arrive. */
  private async answer(): Promise<void> {
    if (this.answering) return;
    this.answering = true;
    try {
      for (;;) {
        const step = this.steps[0];
        if (step === undefined || this.unanswered.length < step.expect.length || this.closed) return;
        this.steps.shift();
        const got = this.unanswered.splice(0, step.expect.length);
        const types = got.map((m) => m.type).join('');
        if (types !== step.expect) {
          this.mismatches.push(`expected ${step.expect}, got ${types}`);
          return;
        }
        const reply = typeof step.reply === 'function' ? await step.reply(got) : step.reply;
        if (reply === 'close') this.close();
        else if (reply.length > 0 && !this.closed) this.socket.write(Buffer.concat(reply));
      }
    } finally {
      this.answering = false;
    }
  }
}

export class ScriptedBackend {
  readonly connections: ScriptedConnection[] = [];
  /** CancelRequests received, in order. */
  readonly cancels: CancelPacket[] = [];
  /** Mismatched steps of every connection. */
  get mismatches(): string[] {
    return this.connections.flatMap((c) => c.mismatches.map((m) => `connection ${c.index}: ${m}`));
  }
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly listener: net.Server,
    readonly port: number,
    private readonly opts: ScriptedBackendOptions,
  ) {
    listener.on('connection', (s: net.Socket) => this.accept(s));
  }

  readonly host = '127.0.0.1';

  waitConnections(count: number, timeoutMs = 10_000): Promise<void> {
    return until(() => this.connections.length >= count, timeoutMs, `no ${count} connections (got ${this.connections.length})`);
  }

  waitCancels(count: number, timeoutMs = 10_000): Promise<void> {
    return until(() => this.cancels.length >= count, timeoutMs, `no ${count} CancelRequests`);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    let pre: Buffer = Buffer.alloc(0);
    let conn: ScriptedConnection | null = null;
    socket.on('data', (d: Buffer) => {
      if (conn !== null) {
        conn.onData(d);
        return;
      }
      pre = Buffer.concat([pre, d]);
      while (conn === null && pre.length >= 8) {
        const len = pre.readInt32BE(0);
        if (pre.length < len) return;
        const code = pre.readInt32BE(4);
        const packet = pre.subarray(0, len);
        pre = pre.subarray(len);
        if (code === SSL_REQUEST) {
          socket.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST) {
          this.cancels.push({ processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12) });
          socket.end();
          return;
        }
        if (code !== PROTOCOL_30) {
          socket.destroy();
          return;
        }
        conn = this.login(socket, packet);
        if (pre.length > 0) conn.onData(pre);
      }
    });
  }

  private login(socket: net.Socket, packet: Buffer): ScriptedConnection {
    const startup = new Map<string, string>();
    const fields = packet.subarray(8).toString('utf8').split('\0');
    for (let i = 0; i + 1 < fields.length && fields[i] !== ''; i += 2) startup.set(fields[i]!, fields[i + 1]!);
    const index = this.connections.length;
    // A key of its own per connection, unlike any key pgrelay gives its clients' sessions.
    const conn = new ScriptedConnection(index, socket, startup, 70_000 + index, 0x5eed0000 + index);
    this.connections.push(conn);
    const params = { ...DEFAULT_PARAMS, ...this.opts.params };
    const ok = Buffer.alloc(4); // AuthenticationOk: auth request 0
    socket.write(
      Buffer.concat([
        frame('R', ok),
        ...Object.entries(params).map(([k, v]) => parameterStatus(k, v)),
        backendKeyData(conn.processId, conn.secretKey),
        readyForQuery('I'),
      ]),
    );
    const script = this.opts.scripts?.[index];
    if (script !== undefined) conn.script(...script);
    return conn;
  }
}

/** Starts a scripted backend on a free loopback port. Stop it with stop(). */
export async function startScriptedBackend(opts: ScriptedBackendOptions = {}): Promise<ScriptedBackend> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  return new ScriptedBackend(listener, port, opts);
}
