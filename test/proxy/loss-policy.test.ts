// answerToLoss over its whole input space: every combination of where a client's protocol can
// stand when its server goes, checked against the rules stated one by one (never 'I' inside a
// transaction, relink only before any byte was sent, session pooling always ends).

import t from 'tap';
import { answerToLoss, LossAnswer, type LossSite } from '../../src/proxy/loss-policy.js';
import { TxStatus } from '../../src/protocol/message-types.js';

const base: LossSite = { linking: false, fatalForwarded: false, transactionPooling: true, txStatus: TxStatus.Idle, outstanding: 1, unsynced: false, atBoundary: true };

t.test('one row per rule', async (t) => {
  t.equal(answerToLoss(base), LossAnswer.FailRequests, "autocommit request, last status 'I', all whole: the requests fail, the session goes on");
  t.equal(answerToLoss({ ...base, outstanding: 3 }), LossAnswer.FailRequests, 'three pipelined requests: still answered one by one');
  t.equal(answerToLoss({ ...base, linking: true }), LossAnswer.Relink, 'lost while being prepared: nothing of the client reached it');
  t.equal(answerToLoss({ ...base, linking: true, txStatus: TxStatus.InTransaction, unsynced: true }), LossAnswer.Relink, 'linking wins over everything else');
  t.equal(answerToLoss({ ...base, fatalForwarded: true }), LossAnswer.End, "the client has the server's FATAL already");
  t.equal(answerToLoss({ ...base, txStatus: TxStatus.InTransaction }), LossAnswer.Fatal, "inside BEGIN ('T'): FATAL, never 'I'");
  t.equal(answerToLoss({ ...base, txStatus: TxStatus.Failed }), LossAnswer.Fatal, "in a failed transaction ('E'): FATAL");
  t.equal(answerToLoss({ ...base, unsynced: true }), LossAnswer.Fatal, 'Parse/Bind/Execute without their Sync: FATAL');
  t.equal(answerToLoss({ ...base, atBoundary: false }), LossAnswer.Fatal, 'half a message forwarded: FATAL');
  t.equal(answerToLoss({ ...base, outstanding: 0 }), LossAnswer.Fatal, 'nothing to answer: FATAL (the server state is gone all the same)');
  t.equal(answerToLoss({ ...base, transactionPooling: false }), LossAnswer.Fatal, "session pooling: the session's state is gone");
});

t.test('every combination obeys the rules', async (t) => {
  const statuses = [TxStatus.Idle, TxStatus.InTransaction, TxStatus.Failed];
  const bools = [false, true];
  const seen = new Map<LossAnswer, number>();
  let checked = 0;
  let failures = 0;
  for (const linking of bools)
    for (const fatalForwarded of bools)
      for (const transactionPooling of bools)
        for (const txStatus of statuses)
          for (const outstanding of [0, 1, 2])
            for (const unsynced of bools)
              for (const atBoundary of bools) {
                const site: LossSite = { linking, fatalForwarded, transactionPooling, txStatus, outstanding, unsynced, atBoundary };
                const answer = answerToLoss(site);
                seen.set(answer, (seen.get(answer) ?? 0) + 1);
                checked++;
                const broken: string[] = [];
                if (linking !== (answer === LossAnswer.Relink)) broken.push('Relink exactly when the server was still being prepared');
                if (!linking && fatalForwarded !== (answer === LossAnswer.End)) broken.push('End exactly when a FATAL was forwarded (and not linking)');
                if (answer === LossAnswer.FailRequests) {
                  if (txStatus !== TxStatus.Idle) broken.push("an idle ReadyForQuery while the client believes it is in a transaction");
                  if (!transactionPooling) broken.push('session pooling went on');
                  if (unsynced || !atBoundary) broken.push('a partial request was answered');
                  if (outstanding === 0) broken.push('answered a request nobody sent');
                }
                const mayGoOn = !linking && !fatalForwarded && transactionPooling && txStatus === TxStatus.Idle && outstanding > 0 && !unsynced && atBoundary;
                if (mayGoOn !== (answer === LossAnswer.FailRequests)) broken.push('FailRequests exactly in the one safe case');
                if (!linking && !fatalForwarded && !mayGoOn && answer !== LossAnswer.Fatal) broken.push('everything else is a FATAL');
                if (broken.length > 0) {
                  failures++;
                  if (failures <= 5) t.fail(`${JSON.stringify({ ...site, txStatus: String.fromCharCode(txStatus) })} -> ${answer}: ${broken.join('; ')}`);
                }
              }
  t.equal(checked, 2 * 2 * 2 * 3 * 3 * 2 * 2, 'the whole table');
  t.equal(failures, 0, `all ${checked} combinations follow the rules`);
  t.same([...seen.keys()].sort(), [LossAnswer.End, LossAnswer.FailRequests, LossAnswer.Fatal, LossAnswer.Relink].sort(), 'every answer is reachable');
  // The one safe case: linking=false, no FATAL, transaction pooling, 'I', outstanding 1 or 2, synced, at a boundary.
  t.equal(seen.get(LossAnswer.FailRequests), 2, 'FailRequests in exactly two rows');
});
