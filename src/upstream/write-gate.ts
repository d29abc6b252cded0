// The write gate: before a server connection is handed to a client, it must match the database's
// target_session_attrs (libpq's names). PostgreSQL 14+ reports in_hot_standby and
// default_transaction_read_only at login; older servers are asked with a query.

/** Whether a server looks writable from its login ParameterStatus; null when it did not say. */
export function writableFromParams(params: ReadonlyMap<string, string>): boolean | null {
  const standby = params.get('in_hot_standby');
  const readOnly = params.get('default_transaction_read_only');
  if (standby === 'on' || readOnly === 'on') return false;
  if (standby === 'off') return true;
  return null;
}

/**
 * Fails (ErrorResponse) on a server that is in recovery or read-only by default; succeeds on a
 * writable one. Used when the server did not report in_hot_standby (PostgreSQL 13 and older).
 */
export const WRITABLE_PROBE_SQL =
  "DO $pgrelay$ BEGIN IF pg_is_in_recovery() OR current_setting('default_transaction_read_only') = 'on' THEN RAISE EXCEPTION 'read-only server'; END IF; END $pgrelay$";

/** Whether a server with the given writability satisfies target_session_attrs. */
export function satisfies(targetSessionAttrs: string, writable: boolean): boolean {
  switch (targetSessionAttrs) {
    case 'read-write':
    case 'primary':
      return writable;
    case 'read-only':
    case 'standby':
      return !writable;
    default:
      // any, prefer-standby: every server qualifies (prefer-standby orders the hosts instead)
      return true;
  }
}

/** Whether the gate needs to know writability at all. */
export function gateApplies(targetSessionAttrs: string): boolean {
  return targetSessionAttrs !== 'any';
}
