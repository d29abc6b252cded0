// The replies a client's messages still expect from the server, in order: one entry per message
// that PostgreSQL answers (Parse, Bind, Describe, Execute, Close, Sync, Query, FunctionCall), in a
// ring of bytes that costs no allocation per message. It exists only when pgrelay tracks prepared
// statements; it is what lets the server side swallow the ParseComplete of a Parse pgrelay inserted,
// answer a Close itself at the right point, and undo what a failed or skipped message would have
// done ("Message Flow": after an ErrorResponse PostgreSQL skips everything until Sync).
//
// Entries for frames that name a statement carry a StatementStep: what the frame changed (the
// client's names, the server's statements) so that a reply can commit it and an error undo it.

import type { ServerStatements } from './statement-lru.js';
import { releaseStatement, retainStatement, type Statement } from './statement-registry.js';

/** What an entry expects (the frontend message that is waiting for its answer). */
export const Expect = {
  Parse: 1,
  Bind: 2,
  Describe: 3,
  Execute: 4,
  Close: 5,
  Sync: 6,
  Query: 7,
  FunctionCall: 8,
  /** A Close pgrelay sent to evict a statement: its CloseComplete is not the client's. */
  Evict: 9,
} as const;
export type Expect = (typeof Expect)[keyof typeof Expect];

/** A name in a client's namespace (see client-statements.ts). */
export interface ClientName {
  readonly name: string;
  /** The name as the client sent it (its bytes, for error messages). */
  readonly bytes: Buffer;
  /** What it names; a variant of it after a server could not be relied on (FrameStep.render). */
  statement: Statement;
  /** The queue position of the Parse that made it (for DEALLOCATE ALL, which drops earlier ones). */
  readonly seq: number;
}

/** Where a client's names live, as the steps need it. */
export interface NameTable {
  /** Removes `entry` if the name still maps to it; drops its reference. */
  forget(entry: ClientName): void;
  /** Puts back an entry a Close removed (the Close was skipped). */
  restore(entry: ClientName): void;
}

/**
 * The bookkeeping of one frame that names a statement. Built when the frame is scanned (the
 * client's namespace changes at once, so later frames of the same pipeline see it), resolved
 * against a server when it is written (the server's statements change then), and finally either
 * committed by its reply or undone because PostgreSQL never ran it.
 */
export class StatementStep {
  /** Decided what to send (or that nothing needs sending). */
  resolved = false;
  /** pgrelay answers this frame itself with these bytes (ParseComplete, CloseComplete). */
  fake: Buffer | null = null;
  /** A Parse was inserted before this Bind/Describe; its ParseComplete is swallowed. */
  injected = false;
  /** That Parse's ParseComplete came: the statement exists on the server. */
  injectDone = false;
  /** The server's error for this frame is replaced by these bytes (PostgreSQL's own answer). */
  replace: Buffer | null = null;
  /** Replace only an error with this SQLSTATE (null: any error). */
  replaceOnly: string | null = null;
  /** The statement this frame (or the Parse inserted for it) added to `server`'s list. */
  lruAdded: Statement | null = null;
  /** The statement an eviction Close took out of `server`'s list. */
  evicted: Statement | null = null;
  server: ServerStatements | null = null;
  /** A client name this frame created (Parse), or removed (Close). */
  added: ClientName | null = null;
  removed: ClientName | null = null;
  /** The Sync segment the frame belongs to (see ReplyQueue.segments), and its queue position. */
  segment = 0;
  seq = -1;
  /** The reply of the message pgrelay put first: ParseComplete (a Parse), or CloseComplete (a Close). */
  injectReply = 0x31;

  /** commit() or undo() ran (each step ends exactly once). */
  private ended = false;

  constructor(
    readonly names: NameTable | null,
    /**
     * The statement the frame is about, referenced until the step ends: a name dropped meanwhile
     * (DEALLOCATE ALL) must not let it leave the registry while the frame still needs it.
     */
    readonly statement: Statement | null,
  ) {
    if (statement !== null) retainStatement(statement);
  }

  /** The reply came: what the frame did stands. */
  commit(): void {
    if (this.ended) return;
    this.ended = true;
    // The Parse this frame sent (or had sent before it) was answered: the statement is there.
    if (this.lruAdded !== null) this.server?.confirm(this.lruAdded);
    if (this.removed !== null) releaseStatement(this.removed.statement);
    if (this.evicted !== null) releaseStatement(this.evicted);
    if (this.statement !== null) releaseStatement(this.statement);
    this.removed = null;
    this.evicted = null;
  }

  /**
   * PostgreSQL did not run the frame (it failed, or was skipped after an earlier error, or the
   * server is gone): undo its effects. Undone newest first, so names reused within one pipeline
   * come back to what they were.
   */
  undo(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.added !== null) this.names?.forget(this.added);
    if (this.removed !== null) this.names?.restore(this.removed);
    // A Bind's inserted Parse that completed made the statement; only the Bind failed.
    if (this.lruAdded !== null && !this.injectDone) this.server?.remove(this.lruAdded);
    if (this.evicted !== null) this.server?.restore(this.evicted);
    if (this.statement !== null) releaseStatement(this.statement);
    this.added = null;
    this.removed = null;
    this.lruAdded = null;
    this.evicted = null;
  }
}

const INITIAL = 16;
const EMPTY_KINDS = new Uint8Array(0);

export class ReplyQueue {
  // Allocated by the first push: a client that never sends anything costs nothing here.
  private kinds = EMPTY_KINDS;
  private steps: (StatementStep | undefined)[] = [];
  private head = 0;
  length = 0;
  /** Entries ever pushed: an entry's sequence number is its position in that count. */
  pushed = 0;
  /** Sync, Query and FunctionCall entries ever pushed: the number of the Sync segment being queued. */
  segments = 0;
  /**
   * Entries pushed before the client's last Sync, Query, FunctionCall or Flush: PostgreSQL keeps
   * its replies until one of those (or a full output buffer), so pgrelay's own answers for entries
   * at or after this mark wait too.
   */
  flushed = 0;
  /**
   * An extended-protocol message failed and no Sync was queued after it: the server skips every
   * message until the next Sync, so those are not queued (and their steps are undone).
   */
  skipUntilSync = false;
  /**
   * The server is in COPY FROM STDIN for an extended-protocol Execute: it ignores Sync (and Flush)
   * until the client's CopyDone or CopyFail, so such Syncs expect nothing.
   */
  ignoreSyncs = false;

  /** The kind of the oldest entry, or 0 when empty. */
  get headKind(): number {
    return this.length === 0 ? 0 : this.kinds[this.head]!;
  }

  get headStep(): StatementStep | undefined {
    return this.length === 0 ? undefined : this.steps[this.head];
  }

  /** The sequence number the oldest entry has. */
  get headSeq(): number {
    return this.pushed - this.length;
  }

  /** The kind of the entry `i` places after the oldest (0 when there is none). */
  kindAt(i: number): number {
    return i < this.length ? this.kinds[(this.head + i) & (this.kinds.length - 1)]! : 0;
  }

  stepAt(i: number): StatementStep | undefined {
    return i < this.length ? this.steps[(this.head + i) & (this.kinds.length - 1)] : undefined;
  }

  push(kind: Expect, step?: StatementStep): void {
    if (this.length === this.kinds.length) this.grow();
    const i = (this.head + this.length) & (this.kinds.length - 1);
    this.kinds[i] = kind;
    this.steps[i] = step;
    this.length++;
    this.pushed++;
    if (kind === Expect.Sync || kind === Expect.Query || kind === Expect.FunctionCall) {
      this.segments++;
      this.flushed = this.pushed;
    }
  }

  /** The client sent Flush: PostgreSQL sends what it has. */
  flush(): void {
    this.flushed = this.pushed;
  }

  /** Whether every entry before sequence number `seq` is an eviction Close pgrelay queued first. */
  onlyEvictionsBefore(seq: number): boolean {
    const n = Math.min(this.length, seq - this.headSeq);
    for (let i = 0; i < n; i++) if (this.kindAt(i) !== Expect.Evict) return false;
    return true;
  }

  /** Queues an entry before all others (a Close pgrelay sends ahead of the client's messages). */
  unshift(kind: Expect, step?: StatementStep): void {
    if (this.length === this.kinds.length) this.grow();
    this.head = (this.head - 1) & (this.kinds.length - 1);
    this.kinds[this.head] = kind;
    this.steps[this.head] = step;
    this.length++;
    this.pushed++;
  }

  /**
   * pgrelay's own answers (ParseComplete, CloseComplete) at the head: every reply before them has
   * been sent, so they go now, through `send`, once the client has asked PostgreSQL to flush
   * (`flushing`: the server is sending, so it flushed). False when `send` reported a full socket.
   */
  answerDue(send: (answer: Buffer) => boolean, flushing = false): boolean {
    let ok = true;
    for (let step = this.headStep; step !== undefined && step.fake !== null && step.resolved && (flushing || step.seq < this.flushed); step = this.headStep) {
      this.shift();
      step.commit();
      ok = send(step.fake) && ok;
    }
    return ok;
  }

  /** Removes the oldest entry; returns its step. */
  shift(): StatementStep | undefined {
    const step = this.steps[this.head];
    this.steps[this.head] = undefined;
    this.head = (this.head + 1) & (this.kinds.length - 1);
    this.length--;
    return step;
  }

  /**
   * The oldest entry failed with an ErrorResponse: it and everything queued after it up to the
   * next Sync are dropped (PostgreSQL skips them) and their steps undone. When no Sync is queued,
   * what the client sends next is skipped too, until its Sync. Returns how many Query and
   * FunctionCall entries were dropped (they were counted as outstanding and will get no answer).
   */
  failHead(): number {
    let requests = 0;
    const undone: StatementStep[] = [];
    while (this.length > 0 && this.kinds[this.head] !== Expect.Sync) {
      const kind = this.kinds[this.head]!;
      if (kind === Expect.Query || kind === Expect.FunctionCall) requests++;
      const step = this.shift();
      if (step !== undefined) undone.push(step);
    }
    for (let i = undone.length - 1; i >= 0; i--) undone[i]!.undo();
    if (this.length === 0) this.skipUntilSync = true;
    return requests;
  }

  /**
   * The server entered COPY FROM STDIN for the extended-protocol Execute at the head: the Syncs
   * queued right behind it were read by the COPY and ignored. Returns how many were dropped.
   */
  dropSyncsAfterHead(): number {
    let dropped = 0;
    while (this.length > 1 && this.kindAt(1) === Expect.Sync) {
      // Remove the entry after the head: shift the head into its place.
      const mask = this.kinds.length - 1;
      const second = (this.head + 1) & mask;
      this.kinds[second] = this.kinds[this.head]!;
      this.steps[second] = this.steps[this.head];
      this.steps[this.head] = undefined;
      this.head = second;
      this.length--;
      dropped++;
    }
    return dropped;
  }

  /** Forgets every entry, undoing their steps (newest first): the server is gone or the requests were answered by pgrelay. */
  clear(): void {
    for (let i = this.length - 1; i >= 0; i--) this.stepAt(i)?.undo();
    for (let i = 0; i < this.length; i++) this.steps[(this.head + i) & (this.kinds.length - 1)] = undefined;
    this.head = 0;
    this.length = 0;
    this.skipUntilSync = false;
    this.ignoreSyncs = false;
  }

  private grow(): void {
    const n = this.kinds.length;
    const size = n === 0 ? INITIAL : n * 2;
    const kinds = new Uint8Array(size);
    const steps = new Array<StatementStep | undefined>(size);
    for (let i = 0; i < this.length; i++) {
      const from = (this.head + i) & (n - 1);
      kinds[i] = this.kinds[from]!;
      steps[i] = this.steps[from];
    }
    this.kinds = kinds;
    this.steps = steps;
    this.head = 0;
  }
}
