// One admin console connection (database "pgbouncer") after login: frames the client's messages,
// runs each simple Query's statements in order, one Query at a time (later ones wait in the input
// buffer while e.g. PAUSE drains), and refuses the extended protocol as PgBouncer does.

import { AdminError, type Control } from '../control/contract.js';
import { EmptyQueryResponse, errorResponse, ReadyForQueryIdle, type ErrorFields } from '../protocol/backend-messages.js';
import { Frontend } from '../protocol/message-types.js';
import { PacketBuffer } from '../protocol/packet-buffer.js';
import { readCString } from '../protocol/readers.js';
import { ErrorCode, PgRelayError } from '../errors.js';
import { ConsoleError, parseStatement, splitStatements } from './console-parse.js';
import { parseCommand, type AdminCommand } from './console-commands.js';

/** Largest message accepted: console queries are short, so anything bigger is a mistake or abuse. */
export const MAX_CONSOLE_MESSAGE = 64 * 1024;
/** Most input held while a command runs (queries pipelined behind a PAUSE). */
export const MAX_CONSOLE_PENDING = 1024 * 1024;

export interface ConsoleIO {
  /** Writes protocol bytes to the client; the return value (backpressure) is not acted on: replies are small. */
  write(buf: Buffer): boolean;
  /** Ends the connection; `reason` is for the log. */
  close(reason: string): void;
}

export interface ConsoleOptions {
  readonly user: string;
  /** True for admin_users; false for stats_users, who may only SHOW. */
  readonly admin: boolean;
}

// The extended-protocol (and FunctionCall) message types: the console speaks simple Query only.
const EXTENDED: ReadonlySet<number> = new Set([
  Frontend.Parse,
  Frontend.Bind,
  Frontend.Execute,
  Frontend.Describe,
  Frontend.Close,
  Frontend.Sync,
  Frontend.Flush,
  Frontend.FunctionCall,
]);

function errorFields(err: unknown): ErrorFields {
  if (err instanceof ConsoleError) {
    const base = { severity: 'ERROR', code: err.sqlstate, message: err.message };
    return err.detail === undefined ? base : { ...base, detail: err.detail };
  }
  // Control's errors (no such database, already paused ...) are the caller's: 08P01 as PgBouncer.
  const e = err instanceof AdminError ? new PgRelayError(ErrorCode.AdminCommandFailed, err.message) : new PgRelayError(ErrorCode.Internal, `internal error: ${err instanceof Error ? err.message : String(err)}`);
  return { severity: 'ERROR', code: e.sqlstate, message: e.message };
}

export class ConsoleSession {
  private readonly input = new PacketBuffer();
  /** A Query is running; further input stays buffered until it is answered. */
  private busy = false;
  private closed = false;

  constructor(
    private readonly io: ConsoleIO,
    private readonly control: Control,
    private readonly opts: ConsoleOptions,
  ) {}

  onData(chunk: Buffer): void {
    if (this.closed) return;
    this.input.push(chunk);
    this.pump();
    if (this.busy && this.input.length > MAX_CONSOLE_PENDING) {
      this.fail(new PgRelayError(ErrorCode.ProtocolViolation, 'too much input queued behind a running command'), 'admin console input overflow');
    }
  }

  /** The connection is gone (client left or the lead closed it): stop writing, drop queued input. */
  onClose(): void {
    this.closed = true;
    this.input.drain();
  }

  private pump(): void {
    while (!this.busy && !this.closed) {
      let msg: Buffer | null;
      try {
        msg = this.input.takeTyped(MAX_CONSOLE_MESSAGE);
      } catch (err) {
        this.fail(new PgRelayError(ErrorCode.ProtocolViolation, (err as Error).message), 'admin console protocol violation');
        return;
      }
      if (msg === null) return;
      this.handle(msg);
    }
  }

  private handle(msg: Buffer): void {
    const type = msg[0]!;
    if (type === Frontend.Query) {
      let sql: string;
      try {
        sql = readCString(msg, 5, msg.length)[0];
      } catch (err) {
        this.fail(new PgRelayError(ErrorCode.ProtocolViolation, (err as Error).message), 'admin console protocol violation');
        return;
      }
      this.busy = true;
      this.runQuery(sql).then(
        () => {
          this.busy = false;
          this.pump();
        },
        (err: unknown) => this.fail(new PgRelayError(ErrorCode.Internal, `internal error: ${(err as Error).message}`), 'admin console internal error'),
      );
    } else if (type === Frontend.Terminate) {
      this.close('client sent Terminate');
    } else if (EXTENDED.has(type)) {
      this.fail(new PgRelayError(ErrorCode.ProtocolViolation, 'extended query protocol not supported by the admin console'), 'extended query protocol on the admin console');
    } else {
      this.fail(new PgRelayError(ErrorCode.ProtocolViolation, `unsupported message type '${String.fromCharCode(type)}' for the admin console`), 'admin console protocol violation');
    }
  }

  /**
   * The "Simple Query" message flow: each statement's reply in turn, the first error ends the
   * query, then one ReadyForQuery. Replies of synchronous commands are batched into one write;
   * the batch is flushed before waiting on an async one (PAUSE, WAIT_CLOSE).
   */
  private async runQuery(sql: string): Promise<void> {
    const statements = splitStatements(sql);
    if (statements.length === 0) {
      this.write([EmptyQueryResponse, ReadyForQueryIdle]);
      return;
    }
    const out: Buffer[] = [];
    const done: AdminCommand[] = [];
    for (const text of statements) {
      try {
        const cmd = parseCommand(parseStatement(text));
        if (!cmd.readOnly && !this.opts.admin) throw new ConsoleError('admin access needed');
        let reply = cmd.execute(this.control);
        if (reply instanceof Promise) {
          this.write(out.splice(0));
          reply = await reply;
          if (this.closed) return;
        }
        out.push(...reply);
        done.push(cmd);
      } catch (err) {
        if (this.closed) return;
        out.push(errorResponse(errorFields(err)));
        break;
      }
    }
    out.push(ReadyForQueryIdle);
    this.write(out);
    for (const cmd of done) cmd.afterReply?.(this.control);
  }

  private write(bufs: Buffer[]): void {
    if (this.closed || bufs.length === 0) return;
    this.io.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
  }

  /** A protocol-level error: report it (FATAL, as the connection ends) and close. */
  private fail(err: PgRelayError, reason: string): void {
    if (this.closed) return;
    this.write([errorResponse({ severity: 'FATAL', code: err.sqlstate, message: err.message })]);
    this.close(reason);
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.input.drain();
    this.io.close(reason);
  }
}
