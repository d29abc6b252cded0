// The prepared statements pgrelay knows, one per distinct query text and parameter types, each
// with the server-side name derived from them. Clients' names map to these, and each server
// connection remembers which of them it has prepared. A sharing cache: an entry lives while a
// client name or a server connection refers to it, so ten thousand clients preparing the same
// query hold one copy of its text.

import { createHash } from 'node:crypto';

export class Statement {
  /** References from client namespaces and server connections (see internStatement/releaseStatement). */
  refs = 0;
  /**
   * The same query under other server-side names (statement-lru.ts says when one is needed); the
   * statement a variant is of. Created when first needed, kept while referenced.
   */
  variants: Statement[] | null = null;
  base: Statement | null = null;
  constructor(
    /** The Parse body after the name: query text, NUL, parameter count and types (pgrelay's copy). */
    readonly spec: Buffer,
    /** The name on the server, and the same with its NUL (as it goes into messages). */
    readonly name: string,
    readonly nameZ: Buffer,
    /** The registry key (spec as latin1). */
    readonly key: string,
  ) {}
}

// Module state on purpose (a sharing cache, like session-params.ts's): statements are keyed by
// their text, which means the same thing for every pool; servers only ever see these names.
const byKey = new Map<string, Statement>();
const byName = new Map<string, Statement>();

/** The server-side name: "pgrelay_" and 96 bits of the SHA-256 of the query text and types. */
function serverName(spec: Buffer): string {
  const base = `pgrelay_${createHash('sha256').update(spec).digest('hex').slice(0, 24)}`;
  // Two specs with one hash prefix would share a server-side statement: vanishingly unlikely,
  // and still kept apart.
  let name = base;
  for (let i = 1; byName.has(name); i++) name = `${base}_${i}`;
  return name;
}

/**
 * The statement for the Parse body buf[from, end) (text and parameter types), with one more
 * reference. The bytes are copied only when the statement is new.
 */
export function internStatement(buf: Buffer, from: number, end: number): Statement {
  const key = buf.toString('latin1', from, end);
  let s = byKey.get(key);
  if (s === undefined) {
    const spec = Buffer.from(buf.subarray(from, end));
    const name = serverName(spec);
    s = new Statement(spec, name, Buffer.from(`${name}\0`, 'latin1'), key);
    byKey.set(key, s);
    byName.set(name, s);
  }
  s.refs++;
  return s;
}

/**
 * The `index`-th variant of `s` (1, 2 ...): the same text and types under a server-side name of
 * its own, for when a server's copy under the usual name cannot be relied on. No reference is
 * added; the caller retains what it keeps.
 */
export function variantOf(s: Statement, index: number): Statement {
  const base = s.base ?? s;
  const list = (base.variants ??= []);
  while (list.length < index) {
    let name = `${base.name}v${list.length + 1}`;
    for (let i = 1; byName.has(name); i++) name = `${base.name}v${list.length + 1}_${i}`;
    const v = new Statement(base.spec, name, Buffer.from(`${name}\0`, 'latin1'), base.key);
    v.base = base;
    byName.set(name, v);
    list.push(v);
  }
  return list[index - 1]!;
}

/** One more reference to a statement already held. */
export function retainStatement(s: Statement): void {
  s.refs++;
}

/** Drops a reference; the last one forgets the statement. */
export function releaseStatement(s: Statement): void {
  if (--s.refs > 0) return;
  if (byKey.get(s.key) === s) byKey.delete(s.key);
  if (byName.get(s.name) === s) byName.delete(s.name);
  // A variant unused by anyone goes; the base keeps the others (variant numbers stay stable).
  if (s.base !== null && s.base.variants !== null && s.base.variants[s.base.variants.length - 1] === s) {
    s.base.variants.pop();
    while (s.base.variants.length > 0 && s.base.variants[s.base.variants.length - 1]!.refs === 0) byName.delete(s.base.variants.pop()!.name);
  }
}

/** Statements known (for tests and diagnostics). */
export function registeredStatements(): number {
  return byKey.size;
}
