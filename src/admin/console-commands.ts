// The admin console's commands, each behind one small interface: parse (the factories below turn
// a Statement into a command), execute (calls Control's verbs and builds the reply) and name (the
// CommandComplete tag). Only the verbs live here; SHOW result sets are in console-show.ts.

import { SqlState } from '../protocol/sqlstate.js';
import type { Control, PauseResult, InTransactionClient } from '../control/contract.js';
import { commandComplete, noticeResponse } from '../protocol/backend-messages.js';
import { ConsoleError, syntaxError, type Statement } from './console-parse.js';
import { FAKE_PARAMS, showItem } from './console-show.js';

export interface AdminCommand {
  /** The CommandComplete tag: the command word, or SHOW for SHOW and SELECT. */
  readonly name: string;
  /** Stats users (stats_users) may run it: SHOW and the ignored SETs only. */
  readonly readOnly: boolean;
  /** The reply's messages, without ReadyForQuery. Throws ConsoleError or AdminError on failure. */
  execute(control: Control): Buffer[] | Promise<Buffer[]>;
  /** Runs once the reply and ReadyForQuery are written (SHUTDOWN may close this connection). */
  afterReply?(control: Control): void;
}

/** Control's verbs take "no database" as "every database". */
function dbOpt(database: string | null): { database?: string } {
  return database === null ? {} : { database };
}

function notice(message: string, detail?: string): Buffer {
  return noticeResponse(detail === undefined ? { severity: 'NOTICE', code: SqlState.SuccessfulCompletion, message } : { severity: 'NOTICE', code: SqlState.SuccessfulCompletion, message, detail });
}

function warning(message: string, detail?: string): Buffer {
  return noticeResponse(detail === undefined ? { severity: 'WARNING', code: SqlState.Warning, message } : { severity: 'WARNING', code: SqlState.Warning, message, detail });
}

/** "client 12 (app@db from 10.0.0.5:41234)"; IPv6 addresses in brackets. */
function describeClient(c: InTransactionClient): string {
  const host = c.addr.includes(':') ? `[${c.addr}]` : c.addr;
  return `client ${c.client} (${c.user}@${c.database} from ${host}:${c.port})`;
}

const LISTED_CLIENTS = 10;

function pausedUntil(r: PauseResult): string {
  return r.autoResumeAt === null ? 'until RESUME' : `until RESUME or automatically at ${r.autoResumeAt} (pause_max_duration)`;
}

/**
 * PAUSE replies once the pool(s) hold no server connection, as in PgBouncer. Unlike PgBouncer,
 * the drain is bounded: on timeout the caller gets an error naming the clients still inside a
 * transaction (the pool stays paused), and a RESUME that overtakes the drain completes the PAUSE
 * with a warning instead of leaving it hanging (PgBouncer #715).
 */
export function pauseReply(r: PauseResult): Buffer[] {
  switch (r.result) {
    case 'drained':
      return r.autoResumeAt === null ? [commandComplete('PAUSE')] : [notice(`paused ${pausedUntil(r)}`), commandComplete('PAUSE')];
    case 'resumed':
      return [warning('PAUSE was overtaken by RESUME before the drain finished; the pool is not paused'), commandComplete('PAUSE')];
    case 'ignored':
      return [warning(`PAUSE ignored${r.reason === undefined ? '' : `: ${r.reason}`}`), commandComplete('PAUSE')];
    case 'timeout': {
      const listed = r.inTransaction.slice(0, LISTED_CLIENTS).map(describeClient);
      const more = r.inTransaction.length - listed.length;
      const who =
        listed.length === 0
          ? `${r.serversLeft} server connection(s) still open`
          : `still in a transaction: ${listed.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
      throw new ConsoleError(
        `pause drain timed out after ${Math.round(r.drainMs)} ms; ${who}`,
        `${r.serversLeft} server connection(s) still open; new transactions stay queued ${pausedUntil(r)}`,
      );
    }
  }
}

function pause(database: string | null): AdminCommand {
  return {
    name: 'PAUSE',
    readOnly: false,
    async execute(control) {
      return pauseReply(await control.pause(dbOpt(database)));
    },
  };
}

function resume(database: string | null): AdminCommand {
  return {
    name: 'RESUME',
    readOnly: false,
    execute(control) {
      const r = control.resume(dbOpt(database));
      // PgBouncer errors on a RESUME with nothing paused; Control's RESUME is idempotent, so a
      // hook that always sends RESUME succeeds, and the operator still learns nothing changed.
      return r.wasPaused ? [commandComplete('RESUME')] : [notice(database === null ? 'nothing was paused' : `database ${database} was not paused`), commandComplete('RESUME')];
    },
  };
}

/** A verb with an optional database whose reply is just its tag (after `run` settles, if async). */
function simple(name: string, database: string | null, run: (control: Control, database: string | undefined) => unknown): AdminCommand {
  return {
    name,
    readOnly: false,
    execute(control) {
      const done = run(control, database ?? undefined);
      return done instanceof Promise ? done.then(() => [commandComplete(name)]) : [commandComplete(name)];
    },
  };
}

function reload(): AdminCommand {
  return {
    name: 'RELOAD',
    readOnly: false,
    execute(control) {
      control.reload();
      return [commandComplete('RELOAD')];
    },
  };
}

function shutdown(): AdminCommand {
  return {
    name: 'SHUTDOWN',
    readOnly: false,
    // Reply first: the shutdown may close this very connection.
    execute: () => [commandComplete('SHUTDOWN')],
    afterReply(control) {
      control.shutdown();
    },
  };
}

function show(text: string, item: string | null): AdminCommand {
  const run = item === null ? undefined : showItem(item);
  if (run === undefined) throw syntaxError(text);
  return { name: 'SHOW', readOnly: true, execute: run };
}

/** PgBouncer commands pgrelay does not implement: a clear refusal rather than "invalid command". */
function unsupported(verb: string): AdminCommand {
  return {
    name: verb,
    readOnly: false,
    execute() {
      throw new ConsoleError(`${verb} is not supported by pgrelay`);
    },
  };
}

/** SET of the fake session parameters is accepted and ignored, as PgBouncer does for drivers. */
function set(key: string): AdminCommand {
  if (FAKE_PARAMS.has(key.toLowerCase())) {
    return { name: 'SET', readOnly: true, execute: () => [notice('SET ignored'), commandComplete('SET')] };
  }
  return {
    name: 'SET',
    readOnly: false,
    execute() {
      throw new ConsoleError('SET is not supported by pgrelay; change the configuration file and RELOAD');
    },
  };
}

type Factory = (arg: string | null, text: string) => AdminCommand;

const COMMANDS: ReadonlyMap<string, Factory> = new Map<string, Factory>([
  ['pause', (db) => pause(db)],
  ['resume', (db) => resume(db)],
  ['reconnect', (db) => simple('RECONNECT', db, (c, d) => c.reconnect(d))],
  ['wait_close', (db) => simple('WAIT_CLOSE', db, (c, d) => c.waitClose(d))],
  ['kill', (db) => simple('KILL', db, (c, d) => c.kill(d))],
  [
    'reload',
    (arg, text) => {
      if (arg !== null) throw syntaxError(text);
      return reload();
    },
  ],
  // PgBouncer's WAIT_FOR_SERVERS / WAIT_FOR_CLIENTS modes are accepted: pgrelay's one shutdown
  // already lets clients finish their transactions and waits up to shutdown_timeout.
  [
    'shutdown',
    (arg, text) => {
      if (arg !== null && !['wait_for_servers', 'wait_for_clients'].includes(arg.toLowerCase())) throw syntaxError(text);
      return shutdown();
    },
  ],
  ['show', (item, text) => show(text, item)],
  ['select', (item, text) => show(text, item)],
  ['suspend', () => unsupported('SUSPEND')],
  ['disable', () => unsupported('DISABLE')],
  ['enable', () => unsupported('ENABLE')],
  ['kill_client', () => unsupported('KILL_CLIENT')],
]);

/** The command for one parsed statement; throws the PgBouncer syntax error for unknown ones. */
export function parseCommand(stmt: Statement): AdminCommand {
  if (stmt.kind === 'set') return set(stmt.key);
  const factory = COMMANDS.get(stmt.verb);
  if (factory === undefined) throw syntaxError(stmt.text);
  return factory(stmt.arg, stmt.text);
}
