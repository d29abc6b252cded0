// The reply matcher's table for plain entries (entries without a StatementStep) must decide every
// reply exactly as the full matcher does: same verdict, same queue, same frames read, same
// desyncs, and the same bytes written when the reply is taken. Checked for every entry kind
// against every reply the tracking decides on, with and without pgrelay's own answer queued
// right behind the head.

import t from 'tap';
import { Backend } from '../../src/protocol/message-types.js';
import { CloseComplete } from '../../src/protocol/statement-messages.js';
import { Expect, ReplyQueue, StatementStep } from '../../src/proxy/reply-queue.js';
import { ReplyTracker, TRACKING_SERVER_FRAMES, type TrackedServer } from '../../src/proxy/reply-tracking.js';
import type { ServerClient } from '../../src/proxy/server-client.js';
import { FrameMode, type Verdict } from '../../src/protocol/frame-scanner.js';

/** A whole reply frame of `type` with a plausible body. */
function frame(type: number): Buffer {
  const body =
    type === Backend.ReadyForQuery
      ? Buffer.from('T')
      : type === Backend.CommandComplete
        ? Buffer.from('SELECT 1\0')
        : type === Backend.RowDescription
          ? Buffer.from([0, 0])
          : type === Backend.ErrorResponse
            ? Buffer.from('SERROR\0VERROR\0C22012\0Mdivision by zero\0\0')
            : Buffer.alloc(0);
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** What one tracker did, as far as anyone outside it can see. */
interface Seen {
  verdict: Verdict;
  left: number;
  frames: string[];
  lost: string[];
  sent: string[];
  outstanding: number;
}

function run(kind: Expect, type: number, fakeBehind: boolean, full: boolean): Seen {
  const frames: string[] = [];
  const lost: string[] = [];
  const server: TrackedServer = {
    statements: null,
    copyIn: false,
    onFrame: (ft, buf, start, end) => frames.push(`${String.fromCharCode(ft)}:${buf.subarray(start, end).toString('hex')}`),
    lostTrack: (detail) => lost.push(detail),
  };
  const tracker = new ReplyTracker(server);
  const q = new ReplyQueue();
  q.push(kind);
  if (fakeBehind) {
    const step = new StatementStep(null, null);
    step.fake = CloseComplete;
    step.resolved = true;
    step.seq = 1;
    q.push(Expect.Close, step);
  }
  q.push(Expect.Sync);
  const sent: string[] = [];
  const client = {
    protocol: { outstanding: 1 },
    sendToClient: (b: Buffer) => sent.push(b.toString('hex')) > 0,
  } as unknown as ServerClient;
  const f = frame(type);
  const decide = full ? (tracker as unknown as { match: ReplyTracker['decide'] }).match.bind(tracker) : tracker.decide.bind(tracker);
  const verdict = decide(q, type, f.length - 1, f, 0, f.length);
  if (verdict === 2) tracker.taken(client, q, type, f, 0, f.length);
  return { verdict, left: q.length, frames, lost, sent, outstanding: client.protocol.outstanding };
}

const KINDS = [Expect.Parse, Expect.Bind, Expect.Describe, Expect.Execute, Expect.Close, Expect.Sync, Expect.Query, Expect.FunctionCall];
// Every reply the tracking decides on, read from its mode table: a type added there is checked here.
const REPLIES = [...TRACKING_SERVER_FRAMES.keys()].filter((type) => TRACKING_SERVER_FRAMES[type] === FrameMode.Decide);

t.test('every reply to a plain entry is decided as the full matcher decides it', async (t) => {
  let checked = 0;
  let pops = 0;
  for (const kind of KINDS) {
    for (const type of REPLIES) {
      for (const fakeBehind of [false, true]) {
        const fast = run(kind, type, fakeBehind, false);
        const full = run(kind, type, fakeBehind, true);
        t.same(fast, full, `entry ${kind}, reply '${String.fromCharCode(type)}'${fakeBehind ? ', own answer behind' : ''}`);
        checked++;
        if (fast.left < (fakeBehind ? 3 : 2) && fast.lost.length === 0) pops++;
      }
    }
  }
  t.equal(REPLIES.length, 10, 'the ten replies that answer a message');
  t.equal(checked, KINDS.length * REPLIES.length * 2);
  // The table is not empty: the answers it covers pop their entry (and, with an own answer
  // behind, release it: the CloseComplete goes out right after the reply).
  t.ok(pops >= 20, `${pops} pairs answered an entry`);
  const behind = run(Expect.Bind, Backend.BindComplete, true, false);
  t.same(behind.sent, [frame(Backend.BindComplete).toString('hex'), CloseComplete.toString('hex')], 'the reply, then pgrelay\'s own CloseComplete');
  t.equal(behind.left, 1, 'both entries gone; the Sync remains');
});

t.test('a reply no plain entry expects is a desync, found by the full matcher', async (t) => {
  const seen = run(Expect.Parse, Backend.BindComplete, false, false);
  t.equal(seen.lost.length, 1, 'lostTrack is called');
  t.match(seen.lost[0], /reply '2' while expecting 1/);
});
