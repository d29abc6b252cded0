// The connections auth_query runs on: a small pool per (hosts, database, auth_user), apart from
// the client pools, so that PAUSE (which holds client pools) never holds a login's lookup, and a
// lookup never takes a server a client is waiting for. One extended-protocol query per lookup,
// the user name bound as $1 (never spliced into SQL), under one deadline that covers connecting.

import type net from 'node:net';
import { serialize } from '../protocol/frontend-messages.js';
import { Parser, type BackendMessage } from '../protocol/backend-parser.js';
import { login, type LoginRequest } from '../proxy/server-login.js';
import type { ReadSlot } from '../proxy/read-slot.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import { wallClock } from '../proxy/read-clock.js';
import type { HostPort } from '../config/types.js';

/** Close a lookup connection idle longer than this (the janitor's sweep closes it). */
export const LOOKUP_IDLE_MS = 30_000;

/** What a lookup returned: the first row's first two columns, or no row. */
export type LookupRow = { readonly name: string | null; readonly secret: string | null } | null;

/** How to reach the database a pool's lookups run in. */
export interface LookupTarget {
  readonly hosts: readonly HostPort[];
  /** The login, minus the address (tried host by host). */
  readonly login: Omit<LoginRequest, 'address'>;
}

interface LookupConn {
  readonly socket: net.Socket;
  readonly reader: ReadSlot;
  idleSince: number;
}

interface Waiter {
  resolve(conn: LookupConn | null): void;
}

export class LookupPool {
  private readonly idle: LookupConn[] = [];
  private open = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly target: LookupTarget,
    private readonly maxSize: () => number,
  ) {}

  /** Connections open (idle or running a query). */
  get size(): number {
    return this.open;
  }

  /** Runs `sql` with $1 = `value`; rejects with AuthQueryFailed on any failure or past `deadline`. */
  async query(sql: string, value: string, deadline: number): Promise<LookupRow> {
    const conn = await this.acquire(deadline);
    let ok = false;
    try {
      const row = await runQuery(conn, sql, value, deadline);
      ok = true;
      return row;
    } finally {
      if (ok) this.release(conn);
      else this.discard(conn);
    }
  }

  /** Closes connections idle longer than LOOKUP_IDLE_MS; all of them with `all`. */
  sweep(now: number, all = false): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (all || now - c.idleSince >= LOOKUP_IDLE_MS) {
        this.idle.splice(i, 1);
        this.discard(c);
      }
    }
  }

  private async acquire(deadline: number): Promise<LookupConn> {
    for (let reused = this.idle.pop(); reused !== undefined; reused = this.idle.pop()) {
      // A connection the server closed while it was idle (a restart, idle_session_timeout).
      if (!reused.socket.destroyed && reused.socket.writable) return reused;
      this.discard(reused);
    }
    if (this.open < this.maxSize()) {
      this.open++;
      try {
        return await this.connect(deadline);
      } catch (err) {
        this.open--;
        this.handOnSlot();
        throw err;
      }
    }
    // Every connection is busy: wait for one, no longer than the lookup may take.
    const conn = await new Promise<LookupConn | null>((resolve) => {
      const waiter: Waiter = { resolve };
      this.waiters.push(waiter);
      setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          resolve(null);
        }
      }, Math.max(0, deadline - Date.now())).unref();
    });
    if (conn === null) throw timedOut();
    return conn;
  }

  private release(conn: LookupConn): void {
    conn.idleSince = wallClock();
    const w = this.waiters.shift();
    if (w !== undefined) w.resolve(conn);
    else this.idle.push(conn);
  }

  private discard(conn: LookupConn): void {
    conn.reader.sink = () => {};
    conn.socket.destroy();
    this.open--;
    this.handOnSlot();
  }

  /** A slot freed up: a waiter may open a connection of its own. */
  private handOnSlot(): void {
    const w = this.waiters.shift();
    if (w === undefined) return;
    this.open++;
    this.connect(Date.now() + this.target.login.connectTimeoutMs).then(
      (c) => w.resolve(c),
      () => {
        this.open--;
        w.resolve(null);
      },
    );
  }

  /** Logs in to the first host that accepts, within the deadline. */
  private async connect(deadline: number): Promise<LookupConn> {
    let last: Error = new Error('no hosts');
    for (const address of this.target.hosts) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const r = await login({ ...this.target.login, address, connectTimeoutMs: Math.min(left, this.target.login.connectTimeoutMs) });
        // A lookup connection that breaks while idle is noticed at its next use (the query fails).
        r.socket.on('error', () => {});
        return { socket: r.socket, reader: r.reader, idleSince: wallClock() };
      } catch (err) {
        last = err as Error;
      }
    }
    throw new PgRelayError(ErrorCode.AuthQueryFailed, `auth_query: cannot log in as "${this.target.login.user}" to database "${this.target.login.database}": ${last.message}`);
  }
}

function timedOut(): PgRelayError {
  return new PgRelayError(ErrorCode.AuthQueryFailed, 'auth_query did not answer within auth_query_timeout');
}

/** Parse, Bind ($1), Execute, Sync; the first DataRow's first two columns. */
function runQuery(conn: LookupConn, sql: string, value: string, deadline: number): Promise<LookupRow> {
  return new Promise<LookupRow>((resolve, reject) => {
    const parser = new Parser();
    let row: LookupRow = null;
    let error: string | null = null;
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.reader.sink = () => {};
      conn.socket.removeListener('close', onClose);
      if (err !== null) reject(err);
      else resolve(row);
    };
    const timer = setTimeout(() => finish(timedOut()), Math.max(0, deadline - Date.now()));
    timer.unref();
    const onClose = (): void => finish(new PgRelayError(ErrorCode.AuthQueryFailed, 'auth_query: the server closed the connection'));
    conn.socket.once('close', onClose);
    conn.reader.sink = (chunk: Buffer, len: number): void => {
      // Reads may be in the shared read buffer (socket-io.ts): the parser keeps partial messages.
      parser.parse(Buffer.from(chunk.subarray(0, len)), (msg: BackendMessage) => {
        const m = msg as BackendMessage & Record<string, unknown>;
        switch (msg.name) {
          case 'dataRow':
            if (row === null) {
              const fields = m['fields'] as (string | null)[];
              row = { name: fields[0] ?? null, secret: fields.length > 1 ? (fields[1] ?? null) : null };
            }
            return;
          case 'error':
            error ??= `${String(m['code'] ?? '')} ${String(m['message'])}`.trim();
            return;
          case 'readyForQuery':
            finish(error === null ? null : new PgRelayError(ErrorCode.AuthQueryFailed, `auth_query failed: ${error}`));
            return;
          default:
            return;
        }
      });
    };
    conn.socket.write(Buffer.concat([serialize.parse({ text: sql, types: [] }), serialize.bind({ values: [value] }), serialize.execute(), serialize.sync()]));
  });
}
