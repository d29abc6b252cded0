// What PostgreSQL commits for a stream of client messages, for the transaction property test:
// a small model of explicit blocks, the extended protocol's implicit transaction and its
// skip-until-Sync after an error, and COPY. committedAfter(j) is what is committed once the
// server has processed the first j frames and then lost the connection (EOF rolls back the rest).

import { serialize } from '../../src/protocol/frontend-messages.js';

/**
 * One step of a client's script. Simple ops are one Query; extended ones are Parse/Bind/Execute
 * of the unnamed statement. Named ones: 'xn' prepares a statement under its own name, binds,
 * executes and closes it; 'prep' prepares the statement "keep" (select 1) with a Sync, and 'xs'
 * binds and executes it (on whichever server the client has by then).
 */
export type Op =
  | { readonly k: 'q'; readonly s: Stmt; readonly tag?: string }
  | { readonly k: 'x'; readonly s: Stmt; readonly tag?: string }
  | { readonly k: 'xn'; readonly s: Stmt; readonly tag?: string; readonly name: string }
  | { readonly k: 'xs' }
  | { readonly k: 'prep' }
  | { readonly k: 'copy'; readonly tags: readonly string[] }
  | { readonly k: 'sync' }
  | { readonly k: 'flush' };

/** Statements: 'parse-error' fails at Parse, 'error' at execution. */
export type Stmt = 'insert' | 'begin' | 'commit' | 'rollback' | 'select' | 'error' | 'parse-error' | 'sleep';

export const TABLE = 'prop';

function sqlOf(s: Stmt, tag: string | undefined): string {
  switch (s) {
    case 'insert':
      return `insert into ${TABLE} values ('${tag}')`;
    case 'begin':
      return 'begin';
    case 'commit':
      return 'commit';
    case 'rollback':
      return 'rollback';
    case 'select':
      return 'select 1';
    case 'error':
      // Not folded at plan time: the error comes from execution, after Bind.
      return 'select 1 / (random() * 0)::int';
    case 'parse-error':
      return 'selec 1';
    case 'sleep':
      return 'select pg_sleep(0.03)';
  }
}

/** A frame and what the model knows of it. */
export interface Frame {
  readonly bytes: Buffer;
  /** The op it belongs to (index into the script's ops). */
  readonly op: number;
  readonly kind: 'Q' | 'P' | 'B' | 'E' | 'S' | 'H' | 'd' | 'c' | 'C';
}

/** The frames of one op. */
export function framesOf(op: Op, index: number): Frame[] {
  const f = (kind: Frame['kind'], bytes: Buffer): Frame => ({ bytes, op: index, kind });
  switch (op.k) {
    case 'q':
      return [f('Q', serialize.query(sqlOf(op.s, op.tag)))];
    case 'x':
      return [f('P', serialize.parse({ text: sqlOf(op.s, op.tag) })), f('B', serialize.bind()), f('E', serialize.execute())];
    case 'xn':
      return [
        f('P', serialize.parse({ name: op.name, text: sqlOf(op.s, op.tag) })),
        f('B', serialize.bind({ statement: op.name })),
        f('E', serialize.execute()),
        f('C', serialize.close({ type: 'S', name: op.name })),
      ];
    case 'prep':
      return [f('P', serialize.parse({ name: 'keep', text: sqlOf('select', undefined) })), f('S', serialize.sync())];
    case 'xs':
      return [f('B', serialize.bind({ statement: 'keep' })), f('E', serialize.execute())];
    case 'copy':
      return [
        f('Q', serialize.query(`copy ${TABLE} (tag) from stdin`)),
        ...op.tags.map((t) => f('d', serialize.copyData(Buffer.from(`${t}\n`)))),
        f('c', serialize.copyDone()),
      ];
    case 'sync':
      return [f('S', serialize.sync())];
    case 'flush':
      return [f('H', serialize.flush())];
  }
}

type Txn = 'none' | 'open' | 'failed';

/** The model's reading of a whole script: per frame, what is committed and which ReadyForQuery it yields. */
export interface ModelRun {
  readonly frames: readonly Frame[];
  /** committed[j]: tags committed after the first j frames (monotone). */
  readonly committed: readonly ReadonlySet<string>[];
  /** For each ReadyForQuery the script yields: the index of the frame that yields it, and its status. */
  readonly readies: readonly { frame: number; status: 'I' | 'T' | 'E' }[];
}

export function runModel(ops: readonly Op[]): ModelRun {
  const frames = ops.flatMap((op, i) => framesOf(op, i));
  let txn = 'none' as Txn;
  let skip = false; // extended protocol after an error: everything but Sync is ignored
  let implicit: string[] = []; // extended-protocol work not yet synced, outside BEGIN
  let pending: string[] = []; // work inside BEGIN
  let inCopy: string[] | null = null;
  let copyRefused = false;
  const done = new Set<string>();
  const committed: Set<string>[] = [new Set()];
  const readies: { frame: number; status: 'I' | 'T' | 'E' }[] = [];
  const status = (): 'I' | 'T' | 'E' => (txn === 'none' ? 'I' : txn === 'open' ? 'T' : 'E');
  const commit = (tags: string[]): void => {
    for (const t of tags) done.add(t);
  };
  const fail = (): void => {
    // An error aborts the transaction: BEGIN's becomes failed, an implicit one is rolled back.
    if (txn === 'open') txn = 'failed';
    pending = txn === 'failed' ? [] : pending;
    implicit = [];
  };

  for (let j = 0; j < frames.length; j++) {
    const fr = frames[j]!;
    const op = ops[fr.op]!;
    if (fr.kind === 'S') {
      skip = false;
      if (txn === 'none') commit(implicit);
      implicit = [];
      readies.push({ frame: j, status: status() });
    } else if (skip) {
      // ignored until Sync
    } else if (fr.kind === 'd') {
      if (inCopy !== null && op.k === 'copy') inCopy.push(op.tags[inCopy.length]!);
    } else if (fr.kind === 'c') {
      if (inCopy !== null) {
        if (txn === 'none') commit(inCopy);
        else pending.push(...inCopy);
        inCopy = null;
        readies.push({ frame: j, status: status() });
      } else if (copyRefused) {
        copyRefused = false; // ignored: the COPY was refused at its Query
      }
    } else if (fr.kind === 'Q') {
      if (op.k === 'copy') {
        if (txn === 'failed') {
          copyRefused = true;
          readies.push({ frame: j, status: status() });
        } else {
          inCopy = [];
        }
      } else {
        simple((op as { s: Stmt }).s, (op as { tag?: string }).tag);
        readies.push({ frame: j, status: status() });
      }
    } else if (fr.kind === 'B') {
      // A Bind with no Parse before it (of "keep"): in a failed transaction block PostgreSQL
      // refuses it (25P02) and skips until Sync. Other Binds follow their Parse.
      if (op.k === 'xs' && txn === 'failed') skip = true;
    } else if (fr.kind === 'C') {
      // Close of a statement: nothing to commit or roll back.
    } else if (fr.kind === 'P') {
      const s = op.k === 'prep' ? 'select' : (op as { s: Stmt }).s;
      if (s === 'parse-error') {
        fail();
        skip = true;
      } else if (txn === 'failed' && s !== 'commit' && s !== 'rollback') {
        // Parse of anything but a transaction-ending statement fails in an aborted block.
        skip = true;
      }
    } else if (fr.kind === 'E') {
      extended(op.k === 'xs' ? 'select' : (op as { s: Stmt }).s, (op as { tag?: string }).tag);
    }
    committed.push(new Set(done));
  }
  return { frames, committed, readies };

  function simple(s: Stmt, tag: string | undefined): void {
    if (txn === 'failed') {
      if (s === 'commit' || s === 'rollback') {
        txn = 'none';
        pending = [];
      }
      return; // anything else: 25P02
    }
    switch (s) {
      case 'insert':
        if (txn === 'none') commit([tag!]);
        else pending.push(tag!);
        return;
      case 'begin':
        txn = 'open';
        return;
      case 'commit':
        if (txn === 'open') commit(pending);
        pending = [];
        txn = 'none';
        return;
      case 'rollback':
        pending = [];
        txn = 'none';
        return;
      case 'error':
        fail();
        return;
      case 'parse-error':
        fail();
        return;
      case 'select':
      case 'sleep':
        return;
    }
  }

  function extended(s: Stmt, tag: string | undefined): void {
    if (txn === 'failed') {
      if (s === 'commit' || s === 'rollback') {
        // Ends the failed block at once (a transaction statement commits at its Execute).
        txn = 'none';
        pending = [];
      } else {
        skip = true;
      }
      return;
    }
    switch (s) {
      case 'insert':
        if (txn === 'none') implicit.push(tag!);
        else pending.push(tag!);
        return;
      case 'begin':
        // BEGIN inside the implicit block turns it into an explicit one, earlier work included.
        if (txn === 'none') {
          pending = implicit;
          implicit = [];
        }
        txn = 'open';
        return;
      case 'commit':
        // Outside BEGIN: a warning, and the implicit block commits now.
        commit(txn === 'open' ? pending : implicit);
        pending = [];
        implicit = [];
        txn = 'none';
        return;
      case 'rollback':
        pending = [];
        implicit = [];
        txn = 'none';
        return;
      case 'error':
        fail();
        skip = true;
        return;
      case 'parse-error':
      case 'select':
      case 'sleep':
        return;
    }
  }
}

/** How many whole frames fit in the first `bytes` bytes of the stream. */
export function framesWithin(frames: readonly Frame[], bytes: number): number {
  let n = 0;
  let at = 0;
  for (const f of frames) {
    at += f.bytes.length;
    if (at > bytes) break;
    n++;
  }
  return n;
}
