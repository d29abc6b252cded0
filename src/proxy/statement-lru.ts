// The prepared statements one server connection holds, least recently used first. It is pgrelay's
// belief about the server, kept true by the reply bookkeeping (reply-queue.ts): an entry added for
// a Parse that then fails is taken out again, one removed for a Close that is skipped goes back.

import { releaseStatement, retainStatement, type Statement } from './statement-registry.js';

export class ServerStatements {
  /** Insertion order is recency: the first entry is the least recently used. */
  private readonly lru = new Map<Statement, true>();
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

  /** Marks a statement as just used. */
  touch(s: Statement): void {
    this.lru.delete(s);
    this.lru.set(s, true);
  }

  /** Records a statement prepared on the server (holds a reference). */
  add(s: Statement): void {
    if (this.retired) return;
    if (this.lru.has(s)) {
      this.touch(s);
      return;
    }
    retainStatement(s);
    this.lru.set(s, true);
  }

  /** Forgets a statement (the server does not have it after all); drops the reference. */
  remove(s: Statement): boolean {
    if (!this.lru.delete(s)) return false;
    releaseStatement(s);
    return true;
  }

  /**
   * Takes out the least recently used statements beyond `max` and returns them, each still holding
   * the reference the server's entry had: the caller closes them on the server.
   */
  evict(max: number): Statement[] {
    const out: Statement[] = [];
    for (const s of this.lru.keys()) {
      if (this.lru.size - out.length <= max) break;
      out.push(s);
    }
    for (const s of out) this.lru.delete(s);
    return out;
  }

  /** Puts back a statement evict() took out (its Close never ran); the reference comes back with it. */
  restore(s: Statement): void {
    if (this.retired || this.lru.has(s)) releaseStatement(s);
    else this.lru.set(s, true);
  }

  /** The server dropped every statement (DEALLOCATE ALL, DISCARD ALL) or is gone. */
  clear(): void {
    for (const s of this.lru.keys()) releaseStatement(s);
    this.lru.clear();
  }

  /** The server connection is closed. */
  retire(): void {
    this.clear();
    this.retired = true;
  }
}
