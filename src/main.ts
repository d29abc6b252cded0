#!/usr/bin/env -S node --max-semi-space-size=8
// Process edge: argv, signals and exit codes. The only file that touches `process`.

import { parseArgs } from 'node:util';
import { loadConfig, formatEffectiveSettings } from './config/load.js';
import { ConfigError } from './config/types.js';
import { App } from './app.js';
import { createLogger } from './logger.js';
import { VERSION } from './version.js';
import { preflight } from './preflight.js';

const USAGE = `pgrelay ${VERSION} — PostgreSQL connection pooler

Usage:
  pgrelay [options] CONFIG.ini     start the pooler in the foreground
  pgrelay --check CONFIG.ini       validate the config as startup would (files, addresses,
                                   admin token), print the effective settings, exit 0/1

Options:
  -c, --check       validate only
  -v, --verbose     more logging (repeat for trace)
  -q, --quiet       errors only
  -V, --version     print the version
  -h, --help        this text

Signals:
  SIGTERM, SIGINT   graceful shutdown: stop accepting, let each client finish its
                    transaction (up to shutdown_timeout), then exit 0. Admin console
                    sessions are closed at once. A second SIGTERM or SIGINT during a
                    shutdown (or one after the console's SHUTDOWN) closes every
                    connection now.
  SIGHUP            reload the config file; a file that does not load (or has no
                    [pgbouncer]/[pgrelay] or no [databases] section) is refused and
                    the running config stays
  SIGUSR1, SIGUSR2  pause all pools, resume

A config file without its main section or without [databases] is refused at
startup and by --check too (exit 1).
`;

function fail(message: string, code = 1): never {
  process.stderr.write(`pgrelay: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        check: { type: 'boolean', short: 'c' },
        verbose: { type: 'boolean', short: 'v', multiple: true },
        quiet: { type: 'boolean', short: 'q' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.version) {
    process.stdout.write(`pgrelay ${VERSION}\n`);
    return;
  }
  if (positionals.length !== 1) fail(`expected exactly one config file, got ${positionals.length}\n\n${USAGE}`, 2);
  const file = positionals[0]!;
  let config;
  try {
    config = loadConfig(file);
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : `cannot load ${file}: ${(err as Error).message}`);
  }
  // What startup would refuse once the file has parsed, each with the line that set it: the same
  // checks for --check and for a real start, so that one never passes what the other refuses.
  const checked = await preflight(config);
  const errorLines = checked.errors.map((e) => `pgrelay: ${e.message}\n`).join('');
  if (values.check) {
    for (const w of [...config.warnings, ...checked.warnings]) process.stderr.write(`warning: ${w.file}:${w.line}: ${w.message}\n`);
    if (errorLines !== '') {
      process.stderr.write(errorLines);
      process.exit(1);
    }
    process.stdout.write(formatEffectiveSettings(config));
    process.stdout.write('\n');
    return;
  }
  if (errorLines !== '') {
    process.stderr.write(errorLines);
    process.exit(1);
  }
  const verbosity = values.verbose?.length ?? 0;
  const level = values.quiet ? 'error' : verbosity >= 2 ? 'trace' : verbosity === 1 ? 'debug' : undefined;
  const logger = createLogger(config.settings, level);
  let app: App;
  try {
    app = new App(config, { logger, logLevelFromArgs: level !== undefined });
    await app.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'cannot start');
    logger.flush();
    fail((err as Error).message);
  }

  let stopping = false;
  const shutdown = (signal: string, deadlineMs?: number): void => {
    if (stopping) {
      // As PgBouncer's second SIGINT: the operator will not wait for the graceful shutdown.
      logger.warn({ signal }, 'second shutdown request: closing every connection now');
      void app.stop(0);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'signal received, shutting down');
    app.stop(deadlineMs).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: Error) => {
        logger.error({ err: err.message }, 'error during shutdown');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  app.onShutdownRequest = () => shutdown('SHUTDOWN command');
  // PgBouncer's signals: SIGUSR1 pauses everything, SIGUSR2 resumes.
  process.on('SIGUSR1', () => {
    app.control.pause({ by: 'signal SIGUSR1' }).then(
      (r) => logger.info({ signal: 'SIGUSR1', result: r.result, drainMs: r.drainMs }, 'pause by signal finished'),
      (err: Error) => logger.error({ err: err.message }, 'pause by signal failed'),
    );
  });
  process.on('SIGUSR2', () => {
    app.control.resume({ by: 'signal SIGUSR2' });
  });
  process.on('SIGHUP', () => {
    try {
      app.reloadFromFile();
    } catch {
      // Logged by reloadFromFile (file, line, reason); the running config stays.
    }
  });
}

main().catch((err: Error) => fail(err.stack ?? err.message));
