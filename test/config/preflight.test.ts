// `pgrelay --check` (the real CLI, spawned) refuses with file:line what startup would refuse:
// a missing or unreadable auth_file, an admin API open to the network without a token, a listen
// address that does not resolve or is not on this host. Startup runs the same checks first.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/load.js';
import { preflight } from '../../src/preflight.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src/main.ts'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const DBS = '[databases]\n* = host=127.0.0.1\n';

t.test('--check fails with file:line for what startup would refuse', async (t) => {
  const dir = t.testdir({
    'userlist.txt': '"app" "secret"\n',
    'broken-userlist.txt': '"app" secret\n',
    'token': 'tok\n',
  });
  const cases: Array<[string, string, RegExp]> = [
    ['missing-auth.ini', `${DBS}[pgbouncer]\nauth_file = nope.txt\n`, /missing-auth\.ini:4: auth_file .*nope\.txt: no such file$/m],
    ['comment-in-auth.ini', `${DBS}[pgbouncer]\nauth_file = userlist.txt ; "user" "secret" lines\n`, /comment-in-auth\.ini:4: auth_file .*userlist\.txt ; "user" "secret" lines: no such file \(a ";" after a value is not a comment/m],
    ['broken-auth.ini', `${DBS}[pgbouncer]\nauth_file = broken-userlist.txt\n`, /broken-auth\.ini:4: auth_file: .*broken-userlist\.txt:1: expected whitespace and a double-quoted secret/m],
    ['dir-auth.ini', `${DBS}[pgbouncer]\nauth_file = .\n`, /dir-auth\.ini:4: auth_file .*: is a directory, not a file/m],
    ['open-admin.ini', `${DBS}[pgbouncer]\nadmin_listen_addr = 0.0.0.0\nadmin_listen_port = 8080\n`, /open-admin\.ini:4: admin_listen_addr "0\.0\.0\.0" is not a loopback address and no admin token is set/m],
    ['missing-token.ini', `${DBS}[pgbouncer]\nadmin_listen_addr = 0.0.0.0\nadmin_listen_port = 8080\nadmin_token_file = nope-token\n`, /missing-token\.ini:6: admin_token_file .*nope-token: no such file/m],
    ['port-in-addr.ini', `${DBS}[pgbouncer]\nlisten_addr = 127.0.0.1:56436\n`, /port-in-addr\.ini:4: listen_addr "127\.0\.0\.1:56436" includes a port: listen_addr takes addresses only; write 127\.0\.0\.1 and put 56436 in listen_port/m],
    ['unresolvable.ini', `${DBS}[pgbouncer]\nlisten_addr = no-such-host.invalid\n`, /unresolvable\.ini:4: listen_addr "no-such-host\.invalid" does not resolve/m],
    ['foreign-addr.ini', `${DBS}[pgbouncer]\nlisten_addr = 192.0.2.77\n`, /foreign-addr\.ini:4: listen_addr "192\.0\.2\.77" is not an address of this host/m],
    ['misspelled-section.ini', '[database]\napp = host=db\n[pgbouncer]\n', /misspelled-section\.ini:1: unknown section \[database\] \(did you mean \[databases\]\?\)/m],
    ['socket-dir.ini', `${DBS}[pgbouncer]\nunix_socket_dir = /nonexistent-dir\n`, /socket-dir\.ini:4: unix_socket_dir \/nonexistent-dir is not a directory/m],
  ];
  for (const [name, text, expected] of cases) {
    writeFileSync(join(dir, name), text);
    const r = cli('--check', join(dir, name));
    t.equal(r.status, 1, `${name}: exit 1`);
    t.match(r.stderr, expected, name);
    t.equal(r.stdout, '', `${name}: no effective settings printed`);
  }
  writeFileSync(join(dir, 'good.ini'), `${DBS}[pgbouncer]\nauth_file = userlist.txt\nadmin_listen_addr = 0.0.0.0\nadmin_listen_port = 8080\nadmin_token_file = token\nlisten_addr = 127.0.0.1,localhost\n`);
  const ok = cli('--check', join(dir, 'good.ini'));
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /^auth_file = .*userlist\.txt$/m);
});

t.test('an unreadable auth_file, for the user pgrelay runs as', async (t) => {
  const dir = t.testdir({ 'userlist.txt': '"app" "x"\n', 'p.ini': `${DBS}[pgbouncer]\nauth_file = userlist.txt\n` });
  chmodSync(join(dir, 'userlist.txt'), 0o000);
  // Root reads every file: run the check as nobody, as a packaged service would run.
  const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : [];
  const r = spawnSync(asNobody[0] ?? process.execPath, [...asNobody.slice(1), ...(asNobody.length > 0 ? [process.execPath] : []), '--import', 'tsx', join(REPO, 'src/main.ts'), '--check', join(dir, 'p.ini')], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(REPO, 'tsconfig.json') },
  });
  t.equal(r.status, 1, r.stderr);
  t.match(r.stderr, /p\.ini:4: auth_file .*userlist\.txt: not readable by this user/);
});

t.test('startup refuses the same way, before binding anything', async (t) => {
  const dir = t.testdir({ 'p.ini': `${DBS}[pgbouncer]\nlisten_port = 56999\nauth_file = nope.txt\n` });
  const r = cli(join(dir, 'p.ini'));
  t.equal(r.status, 1);
  t.match(r.stderr, /p\.ini:5: auth_file .*nope\.txt: no such file/);
  t.notMatch(r.stdout, /listening/);
});

t.test('preflight in process: empty secrets are warnings, every error names its line', async (t) => {
  const dir = t.testdir({ 'userlist.txt': '"app" ""\n', 'p.ini': `${DBS}[pgbouncer]\nauth_file = userlist.txt\npidfile = /nonexistent-dir/pgrelay.pid\n` });
  const r = await preflight(loadConfig(join(dir, 'p.ini')));
  t.same(r.errors.map((e) => [e.line, e.reason]), [[5, 'pidfile /nonexistent-dir/pgrelay.pid: its directory does not exist']]);
  t.match(r.warnings, [{ line: 4, key: 'auth_file', message: /user "app" has an empty secret/ }]);
});
