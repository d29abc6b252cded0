// The server side of prepared-statement tracking: each reply that answers a message is matched,
// at its header, to the linked client's reply queue (reply-queue.ts). It swallows the
// ParseComplete of a Parse pgrelay inserted and the CloseComplete of an eviction, writes pgrelay's
// own ParseComplete/CloseComplete right after the reply they follow, and on an ErrorResponse
// drops what PostgreSQL skips until Sync and undoes what those messages did. A reply the queue
// did not expect means the bookkeeping and the server disagree: the server is closed.

import { frameModes, Verdict } from '../protocol/frame-scanner.js';
import { Backend } from '../protocol/message-types.js';
import { readErrorFields } from '../protocol/readers.js';
import { unknownStatementError, withHint } from '../protocol/statement-messages.js';
import { Expect, type ReplyQueue } from './reply-queue.js';
import type { FrameStep } from './client-statements.js';
import type { ServerStatements } from './statement-lru.js';
import type { ServerClient } from './server-client.js';
import { SqlState } from '../protocol/sqlstate.js';

/**
 * Every reply that answers a message is decided at its header (ParseComplete, BindComplete,
 * CloseComplete, NoData, RowDescription, CommandComplete, EmptyQueryResponse, PortalSuspended,
 * ReadyForQuery, ErrorResponse). Rows and copy data still pass unseen.
 */
export const TRACKING_SERVER_FRAMES = frameModes(
  [],
  [Backend.ParameterStatus, Backend.CopyInResponse, Backend.CopyBothResponse],
  [
    Backend.ParseComplete,
    Backend.BindComplete,
    Backend.CloseComplete,
    Backend.NoData,
    Backend.RowDescription,
    Backend.CommandComplete,
    Backend.EmptyQueryResponse,
    Backend.PortalSuspended,
    Backend.ReadyForQuery,
    Backend.ErrorResponse,
  ],
);

/**
 * How much of a reply the decision sees: a whole ReadyForQuery, and a whole CommandComplete of
 * the tags that matter (DEALLOCATE ALL is the longest), read there at once.
 */
export const SERVER_DECIDE_PEEK = 20;

/** Added to a 26000 that a simple query drew: SQL-level PREPARE does not outlive the transaction here. */
export const SQL_PREPARE_HINT =
  'pgrelay pools server connections per transaction: a statement made with SQL PREPARE exists only until the end of its transaction. Use the protocol-level prepared statements of the driver, or pool_mode = session.';

/** What the tracking needs of its server connection. */
export interface TrackedServer {
  readonly statements: ServerStatements | null;
  /** A COPY FROM STDIN is in progress. */
  readonly copyIn: boolean;
  /** The plain observations of a whole reply: ReadyForQuery's release rule, errors, tags. */
  onFrame(type: number, buf: Buffer, start: number, end: number): void;
  /** A reply the queue did not expect: close the connection and tell the client. */
  lostTrack(detail: string): void;
}

/** What a reply does to a plain entry at the head of the queue (one with no StatementStep). */
const Plain = {
  /** Not a plain answer: the full matcher decides (errors, pgrelay's own frames, a desync). */
  Match: 0,
  /** It answers the entry: pop it, forward the reply. */
  Pop: 1,
  /** It answers the entry and is read as it passes (ReadyForQuery, an Execute's CommandComplete). */
  PopObserve: 2,
  /** Part of a simple query's (or function call's) answer: forward it, the entry stays. */
  Pass: 3,
  /** A simple query's CommandComplete: read as it passes, the entry stays. */
  PassObserve: 4,
} as const;

/**
 * PLAIN[kind << 8 | type]: how each reply meets a plain entry of each kind; 0 (Match) for every
 * pair the full matcher must see. This is match() restricted to entries without a step, as one
 * load: unnamed Parse/Bind/Describe/Execute and Sync are most of what a tracking client sends.
 */
const PLAIN = new Uint8Array(16 << 8);
const plain = (kind: Expect, type: number, action: number): void => {
  PLAIN[(kind << 8) | type] = action;
};
plain(Expect.Parse, Backend.ParseComplete, Plain.Pop);
plain(Expect.Bind, Backend.BindComplete, Plain.Pop);
plain(Expect.Close, Backend.CloseComplete, Plain.Pop);
plain(Expect.Describe, Backend.NoData, Plain.Pop);
plain(Expect.Describe, Backend.RowDescription, Plain.Pop);
plain(Expect.Execute, Backend.CommandComplete, Plain.PopObserve);
plain(Expect.Execute, Backend.EmptyQueryResponse, Plain.Pop);
plain(Expect.Execute, Backend.PortalSuspended, Plain.Pop);
for (const kind of [Expect.Sync, Expect.Query, Expect.FunctionCall]) plain(kind, Backend.ReadyForQuery, Plain.PopObserve);
for (const kind of [Expect.Query, Expect.FunctionCall]) {
  plain(kind, Backend.NoData, Plain.Pass);
  plain(kind, Backend.RowDescription, Plain.Pass);
}
plain(Expect.Query, Backend.CommandComplete, Plain.PassObserve);
plain(Expect.Query, Backend.EmptyQueryResponse, Plain.Pass);

/** What onTaken() does with a reply frame the tracking cut out of the stream. */
const Taken = {
  /** Write it, after reading it (a ReadyForQuery or CommandComplete) as onFrame does. */
  Forward: 0,
  Drop: 1,
  Error: 2,
  /** Write it as it is (already read). */
  Plain: 3,
} as const;
type Taken = (typeof Taken)[keyof typeof Taken];

export class ReplyTracker {
  /** What taken() does with the frame decide() chose to take. */
  private next: Taken = Taken.Forward;
  /** pgrelay's own answers to write before the taken frame (see decide). */
  private readonly early: Buffer[] = [];

  constructor(private readonly server: TrackedServer) {}

  /**
   * An observed frame the decision already sees whole (a ReadyForQuery, a short CommandComplete):
   * read it now and let it pass, which saves assembling it for onFrame.
   */
  readNow(type: number, length: number, buf: Buffer, start: number, avail: number, verdict: Verdict): Verdict {
    if (verdict !== Verdict.Observe || avail !== 1 + length) return verdict;
    this.server.onFrame(type, buf, start, start + avail);
    return Verdict.Forward;
  }

  /**
   * A reply that answers a message, at its header: it pops the queue. Swallowed replies,
   * pgrelay's own answers due right after this one, and every ErrorResponse make the frame taken.
   */
  decide(q: ReplyQueue, type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    const head = q.headStep;
    if (head === undefined) {
      // A plain entry (or none): one table load settles most replies.
      const action = PLAIN[(q.headKind << 8) | type]!;
      if (action !== Plain.Match) return this.plain(q, action, type, length, buf, start, avail);
      return this.match(q, type, length, buf, start, avail);
    }
    // pgrelay's own answers at the head still wait for the client to ask for a flush; the server
    // is sending, so PostgreSQL would have sent them by now, before this reply.
    if (head.fake === null || !head.resolved) return this.match(q, type, length, buf, start, avail);
    q.answerDue((answer) => this.early.push(answer) > 0, true);
    const verdict = this.match(q, type, length, buf, start, avail);
    if (verdict === Verdict.Take) return verdict;
    this.next = verdict === Verdict.Observe ? Taken.Forward : Taken.Plain;
    return Verdict.Take;
  }

  /** A reply to a plain entry (see PLAIN): what match() does for it, without the dispatch. */
  private plain(q: ReplyQueue, action: number, type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    if (action === Plain.Pop || action === Plain.PopObserve) {
      q.shift();
      // pgrelay's own answers right behind it go out after it (see popped).
      const next = q.headStep;
      if (next !== undefined && next.fake !== null && next.resolved) {
        this.next = Taken.Forward;
        return Verdict.Take;
      }
    }
    return action === Plain.Pop || action === Plain.Pass ? Verdict.Forward : this.readNow(type, length, buf, start, avail, Verdict.Observe);
  }

  private match(q: ReplyQueue, type: number, length: number, buf: Buffer, start: number, avail: number): Verdict {
    const kind = q.headKind;
    switch (type) {
      case Backend.ErrorResponse:
        this.next = Taken.Error;
        return Verdict.Take;
      case Backend.ParseComplete: {
        const step = q.headStep;
        if (step !== undefined && step.injected && !step.injectDone && step.injectReply === Backend.ParseComplete && kind !== Expect.Query) {
          // The Parse pgrelay put before the client's frame: the statement exists now.
          step.injectDone = true;
          if (step.lruAdded !== null) step.server?.confirm(step.lruAdded);
          return this.drop();
        }
        if (kind === Expect.Parse) return this.popped(q, Verdict.Forward);
        return this.desync(type, kind);
      }
      case Backend.BindComplete:
        return kind === Expect.Bind ? this.popped(q, Verdict.Forward) : this.desync(type, kind);
      case Backend.CloseComplete: {
        const step = q.headStep;
        if (step !== undefined && step.injected && !step.injectDone && step.injectReply === Backend.CloseComplete) {
          // The Close of the scratch statement pgrelay put before a checking Parse.
          step.injectDone = true;
          return this.drop();
        }
        if (kind === Expect.Close) return this.popped(q, Verdict.Forward);
        if (kind === Expect.Evict) {
          q.shift()?.commit();
          return this.drop();
        }
        return this.desync(type, kind);
      }
      case Backend.NoData:
      case Backend.RowDescription:
        if (kind === Expect.Describe) return this.popped(q, Verdict.Forward);
        // A simple query's (or a function call's) result: not an answer of its own.
        return kind === Expect.Query || kind === Expect.FunctionCall ? Verdict.Forward : this.desync(type, kind);
      case Backend.CommandComplete:
      case Backend.EmptyQueryResponse: {
        const observe = type === Backend.CommandComplete ? Verdict.Observe : Verdict.Forward;
        if (kind === Expect.Execute) return this.readNow(type, length, buf, start, avail, this.popped(q, observe));
        if (kind !== Expect.Query) return this.desync(type, kind);
        const step = q.headStep;
        if (step !== undefined && step.injected && !step.injectDone && type === Backend.CommandComplete) {
          // The PREPARE pgrelay put in front of a client's SQL DEALLOCATE.
          step.injectDone = true;
          return this.drop();
        }
        return this.readNow(type, length, buf, start, avail, observe);
      }
      case Backend.PortalSuspended:
        return kind === Expect.Execute ? this.popped(q, Verdict.Forward) : this.desync(type, kind);
      case Backend.ReadyForQuery:
        return kind === Expect.Sync || kind === Expect.Query || kind === Expect.FunctionCall ? this.readNow(type, length, buf, start, avail, this.popped(q, Verdict.Observe)) : this.desync(type, kind);
      default:
        return Verdict.Forward;
    }
  }

  /**
   * A reply decide() took: writes it (or what replaces it, or nothing) and then pgrelay's own
   * answers that were waiting for it. False when the client's socket is full.
   */
  taken(client: ServerClient, q: ReplyQueue, type: number, buf: Buffer, start: number, end: number): boolean {
    let ok = true;
    for (const answer of this.early) ok = client.sendToClient(answer) && ok;
    this.early.length = 0;
    let out: Buffer | null = null;
    switch (this.next) {
      case Taken.Plain:
        out = buf.subarray(start, end);
        break;
      case Taken.Drop:
        break;
      case Taken.Error:
        this.server.onFrame(type, buf, start, end);
        out = this.errorReply(client, q, buf, start, end);
        break;
      case Taken.Forward:
        if (type === Backend.ReadyForQuery || type === Backend.CommandComplete) this.server.onFrame(type, buf, start, end);
        out = buf.subarray(start, end);
        break;
    }
    this.next = Taken.Forward;
    if (out !== null) ok = client.sendToClient(out) && ok;
    return q.answerDue((answer) => client.sendToClient(answer)) && ok;
  }

  /** The link ended while a frame was being taken: nothing more is written for it. */
  reset(): void {
    this.next = Taken.Forward;
    this.early.length = 0;
  }

  private drop(): Verdict {
    this.next = Taken.Drop;
    return Verdict.Take;
  }

  /**
   * Pops the head and returns `verdict`, or Take when pgrelay's own answers are due right after
   * this reply (taken() writes the reply, then them).
   */
  private popped(q: ReplyQueue, verdict: Verdict): Verdict {
    q.shift()?.commit();
    const next = q.headStep;
    if (next === undefined || next.fake === null || !next.resolved) return verdict;
    this.next = Taken.Forward;
    return Verdict.Take;
  }

  private desync(type: number, kind: number): Verdict {
    this.server.lostTrack(`reply '${String.fromCharCode(type)}' while expecting ${kind}`);
    return Verdict.Forward;
  }

  /**
   * An ErrorResponse. A message of the extended protocol failed: PostgreSQL skips everything until
   * Sync, so those entries go and what they did is undone. The error itself is the server's,
   * unless it answers a probe pgrelay sent in place of a message PostgreSQL would have refused
   * (then PostgreSQL's own words are sent).
   */
  private errorReply(client: ServerClient, q: ReplyQueue, buf: Buffer, start: number, end: number): Buffer {
    const fields = readErrorFields(buf, start, end);
    const severity = fields.get('V') ?? fields.get('S') ?? 'ERROR';
    const frame = buf.subarray(start, end);
    if (severity === 'FATAL' || severity === 'PANIC') return frame;
    const code = fields.get('C') ?? '';
    const kind = q.headKind;
    if (kind === 0 || kind === Expect.Sync || kind === Expect.Query || kind === Expect.FunctionCall) {
      // A simple query's error (or COMMIT failing at Sync): nothing is skipped. A DEALLOCATE of a
      // client's name that failed (in a failed transaction) leaves the name.
      if (kind === Expect.Query) q.headStep?.undo();
      return code === SqlState.InvalidSqlStatementName && kind === Expect.Query ? withHint(buf, start, end, SQL_PREPARE_HINT) : frame;
    }
    let out: Buffer = frame;
    const step = q.headStep as FrameStep | undefined;
    if (step !== undefined && step.replace !== null) {
      if (step.replaceOnly === null || step.replaceOnly === code) out = step.replace;
    } else if (code === SqlState.InvalidSqlStatementName && step !== undefined && step.used !== null && step.clientName !== null && (kind === Expect.Bind || kind === Expect.Describe)) {
      // The server lost a statement pgrelay believed it had (a client's SQL DEALLOCATE of it), or
      // the Parse that was making it in an earlier segment was skipped: the client's name is what
      // failed; the next use prepares it again.
      this.server.statements?.remove(step.used);
      out = unknownStatementError(step.clientName);
    } else if (code === SqlState.InvalidSqlStatementName) {
      out = withHint(buf, start, end, SQL_PREPARE_HINT);
    }
    if (this.server.copyIn) q.ignoreSyncs = false;
    const requests = q.failHead();
    client.protocol.outstanding -= Math.min(requests, client.protocol.outstanding);
    return out;
  }

  /**
   * A CopyInResponse or CopyBothResponse. COPY FROM STDIN through the extended protocol: the
   * Syncs the client queued behind the Execute are read by the COPY and ignored, and so are those
   * it sends until CopyDone.
   */
  copyStarted(client: ServerClient, q: ReplyQueue): void {
    if (q.headKind !== Expect.Execute) return;
    const dropped = q.dropSyncsAfterHead();
    client.protocol.outstanding -= Math.min(dropped, client.protocol.outstanding);
    q.ignoreSyncs = true;
  }
}
