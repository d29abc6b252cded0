// The prepared statements one server connection holds, with when each was last used. It is
// pgrelay's belief about the server, kept true by the reply bookkeeping (reply-queue.ts): an entry
// added for a Parse that then fails is taken out again, one removed for a Close that is skipped
// goes back. A use costs one Map write (a stamp); the least recently used are looked for only
// when the list is over its bound, at a server's link.

import { releaseStatement, retainStatement, type Statement } from './statement-registry.js';

/** A Parse sent and not yet answered: the Sync segment of its frame, and the client name it makes (null when pgrelay put it before a Bind). */
interface Pending {
  readonly segment: number;
  readonly creator: object | null;
}

export class ServerStatements {
  /** Statement → the stamp of its last use (higher is more recent). */
  private readonly lru = new Map<Statement, number>();
  /**
   * Statements whose Parse is sent and not yet answered. Frames of the same Sync segment may rely
   * on them (an error there makes the server skip the Parse and them alike), and so may frames of
   * the client name that Parse makes (if the server skips it, the name does not exist either). A
   * frame after the Sync for another name would run without the statement.
   */
  private readonly pendingIn = new Map<Statement, Pending>();
  private clock = 0;
  /** The connection is gone: nothing is recorded any more (late undos of its client change nothing). */
  private retired = false;
  /** Numbers the statements made only to be deallocated (a client's SQL DEALLOCATE of its own name). */
  nextProbe = 1;
  /** Such DEALLOCATEs sent and not yet answered: their CommandComplete is not a client's own DEALLOCATE. */
  ownDeallocates = 0;

  get size(): number {
    return this.lru.size;
  }

  has(s: Statement): boolean {
    return this.lru.has(s);
  }

  /** Whether a frame of Sync segment `segment`, for client name `name`, may use `s` here without preparing it. */
  usable(s: Statement, segment: number, name: object | null): boolean {
    if (!this.lru.has(s)) return false;
    const p = this.pendingIn.get(s);
    return p === undefined || p.segment === segment || (p.creator !== null && p.creator === name);
  }

  /** Marks a statement as just used. */
  touch(s: Statement): void {
    this.lru.set(s, ++this.clock);
  }

  /**
   * Records a statement whose Parse a frame of `segment` sends now (holds a reference); `creator`
   * is the client name that Parse makes, or null for a Parse pgrelay put before a Bind/Describe.
   */
  add(s: Statement, segment: number, creator: object | null): void {
    if (this.retired) return;
    if (!this.lru.has(s)) {
      retainStatement(s);
      this.pendingIn.set(s, { segment, creator });
    }
    this.lru.set(s, ++this.clock);
  }

  /** The server answered the Parse that added `s`: any frame may use it now. */
  confirm(s: Statement): void {
    this.pendingIn.delete(s);
  }

  /** Forgets a statement (the server does not have it after all); drops the reference. */
  remove(s: Statement): boolean {
    this.pendingIn.delete(s);
    if (!this.lru.delete(s)) return false;
    releaseStatement(s);
    return true;
  }

  /**
   * Takes out the least recently used statements beyond `max` and returns them, oldest first,
   * each still holding the reference the server's entry had: the caller closes them on the server.
   */
  evict(max: number): Statement[] {
    const over = this.lru.size - max;
    if (over <= 0) return [];
    const out = [...this.lru].sort((a, b) => a[1] - b[1]).slice(0, over).map(([s]) => s);
    for (const s of out) this.lru.delete(s);
    return out;
  }

  /** Puts back a statement evict() took out (its Close never ran); the reference comes back with it. */
  restore(s: Statement): void {
    if (this.retired || this.lru.has(s)) {
      releaseStatement(s);
      return;
    }
    // Back as the least recently used: it was the one chosen to go.
    this.lru.set(s, 0);
  }

  /** The server dropped every statement (DEALLOCATE ALL, DISCARD ALL) or is gone. */
  clear(): void {
    for (const s of this.lru.keys()) releaseStatement(s);
    this.lru.clear();
    this.pendingIn.clear();
  }

  /** The server connection is closed. */
  retire(): void {
    this.clear();
    this.retired = true;
  }
}
