// auth_hba_file: PgBouncer's subset of pg_hba.conf, first match wins, and every line outside the
// subset refused with file:line:reason (never skipped).

import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHbaFile, parseHba, type HbaConnection } from '../../src/auth/hba.js';

const FILE = '/etc/pgrelay/hba.conf';
const conn = (over: Partial<HbaConnection>): HbaConnection => ({ unix: false, tls: false, address: '10.1.2.3', database: 'app', user: 'alice', ...over });
const method = (text: string, c: Partial<HbaConnection>): string => {
  const r = parseHba(text, FILE).match(conn(c));
  return r === null ? 'no match' : `${r.method}@${r.line}`;
};

t.test('connection types: local, host, hostssl, hostnossl', async (t) => {
  const text = ['# comment', 'local all all trust', 'hostssl all all all scram-sha-256', 'hostnossl all all all reject', 'host all all all md5'].join('\n');
  t.equal(method(text, { unix: true }), 'trust@2', 'unix socket: local');
  t.equal(method(text, { tls: true }), 'scram-sha-256@3', 'TLS: hostssl');
  t.equal(method(text, { tls: false }), 'reject@4', 'plain TCP: hostnossl');
  t.equal(method('host all all all md5', { tls: true }), 'md5@1', 'host matches TLS too');
  t.equal(method('host all all all md5', { tls: false }), 'md5@1', 'and plain TCP');
  t.equal(method('host all all all md5', { unix: true }), 'no match', 'host never matches a Unix socket');
  t.equal(method('local all all trust', {}), 'no match', 'local never matches TCP');
});

t.test('databases and users: all, names, lists, quoted, sameuser, replication, @file', async (t) => {
  t.equal(method('host app,other alice all md5', { database: 'other' }), 'md5@1');
  t.equal(method('host app, other alice all md5', { database: 'other' }), 'md5@1', 'a blank after a comma continues the list (PgBouncer)');
  t.equal(method('host app alice all md5', { database: 'nope' }), 'no match');
  t.equal(method('host app bob,alice all md5', {}), 'md5@1');
  t.equal(method('host app bob all md5', {}), 'no match');
  t.equal(method('host "all" all all md5', { database: 'app' }), 'no match', 'quoted "all" is a name');
  t.equal(method('host "all" all all md5', { database: 'all' }), 'md5@1');
  t.equal(method('host "my ""db""" all all md5', { database: 'my "db"' }), 'md5@1', 'quotes inside quotes');
  t.equal(method('host sameuser all all md5', { database: 'alice' }), 'md5@1');
  t.equal(method('host sameuser all all md5', { database: 'app' }), 'no match');
  t.equal(method('host replication all all md5', { database: 'replication' }), 'no match', 'replication is a keyword, not the database named so');
  const dir = mkdtempSync(join(tmpdir(), 'pgrelay-hba-'));
  writeFileSync(join(dir, 'users.txt'), '# app users\nbob, carol\ndave\n');
  writeFileSync(join(dir, 'hba.conf'), 'host all @users.txt all scram-sha-256\nhost all all all reject\n');
  const rules = loadHbaFile(join(dir, 'hba.conf'));
  t.equal(rules.match(conn({ user: 'carol' }))?.method, 'scram-sha-256', '@file relative to the hba file');
  t.equal(rules.match(conn({ user: 'dave' }))?.method, 'scram-sha-256');
  t.equal(rules.match(conn({ user: 'alice' }))?.method, 'reject');
});

t.test('addresses: all, CIDR, address and mask, IPv6, IPv4-mapped clients', async (t) => {
  t.equal(method('host all all 10.1.0.0/16 md5', { address: '10.1.200.4' }), 'md5@1');
  t.equal(method('host all all 10.1.0.0/16 md5', { address: '10.2.0.1' }), 'no match');
  t.equal(method('host all all 10.1.2.3/32 md5', { address: '10.1.2.3' }), 'md5@1');
  t.equal(method('host all all 10.1.2.3 255.255.255.0 md5', { address: '10.1.2.77' }), 'md5@1', 'a separate mask field');
  t.equal(method('host all all 10.1.2.3 255.255.255.0 md5', { address: '10.1.3.77' }), 'no match');
  t.equal(method('host all all 127.0.0.1/32 md5', { address: '::ffff:127.0.0.1' }), 'md5@1', 'a dual-stack listener reports IPv4 clients as mapped');
  t.equal(method('host all all ::1/128 md5', { address: '::1' }), 'md5@1');
  t.equal(method('host all all fd00::/8 md5', { address: 'fd12:3456::1' }), 'md5@1');
  t.equal(method('host all all fd00::/8 md5', { address: '10.0.0.1' }), 'no match', 'an IPv6 range never matches IPv4');
  t.equal(method('host all all 0.0.0.0/0 md5', { address: 'fd00::1' }), 'no match', 'and the other way round');
  t.equal(method('host all all 0.0.0.0/0 md5', { address: '192.168.9.9' }), 'md5@1');
});

t.test('every method', async (t) => {
  for (const m of ['trust', 'reject', 'md5', 'scram-sha-256', 'password']) t.equal(method(`host all all all ${m}`, {}), `${m}@1`);
  t.equal(method('hostssl all all all cert', { tls: true }), 'cert@1');
});

t.test('outside the subset: refused with file:line:reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['hostgssenc all all all md5', /unknown connection type "hostgssenc".*GSSAPI encryption is not supported/],
    ['hots all all all md5', /unknown connection type "hots"/],
    ['host all all all peer', /method "peer" is not supported by pgrelay/],
    ['host all all all ldap ldapserver=x', /method "ldap" is not supported/],
    ['host all all all md55', /unknown authentication method "md55"/],
    ['hostssl all all all cert map=certmap', /options after the method are not supported.*user name maps/],
    ['hostssl all all all md5 clientcert=verify-full', /options after the method are not supported \(clientcert=verify-full\)/],
    ['host all all all cert', /cert method needs a hostssl line/],
    ['host all all db.example.com md5', /invalid address "db.example.com".*host names are not supported/],
    ['host all all samenet md5', /"samenet" is not supported/],
    ['host all all 10.0.0.0/33 md5', /invalid mask length "\/33"/],
    ['host all all 10.0.0.1 md5', /needs a \/bits suffix or a mask field/],
    ['host samerole all all md5', /"samerole" is not supported/],
    ['host all +admins all md5', /group membership \(\+admins\) is not supported/],
    ['host all all', /missing address/],
    ['host all', /missing user field/],
    ['local all all', /missing authentication method/],
    ['host "unterminated all all md5', /unterminated quoted string/],
    ['host a, all', /missing user field/],
    ['host all all all md5,trust', /authentication method takes one value/],
    ['host all @missing.txt all md5', /cannot read included file .*missing.txt: ENOENT/],
  ];
  for (const [line, reason] of cases) {
    t.throws(() => parseHba(`# first\n\n${line}\n`, FILE), { name: 'ConfigError', file: FILE, line: 3, reason }, line);
  }
  t.throws(() => loadHbaFile('/nonexistent/hba.conf'), { name: 'ConfigError', file: '/nonexistent/hba.conf', reason: /cannot read auth_hba_file: ENOENT/ });
});

t.test('no line matches: null (the login is refused)', async (t) => {
  t.equal(parseHba('', FILE).match(conn({})), null, 'an empty file allows nothing');
  t.equal(parseHba('# only comments\n', FILE).rules.length, 0);
});
