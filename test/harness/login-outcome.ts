// One login and one query through pgrelay, reduced to a comparable string: `ok:<first column>`
// or `error:<SQLSTATE or message>`. For tests that compare many logins side by side.

import pg from 'pg';

export async function loginOutcome(port: number, user: string, password: string, database = 'postgres', sql = 'select current_user'): Promise<string> {
  return outcome(port, user, password, database, sql, false);
}

/** Like loginOutcome() on database postgres, with the message after the SQLSTATE: `error:<SQLSTATE>:<message>`. */
export async function queryOutcome(port: number, user: string, password: string, sql: string): Promise<string> {
  return outcome(port, user, password, 'postgres', sql, true);
}

async function outcome(port: number, user: string, password: string, database: string, sql: string, withMessage: boolean): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, connectionTimeoutMillis: 20_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query(sql);
    await c.end();
    return `ok:${String(Object.values(r.rows[0] as object)[0])}`;
  } catch (err) {
    await c.end().catch(() => undefined);
    const code = (err as { code?: string }).code;
    return withMessage ? `error:${code ?? ''}:${(err as Error).message}` : `error:${code ?? (err as Error).message}`;
  }
}
