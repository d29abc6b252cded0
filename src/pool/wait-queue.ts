// O(1) FIFO of clients waiting for a server connection: a growable ring buffer. Removal of a
// waiter from the middle (cancel, disconnect) leaves a hole that shift() skips.

export class WaitQueue<T extends object> {
  private items: (T | null)[] = new Array(16).fill(null);
  private head = 0;
  private count = 0; // slots in use, holes included
  private live = 0;

  /** Waiters still in the queue (holes excluded). */
  get length(): number {
    return this.live;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
    this.live++;
  }

  /** The oldest live waiter, or undefined. */
  peek(): T | undefined {
    this.dropHoles();
    return this.count > 0 ? (this.items[this.head] as T) : undefined;
  }

  shift(): T | undefined {
    this.dropHoles();
    if (this.count === 0) return undefined;
    const item = this.items[this.head] as T;
    this.items[this.head] = null;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    this.live--;
    return item;
  }

  /** Removes a waiter wherever it is; O(n) scan, used only on the rare cancel/disconnect path. */
  remove(item: T): boolean {
    const mask = this.items.length - 1;
    for (let i = 0; i < this.count; i++) {
      const idx = (this.head + i) & mask;
      if (this.items[idx] === item) {
        this.items[idx] = null;
        this.live--;
        return true;
      }
    }
    return false;
  }

  /** Live waiters, oldest first (for snapshots). */
  *[Symbol.iterator](): Iterator<T> {
    const mask = this.items.length - 1;
    for (let i = 0; i < this.count; i++) {
      const item = this.items[(this.head + i) & mask];
      if (item !== null && item !== undefined) yield item;
    }
  }

  private dropHoles(): void {
    while (this.count > 0 && this.items[this.head] === null) {
      this.head = (this.head + 1) & (this.items.length - 1);
      this.count--;
    }
  }

  private grow(): void {
    const next: (T | null)[] = new Array(this.items.length * 2).fill(null);
    const mask = this.items.length - 1;
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) & mask]!;
    this.items = next;
    this.head = 0;
  }
}
