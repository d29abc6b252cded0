// Starts pgrelay in-process for tests: an App on a free loopback port in front of a harness
// cluster, with a silent logger unless PGRELAY_TEST_LOG is set. Stopped by t.teardown.

import { pino } from 'pino';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../../src/app.js';
import { buildConfig, type ConfigInput } from '../../src/config/load.js';
import type { Settings, DatabaseConfig } from '../../src/config/types.js';

export interface RelayOptions {
  settings?: Partial<Settings>;
  databases?: Record<string, Partial<Omit<DatabaseConfig, 'name'>>>;
  users?: ConfigInput['users'];
  /** Start the HTTP admin API on a free loopback port. */
  admin?: boolean;
  /** auth_file lines as user → secret; written to a temp file. */
  authFile?: Record<string, string>;
}

export interface Relay {
  app: App;
  port: number;
  /** http://127.0.0.1:PORT of the admin API, when started. */
  adminUrl: string | null;
  url(opts?: { user?: string; password?: string; database?: string }): string;
  stop(): Promise<void>;
}

export async function startRelay(upstream: { host: string; port: number }, opts: RelayOptions = {}): Promise<Relay> {
  let authFile: string | null = null;
  if (opts.authFile !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'pgrelay-auth-'));
    authFile = join(dir, 'userlist.txt');
    writeFileSync(authFile, Object.entries(opts.authFile).map(([u, s]) => `"${u}" "${s.replace(/"/g, '""')}"\n`).join(''));
  }
  const config = buildConfig({
    settings: {
      listenAddr: ['127.0.0.1'],
      listenPort: 0,
      authType: 'trust',
      authFile,
      logConnections: false,
      logDisconnections: false,
      ignoreStartupParameters: ['extra_float_digits'],
      ...opts.settings,
    },
    databases: opts.databases ?? { '*': { hosts: [{ host: upstream.host, port: upstream.port }] } },
    users: opts.users ?? {},
  });
  const level = process.env['PGRELAY_TEST_LOG'] ?? 'silent';
  const app = new App(config, { logger: pino({ level }, pino.destination(2)) });
  await app.start();
  const port = app.port;
  const adminUrl = opts.admin === true ? `http://127.0.0.1:${(await app.startAdmin(0)).port}` : null;
  return {
    app,
    port,
    adminUrl,
    url: ({ user = 'postgres', password, database = 'postgres' } = {}) =>
      `postgresql://${encodeURIComponent(user)}${password !== undefined ? ':' + encodeURIComponent(password) : ''}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    stop: () => app.stop(200),
  };
}
