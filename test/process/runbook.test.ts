// The StackGres zero-downtime runbook's pgbouncer.ini (test/fixtures/runbook-pgbouncer.ini), run
// through pgrelay's CLI with only hosts, ports and paths changed: users that exist only in
// PostgreSQL log in through auth_user / auth_query (one with an md5 verifier, one with SCRAM), a
// wrong password gets 28P01, the admin console works, and nothing is warned about.

import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startCluster } from '../harness/pg-cluster.js';
import { spawnRelay } from '../harness/spawned-relay.js';
import { loginOutcome as login } from '../harness/login-outcome.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/runbook-pgbouncer.ini', import.meta.url));

// The runbook's cluster: password auth for everyone, a superuser postgres/sup3rus3r (what
// start-pgbouncer.sh puts in userlist.txt), and application users known only to PostgreSQL.
const cluster = await startCluster({
  auth: 'md5',
  users: [
    { name: 'postgres', password: 'sup3rus3r', superuser: true, encryption: 'scram-sha-256' },
    { name: 'app_md5', password: 'md5-pass', encryption: 'md5' },
    { name: 'app_scram', password: 'scram-pass', encryption: 'scram-sha-256' },
  ],
});
t.teardown(() => cluster.destroy());


t.test("the runbook's pgbouncer.ini, unchanged but for hosts, ports and paths", async (t) => {
  const dir = t.testdir({});
  const userlist = join(dir, 'userlist.txt');
  // start-pgbouncer.sh's userlist: postgres (auth_user) and the console users, nothing else.
  writeFileSync(userlist, '"postgres" "sup3rus3r"\n"pgbouncer_admin" "pgb0unc3r"\n"pgbouncer_stats" "pgb0unc3r"\n');
  const port = await freePort();
  const original = readFileSync(FIXTURE, 'utf8');
  const ini = original
    .replace('* = host=cluster port=5432', `* = host=127.0.0.1 port=${cluster.port}`)
    .replace('listen_addr=0.0.0.0', 'listen_addr=127.0.0.1')
    .replace('listen_port=5432', `listen_port=${port}`)
    .replace('auth_file=/etc/pgbouncer/userlist.txt', `auth_file=${userlist}`);
  const changed = ini.split('\n').filter((l, i) => l !== original.split('\n')[i]);
  t.equal(changed.length, 4, `only hosts, ports and paths differ: ${changed.join(' | ')}`);
  const file = join(dir, 'pgbouncer.ini');
  writeFileSync(file, ini);

  const check = spawnRelay(t, ['--check', file]);
  const checked = await check.exited;
  t.equal(checked.code, 0, `--check accepts it: ${check.stderr()}`);
  t.notMatch(check.stderr(), /auth_user|auth_query|warning/, '--check warns about nothing');

  const relay = spawnRelay(t, [file]);
  await relay.waitFor((l) => l.msg === 'pgrelay listening');
  t.equal(await login(port, 'app_md5', 'md5-pass'), 'ok:app_md5', 'a PostgreSQL-only user with an md5 verifier');
  t.equal(await login(port, 'app_scram', 'scram-pass'), 'ok:app_scram', 'a PostgreSQL-only user with a SCRAM verifier');
  t.equal(await login(port, 'app_md5', 'wrong'), 'error:28P01', 'a wrong password: 28P01');
  t.equal(await login(port, 'app_scram', 'wrong'), 'error:28P01');
  t.equal(await login(port, 'nobody', 'x'), 'error:28P01', 'an unknown user: the same');
  t.equal(await login(port, 'postgres', 'sup3rus3r'), 'ok:postgres', 'the auth_file user, as pgbench in the runbook');
  t.match(await login(port, 'pgbouncer_admin', 'pgb0unc3r', 'pgbouncer', 'SHOW VERSION'), /^ok:.*pgrelay/, 'the admin console (PAUSE/RESUME in the callbacks)');
  const warnings = relay.lines.filter((l) => l.level === 40);
  t.same(
    warnings.filter((l) => /auth_user|auth_query/.test(JSON.stringify(l))),
    [],
    'no warning about auth_user or auth_query',
  );
  t.same(
    warnings.filter((l) => !/client authentication failed|password authentication failed/.test(l.msg)).map((l) => l.msg),
    [],
    'and no warning at all besides the refused logins',
  );
  relay.child.kill('SIGTERM');
  t.equal((await relay.exited).code, 0);
});
