// Builds one SHOW reply (RowDescription, DataRows, CommandComplete) from typed column
// definitions, rendering values the way PgBouncer does. Shared by the console's SHOW commands.

import type { Control } from '../control/contract.js';
import { commandComplete, dataRow, Oid, rowDescription } from '../protocol/backend-messages.js';

/** One SHOW item: reads snapshots from Control and returns the whole reply. */
export type ShowItem = (control: Control) => Buffer[];

export type Cell = string | number | boolean | null;

/** One column: its name, type, and how to read it from a row object. */
export interface Col<R> {
  readonly name: string;
  readonly typeOid: number;
  readonly get: (row: R) => Cell;
}

export function int<R>(name: string, get: (row: R) => Cell): Col<R> {
  return { name, typeOid: Oid.int8, get };
}

export function text<R>(name: string, get: (row: R) => Cell): Col<R> {
  return { name, typeOid: Oid.text, get };
}

function render(v: Cell): string | null {
  if (v === null) return null;
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v).toString() : '0';
  return v;
}

/** RowDescription, one DataRow per row, CommandComplete SHOW: one SHOW reply. */
export function table<R>(cols: readonly Col<R>[], rows: readonly R[]): Buffer[] {
  const out = [rowDescription(cols.map((c) => ({ name: c.name, typeOid: c.typeOid })))];
  for (const r of rows) out.push(dataRow(cols.map((c) => render(c.get(r)))));
  out.push(commandComplete('SHOW'));
  return out;
}

/** ISO time -> PgBouncer's "%Y-%m-%d %H:%M:%S %Z" (in UTC); anything unparsable as it is. */
export function pgbTime(iso: string): string {
  const ms = Date.parse(iso);
  if (iso === '' || Number.isNaN(ms)) return iso;
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}
