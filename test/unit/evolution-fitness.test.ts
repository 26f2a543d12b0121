// Fitness formulas (coordinator/evolution/fitness.ts, docs/evolution.md) over market events with a fake clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeClock } from "../../common/clock.ts";
import { posteriorMean, type Record } from "../../common/accuracy.ts";
import { MarketEventBus, type AttemptVerdict } from "../../coordinator/market/events.ts";
import { FitnessBook } from "../../coordinator/evolution/fitness.ts";
import { WindowCounter } from "../../coordinator/evolution/window-counter.ts";

const HOUR = 3600_000;

function setup() {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 9, 0, 0));
  const events = new MarketEventBus();
  const records = new Map<string, Record>();
  const book = new FitnessBook({ events, windowMs: HOUR, now: () => clock.now(), record: (a, s) => records.get(`${a.nodeId}/${a.agentId}|${s}`) ?? { successes: 0, failures: 0 } });
  book.start();
  let n = 0;
  const run = (agentId: string, skill: string, verdict: AttemptVerdict, energyJ: number, tookMs: number) => {
    const taskId = `t${++n}`;
    const at = clock.now();
    events.emit("taskAccepted", { taskId, skill, submit: { prompt: "p" } as never, maxTokens: 8, deadlineAt: at + 1000, at });
    events.emit("attemptAwarded", { taskId, skill, attempt: 1, auctionId: `a${n}`, nodeId: "n1", agentId, bid: { latencyMs: 1, energyJ: 1, accuracy: 0.5 }, score: 1, bids: 1, at });
    clock.advance(tookMs);
    events.emit("taskFinished", { taskId, submitter: "s", skill, prompt: "p", status: "ok", attempts: 1, totalMs: tookMs, at: clock.now(), delivered: { attempt: 1, nodeId: "n1", agentId, output: "x", verdict, cost: { energyJ } } });
  };
  return { clock, events, records, book, run };
}

test("fitness: success from the one track record, energy per success over all deliveries, latency from award to result, wins in the window", () => {
  const { book, run, records, clock } = setup();
  records.set("n1/a1|add", { successes: 8, failures: 2 });
  for (let i = 0; i < 4; i++) run("a1", "add", { success: i < 3, source: "check" }, 2, 50);
  const [f] = book.agents();
  assert.equal(f!.success, posteriorMean(0.5, { successes: 8, failures: 2 }));
  assert.equal(f!.trials, 10);
  assert.equal(f!.energyPerSuccessJ, (4 * 2) / 3, "4 deliveries x 2 J over 3 successes");
  assert.equal(f!.latencyMs, 50);
  assert.equal(f!.wins, 4);
  clock.advance(HOUR + HOUR / 10);
  assert.equal(book.agents()[0]!.wins, 0, "wins leave with the window");
  assert.equal(book.demands()[0]!.previous, 4, "the window before still counts the demand");
  assert.equal(book.demands()[0]!.hourly[9], 4, "accepted at 09:xx UTC");
});

test("fitness: feedback that overturns a verdict moves energy per success; feedback that agrees changes nothing", () => {
  const { book, run, events, clock } = setup();
  for (let i = 0; i < 4; i++) run("a1", "add", { success: true, source: "check" }, 2, 10);
  assert.equal(book.agents()[0]!.energyPerSuccessJ, 2);
  const fb = (taskId: string, success: boolean, previous: boolean) =>
    events.emit("feedback", { taskId, submitter: "s", skill: "add", nodeId: "n1", agentId: "a1", verdict: { success, source: "feedback" }, previous: { success: previous, source: "check" }, at: clock.now() });
  fb("t1", false, true);
  fb("t2", false, true);
  assert.equal(book.agents()[0]!.energyPerSuccessJ, 4, "8 J over the 2 successes left");
  fb("t3", true, true);
  assert.equal(book.agents()[0]!.energyPerSuccessJ, 4);
  fb("t1", true, false);
  assert.equal(book.agents()[0]!.energyPerSuccessJ, 8 / 3);
});

test("fitness: persisted state comes back with its windows", () => {
  const a = setup();
  a.run("a1", "add", { success: true, source: "check" }, 1, 10);
  const dirty = a.book.takeDirty();
  assert.equal(dirty.length, 2, "one agent-skill entry and one demand entry");
  assert.equal(a.book.takeDirty().length, 0);
  const b = setup();
  b.book.load(dirty.filter((d) => !d.key.startsWith("demand|")).map((d) => d.value as never), dirty.filter((d) => d.key.startsWith("demand|")).map((d) => d.value as never));
  assert.equal(b.book.agents()[0]!.wins, 1);
  assert.equal(b.book.demands()[0]!.current, 1);
});

test("window counter: current and previous windows over buckets; a long gap empties both", () => {
  const w = new WindowCounter(1000, 10);
  w.add(0);
  w.add(950);
  assert.equal(w.current(999), 2);
  assert.equal(w.current(1050), 1.5, "the event at 950 is in; the bucket [0, 100) is half in the window (its events spread evenly)");
  assert.equal(w.current(1500), 1, "the event at 0 left the last second");
  assert.equal(w.previous(1500), 1);
  assert.equal(w.current(10_000) + w.previous(10_000), 0);
  const back = new WindowCounter(1000, 10, w.toJSON());
  back.add(10_050);
  assert.equal(back.current(10_060), 1);
});
