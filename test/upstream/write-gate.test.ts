// Write-gate rules: writability from login ParameterStatus, target_session_attrs matching, and the
// probe query for servers that do not report in_hot_standby, run on a real primary and standby.

import t from 'tap';
import pg from 'pg';
import { gateApplies, satisfies, writableFromParams, WRITABLE_PROBE_SQL } from '../../src/upstream/write-gate.js';
import { startCluster } from '../harness/pg-cluster.js';

t.test('writability from ParameterStatus', async (t) => {
  t.equal(writableFromParams(new Map([['in_hot_standby', 'off']])), true);
  t.equal(writableFromParams(new Map([['in_hot_standby', 'on']])), false);
  t.equal(writableFromParams(new Map([['in_hot_standby', 'off'], ['default_transaction_read_only', 'on']])), false);
  t.equal(writableFromParams(new Map([['server_version', '13.4']])), null, 'older servers say nothing: probe needed');
});

t.test('target_session_attrs', async (t) => {
  t.ok(satisfies('read-write', true));
  t.notOk(satisfies('read-write', false));
  t.ok(satisfies('primary', true));
  t.ok(satisfies('standby', false));
  t.notOk(satisfies('read-only', true));
  t.ok(satisfies('any', false));
  t.notOk(gateApplies('any'));
  t.ok(gateApplies('read-write'));
});

t.test('the probe query fails on a standby and passes on a primary', async (t) => {
  const primary = await startCluster({ replication: true });
  t.teardown(() => primary.destroy());
  const standby = await primary.basebackupStandby();
  t.teardown(() => standby.destroy());
  const run = async (port: number): Promise<string> => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      await c.query(WRITABLE_PROBE_SQL);
      return 'writable';
    } catch (e) {
      return `refused: ${(e as Error).message}`;
    } finally {
      await c.end();
    }
  };
  t.equal(await run(primary.port), 'writable');
  t.match(await run(standby.port), /refused: read-only server/);
});
