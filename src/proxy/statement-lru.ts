// The prepared statements one server connection holds, with when each was last used. It is
// pgrelay's belief about the server, kept true by the reply bookkeeping (reply-queue.ts): an entry
// added for a Parse that then fails is taken out again, one removed for a Close that is skipped
// goes back. A use costs one Map write (a stamp); the least recently used are looked for only
// when the list is over its bound, at a server's link.

import { releaseStatement, retainStatement, type Statement } from './statement-registry.js';

export class ServerStatements {
  /** Statement → the stamp of its last use (higher is more recent). */
  private readonly lru = new Map<Statement, number>();
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

  /** Marks a statement as just used. */
  touch(s: Statement): void {
    this.lru.set(s, ++this.clock);
  }

  /** Records a statement prepared on the server (holds a reference). */
  add(s: Statement): void {
    if (this.retired) return;
    if (!this.lru.has(s)) retainStatement(s);
    this.lru.set(s, ++this.clock);
  }

  /** Forgets a statement (the server does not have it after all); drops the reference. */
  remove(s: Statement): boolean {
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
  }

  /** The server connection is closed. */
  retire(): void {
    this.clear();
    this.retired = true;
  }
}
