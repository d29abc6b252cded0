// One client's prepared statements in transaction pooling: its own namespace of names, exactly as
// PostgreSQL keeps one per session, each name mapped to a registry statement whose server-side
// name derives from its text. The frames that name a statement are cut out of the client's stream
// (client-protocol.ts) and become FrameSteps here; a step is rendered against whichever server the
// client is linked to when the bytes go out: the Parse inserted when that server lacks the
// statement, the Bind/Describe with the server-side name, or nothing at all when pgrelay answers
// (a Close, a Parse of a statement the server already has).

import { Expect, StatementStep, type ClientName, type NameTable, type ReplyQueue } from './reply-queue.js';
import { internStatement, releaseStatement, retainStatement, variantOf, type Statement } from './statement-registry.js';
import type { ServerStatements } from './statement-lru.js';
import { Frontend } from '../protocol/message-types.js';
import {
  bindPrefix,
  closeStatement,
  CloseComplete,
  cstringEnd,
  deallocateTarget,
  describeStatement,
  duplicateStatementError,
  parseMessage,
  ParseComplete,
  PROBE_SQLSTATE,
  ProbeParse,
  queryMessage,
  readBind,
  readParse,
  readTarget,
  TargetKind,
  unknownStatementError,
  unnamedParse,
} from '../protocol/statement-messages.js';

/** Counters of the tracking, bumped as plain fields (metrics read them). */
export interface PreparedCounters {
  /** Parse messages pgrelay sent to servers with a server-side name (the client's or inserted). */
  preparesSent: number;
  /** A client's Parse, Bind or Describe found its statement already prepared on the server. */
  preparedHits: number;
  /** Statements closed on a server because its list was full. */
  preparedEvictions: number;
}

/** Shared by clients that never named a statement (never written: the first name makes a map). */
const NO_NAMES: Map<string, ClientName> = new Map();

const Op = { Parse: 0, Bind: 1, Describe: 2, Close: 3, Probe: 4, Forward: 5, Deallocate: 6 } as const;
type Op = (typeof Op)[keyof typeof Op];

/** A frame that names a statement, as it waits to be written to a server. */
export class FrameStep extends StatementStep {
  /** The statement (or variant) render() used on its server. */
  used: Statement | null = null;
  /** The frame (a view of the read until keep() copies it): only a Bind's rest is still needed. */
  private buf: Buffer;
  private start: number;
  private end: number;

  constructor(
    names: NameTable,
    statement: Statement | null,
    readonly op: Op,
    readonly expect: Expect,
    buf: Buffer,
    start: number,
    end: number,
    /** Where a Bind's portal name and statement name end (offsets into buf, like start). */
    private portalEnd = 0,
    private nameEnd = 0,
    /** The client's name for the statement, as sent (for errors pgrelay writes). */
    readonly clientName: Buffer | null = null,
    /** The client's name this frame prepares or uses (its statement can move to a variant). */
    readonly entry: ClientName | null = null,
  ) {
    super(names, statement);
    this.buf = buf;
    this.start = start;
    this.end = end;
  }

  /** Makes the step independent of the read buffer (it is held until a server is linked). */
  keep(): void {
    if (this.op !== Op.Bind && this.op !== Op.Forward && this.op !== Op.Deallocate) return;
    this.buf = Buffer.from(this.buf.subarray(this.start, this.end));
    this.end -= this.start;
    this.portalEnd -= this.start;
    this.nameEnd -= this.start;
    this.start = 0;
  }

  /** Whether the frame needs a server at all (a Close of a name is answered by pgrelay). */
  get needsServer(): boolean {
    return this.op !== Op.Close;
  }

  /**
   * Decides what goes to `server` for this frame and appends it to `out`; the server's list of
   * statements changes here, so the frames after this one see it. `settled`: nothing before this
   * frame is unanswered and the client's transaction is not failed, so a Parse of a statement the
   * server has can only succeed (PostgreSQL refuses most Parses in a failed transaction block).
   */
  render(server: ServerStatements, counters: PreparedCounters, out: Buffer[], settled: boolean): void {
    this.resolved = true;
    switch (this.op) {
      case Op.Parse: {
        const s = this.usedOn(server);
        if (server.has(s)) {
          server.touch(s);
          counters.preparedHits++;
          if (settled) {
            this.fake = ParseComplete;
            return;
          }
          // Let the server judge this Parse as PostgreSQL would (a failed transaction, an earlier
          // error in the pipeline), on a scratch statement closed first: its ParseComplete or
          // error is the client's, the CloseComplete before it is swallowed.
          out.push(CLOSE_SCRATCH, parseMessage(SCRATCH_Z, s.spec));
          this.injected = true;
          this.injectReply = CLOSE_COMPLETE;
          return;
        }
        out.push(parseMessage(s.nameZ, s.spec));
        this.addTo(server, s, counters);
        return;
      }
      case Op.Bind:
      case Op.Describe: {
        const s = this.usedOn(server);
        if (server.has(s)) {
          server.touch(s);
          counters.preparedHits++;
        } else {
          out.push(parseMessage(s.nameZ, s.spec));
          this.addTo(server, s, counters);
          this.injected = true;
        }
        if (this.op === Op.Bind) {
          out.push(bindPrefix(this.buf, this.start, this.end, this.portalEnd, this.nameEnd, s.nameZ));
          if (this.nameEnd + 1 < this.end) out.push(this.buf.subarray(this.nameEnd + 1, this.end));
        } else {
          out.push(describeStatement(s.nameZ));
        }
        return;
      }
      case Op.Probe:
        out.push(ProbeParse);
        return;
      case Op.Forward:
        out.push(this.buf.subarray(this.start, this.end));
        return;
      case Op.Deallocate: {
        // SQL DEALLOCATE of one of the client's names: the server's statement stays (others use
        // it). What runs instead deallocates a statement made for the purpose, so the client gets
        // the server's own replies, errors included (25P02 in a failed transaction).
        const probe = `pgrelay_dealloc_${server.nextProbe++}`;
        server.ownDeallocates++;
        this.injected = true;
        if (this.expect === Expect.Query) {
          // One Query: its extra CommandComplete (PREPARE) is swallowed.
          out.push(queryMessage(`PREPARE ${probe} AS SELECT 1; DEALLOCATE ${probe}`));
        } else {
          // The unnamed Parse of the extended protocol: the inserted Parse's ParseComplete is swallowed.
          out.push(parseMessage(Buffer.from(`${probe}\0`), Buffer.from('SELECT 1\0\0\0')), unnamedParse(`DEALLOCATE ${probe}`));
        }
        return;
      }
      case Op.Close:
        return;
    }
  }

  /**
   * The statement this frame's name uses on `server`. The server's copy may be one a frame of an
   * earlier Sync segment is still preparing: an error there would make the server skip that Parse,
   * and a Parse sent again would fail with 42P05 if it does not. Such a name moves to a variant of
   * the statement (its own server-side name), which this frame can rely on or prepare.
   */
  private usedOn(server: ServerStatements): Statement {
    const name = this.entry;
    let s = name !== null ? name.statement : this.statement!;
    for (let i = 1; server.has(s) && !server.usable(s, this.segment, name); i++) s = variantOf(this.statement!, i);
    if (name !== null && name.statement !== s) {
      retainStatement(s);
      releaseStatement(name.statement);
      name.statement = s;
    }
    this.used = s;
    return s;
  }

  private addTo(server: ServerStatements, s: Statement, counters: PreparedCounters): void {
    server.add(s, this.segment, this.op === Op.Parse ? this.entry : null);
    this.server = server;
    this.lruAdded = s;
    counters.preparesSent++;
  }
}

const NO_CLOSES: readonly Buffer[] = [];

/** The statement name of pgrelay's checking Parses (never used for anything else). */
const SCRATCH_Z = Buffer.from('pgrelay_check\0');
const CLOSE_SCRATCH = closeStatement(SCRATCH_Z);
const CLOSE_COMPLETE = 0x33;

/**
 * A server linked at a transaction's start keeps at most `max` statements: the least recently used
 * beyond that are closed, ahead of the client's messages (no portal can use them at this point).
 * Returns the Close messages; their CloseCompletes are queued first in `q`, to be swallowed.
 */
export function evictionCloses(statements: ServerStatements, q: ReplyQueue, max: number, counters: PreparedCounters): readonly Buffer[] {
  if (statements.size <= max) return NO_CLOSES;
  const victims = statements.evict(max);
  for (let i = victims.length - 1; i >= 0; i--) {
    const step = new StatementStep(null, null);
    step.evicted = victims[i]!;
    step.server = statements;
    step.resolved = true;
    q.unshift(Expect.Evict, step);
  }
  counters.preparedEvictions += victims.length;
  return victims.map((v) => closeStatement(v.nameZ));
}

export class ClientStatements implements NameTable {
  private map: Map<string, ClientName> = NO_NAMES;

  get size(): number {
    return this.map.size;
  }

  /** NameTable */
  forget(entry: ClientName): void {
    if (this.map.get(entry.name) !== entry) return;
    this.map.delete(entry.name);
    releaseStatement(entry.statement);
  }

  /** NameTable */
  restore(entry: ClientName): void {
    if (this.map === NO_NAMES) this.map = new Map();
    const now = this.map.get(entry.name);
    if (now !== undefined) releaseStatement(now.statement);
    this.map.set(entry.name, entry);
  }

  /**
   * The client ran DEALLOCATE ALL or DISCARD ALL: every name it made before that point is gone,
   * as in PostgreSQL. `seq` is the queue position of the statement that ran it.
   */
  dropBefore(seq: number): void {
    for (const entry of [...this.map.values()]) if (entry.seq < seq) this.forget(entry);
  }

  /** The client is gone. */
  clear(): void {
    for (const entry of this.map.values()) releaseStatement(entry.statement);
    this.map.clear();
  }

  /**
   * The step for a frame client-protocol.ts took because it names a statement: a Parse with a
   * name, a Bind of a named statement, a Describe or Close of one. `seq` is the queue position
   * its entry gets. A frame too malformed to read is forwarded as it is (the server refuses it).
   */
  stepFor(type: number, buf: Buffer, start: number, end: number, seq: number): FrameStep {
    switch (type) {
      case Frontend.Query: {
        const textEnd = cstringEnd(buf, start + 5, end);
        return this.deallocate(Expect.Query, buf, start, end, start + 5, textEnd < 0 ? end : textEnd);
      }
      case Frontend.Parse: {
        const p = readParse(buf, start, end);
        if (p === null) return this.forward(Expect.Parse, buf, start, end);
        if (p.nameEnd === start + 5) {
          // The unnamed statement: a SQL DEALLOCATE (taken for that), without parameter types.
          const textEnd = cstringEnd(buf, p.nameEnd + 1, end);
          if (buf.readInt16BE(textEnd + 1) !== 0) return this.forward(Expect.Parse, buf, start, end);
          return this.deallocate(Expect.Parse, buf, start, end, p.nameEnd + 1, textEnd);
        }
        const bytes = buf.subarray(start + 5, p.nameEnd);
        const name = bytes.toString('latin1');
        if (this.map.has(name)) {
          // PostgreSQL's 42P05, at this point of the pipeline: the server fails a probe here, so
          // it skips the rest until Sync and rolls back as PostgreSQL would have.
          const step = new FrameStep(this, null, Op.Probe, Expect.Parse, buf, start, end);
          step.replace = duplicateStatementError(bytes);
          step.replaceOnly = PROBE_SQLSTATE;
          return step;
        }
        const statement = internStatement(buf, p.nameEnd + 1, end);
        const entry: ClientName = { name, bytes: Buffer.from(bytes), statement, seq };
        if (this.map === NO_NAMES) this.map = new Map();
        this.map.set(name, entry);
        const step = new FrameStep(this, statement, Op.Parse, Expect.Parse, buf, start, end, 0, 0, null, entry);
        step.added = entry;
        return step;
      }
      case Frontend.Bind: {
        const b = readBind(buf, start, end);
        if (b === null) return this.forward(Expect.Bind, buf, start, end);
        return this.use(Op.Bind, Expect.Bind, buf, start, end, b.portalEnd, b.nameEnd);
      }
      case Frontend.Describe: {
        const d = readTarget(buf, start, end);
        if (d === null || d.kind !== TargetKind.Statement) return this.forward(Expect.Describe, buf, start, end);
        return this.use(Op.Describe, Expect.Describe, buf, start, end, start + 5, d.nameEnd);
      }
      case Frontend.Close: {
        const c = readTarget(buf, start, end);
        if (c === null || c.kind !== TargetKind.Statement) return this.forward(Expect.Close, buf, start, end);
        // Answered by pgrelay: the server's statement stays for others; only the name goes. A
        // name that does not exist is no error, as in PostgreSQL.
        const entry = this.map.get(buf.toString('latin1', start + 6, c.nameEnd));
        const step = new FrameStep(this, null, Op.Close, Expect.Close, buf, start, end);
        if (entry !== undefined) {
          this.map.delete(entry.name);
          step.removed = entry;
        }
        step.fake = CloseComplete;
        step.resolved = true;
        return step;
      }
      default:
        return this.forward(Expect.Execute, buf, start, end);
    }
  }

  /** A Bind or Describe of a named statement; `nameStart - 1` is the NUL or byte before the name. */
  private use(op: Op, expect: Expect, buf: Buffer, start: number, end: number, portalEnd: number, nameEnd: number): FrameStep {
    const bytes = buf.subarray(portalEnd + 1, nameEnd);
    const entry = this.map.get(bytes.toString('latin1'));
    if (entry === undefined) {
      // PostgreSQL's 26000 at this point of the pipeline (see the 42P05 case above).
      const step = new FrameStep(this, null, Op.Probe, expect, buf, start, end, 0, 0, Buffer.from(bytes));
      step.replace = unknownStatementError(bytes);
      return step;
    }
    return new FrameStep(this, entry.statement, op, expect, buf, start, end, portalEnd, nameEnd, entry.bytes, entry);
  }

  /**
   * A Query or unnamed Parse whose SQL (buf[from, to)) starts with DEALLOCATE. When it names one of
   * the client's statements (a driver evicting from its cache, as psycopg does), the name goes now
   * and its reply will say DEALLOCATE; anything else is the server's to run.
   */
  private deallocate(expect: Expect, buf: Buffer, start: number, end: number, from: number, to: number): FrameStep {
    const name = deallocateTarget(buf, from, to);
    const entry = name === null ? undefined : this.map.get(name);
    if (entry === undefined) return this.forward(expect, buf, start, end);
    this.map.delete(entry.name);
    const step = new FrameStep(this, null, Op.Deallocate, expect, buf, start, end);
    step.removed = entry;
    return step;
  }

  private forward(expect: Expect, buf: Buffer, start: number, end: number): FrameStep {
    return new FrameStep(this, null, Op.Forward, expect, buf, start, end);
  }
}
