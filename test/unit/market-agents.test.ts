import { test } from "node:test";
import assert from "node:assert/strict";
import { topics } from "../../common/protocol.ts";
import { setup, USER } from "../fixtures/market-harness.ts";

// Who an agent is and whose verdicts move its record: agents named by their node, no borrowed or
// renamed identities, feedback only from the task's submitter, hostile submitters bounded
// (harness: test/fixtures/market-harness.ts).

test("one observation per attempt: feedback REPLACES the delivery verdict instead of adding a second", async () => {
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "t15", prompt: "p", skill: "math" });
  await h.feedback.onFeedback(USER, "t15", { success: true });
  assert.equal(h.counters.get("dropped.feedback.unknown-task"), 1);
  h.bid("n1", h.announces()[0]);
  const aw = h.award("n1")[0];
  h.ack("n1", aw);
  h.done("n1", aw, "x");
  await h.until(() => h.results("t15").length === 1, "result");
  // No check: delivery counts as a provisional success, and the node hears it with the record.
  const one = { successes: 1, failures: 0 };
  assert.deepEqual(h.reputation.record({ nodeId: "n1", agentId: aw.agentId }, "math"), one);
  assert.deepEqual(h.on(topics.nodeVerdict("n1")).map((m) => m.msg), [{ taskId: "t15", agentId: aw.agentId, success: true, source: "delivery", skill: "math", record: one }]);
  await h.feedback.onFeedback(USER, "t15", { success: false, score: 0.2 });
  await h.feedback.onFeedback(USER, "t15", { success: false });
  assert.equal(h.counters.get("feedback.applied"), 1);
  assert.equal(h.counters.get("dropped.feedback.repeated"), 1);
  // Still ONE observation, now a failure (it was 1 success + 1 failure when feedback was added on top).
  const corrected = { successes: 0, failures: 1 };
  assert.deepEqual(h.reputation.record({ nodeId: "n1", agentId: aw.agentId }, "math"), corrected);
  assert.deepEqual(h.on(topics.nodeVerdict("n1")).map((m) => m.msg).at(-1), { taskId: "t15", agentId: aw.agentId, success: false, source: "feedback", score: 0.2, skill: "math", record: corrected });
  // The stored attempt carries its verdict, so a restarted coordinator agrees.
  const stored = await h.store.getTask("t15");
  assert.deepEqual(stored?.attempts.at(-1)?.verdict, { success: false, source: "feedback" });
  await h.close();
});

test("agents are named by their node: the same agent id on two nodes is two agents; a failure on one does not exclude the other", async () => {
  const h = await setup();
  // The README's LAN setup: two nodes that both host the seed agents under the same ids.
  h.node("pi-a", "seed-add", ["add"], "a".repeat(64));
  h.node("pi-b", "seed-add", ["add"], "a".repeat(64));
  await h.submit({ id: "t-dup", prompt: "add 1 2 =", skill: "add" });
  const [a1] = h.announces();
  h.bid("pi-a", a1, { latencyMs: 10 }, "seed-add");
  h.bid("pi-b", a1, { latencyMs: 900 }, "seed-add");
  const aw1 = h.award("pi-a")[0];
  // pi-a dies holding the task.
  h.registry.onStatus({ state: "offline", nodeId: "pi-a" });
  const [, a2] = h.announces();
  assert.ok(a2, "re-auctioned");
  assert.deepEqual(a2.excludedAgents, [{ nodeId: "pi-a", agentId: "seed-add" }], "only pi-a's agent is excluded");
  h.bid("pi-b", a2, { latencyMs: 900 }, "seed-add");
  const aw2 = h.award("pi-b")[0];
  assert.ok(aw2, "pi-b's seed-add won the re-auction");
  h.ack("pi-b", aw2);
  h.done("pi-b", aw2, "3");
  await h.until(() => h.results("t-dup").length === 1, "result");
  const r = h.results("t-dup")[0];
  assert.equal(r.status, "ok");
  assert.deepEqual(r.attempts.map((x: any) => [x.nodeId, x.outcome]), [["pi-a", "offline"], ["pi-b", "ok"]]);
  // Two records: pi-a's failure is not pi-b's.
  assert.deepEqual(h.reputation.record({ nodeId: "pi-a", agentId: "seed-add", genome: "a".repeat(64) }, "add"), { successes: 0, failures: 1 });
  assert.deepEqual(h.reputation.record({ nodeId: "pi-b", agentId: "seed-add", genome: "a".repeat(64) }, "add"), { successes: 1, failures: 0 });
  void aw1;
  await h.close();
});

test("a node cannot bid with an agent it did not register, nor shed a penalty by renaming its agent", async () => {
  const h = await setup();
  const g = "b".repeat(64);
  h.node("good", "star", ["x"], "c".repeat(64));
  h.node("evil", "evil.a", ["x"], g);
  await h.submit({ id: "t-borrow", prompt: "p", skill: "x" });
  const [a] = h.announces();
  // evil bids under good's well-rated agent id: the bid is refused (it names no agent of evil's).
  h.bid("evil", a, { latencyMs: 1 }, "star");
  assert.equal(h.counters.get("dropped.bid.unregistered-agent"), 1);
  h.bid("good", a, { latencyMs: 500 }, "star");
  assert.equal(h.award("good").length, 1);
  assert.equal(h.award("evil").length, 0);
  // evil's agent fails a task and sits out a penalty...
  await h.submit({ id: "t-fail", prompt: "p", skill: "x" });
  const b = h.announces().find((x: any) => x.taskId === "t-fail");
  h.bid("evil", b, { latencyMs: 1 }, "evil.a");
  h.decline("good", b);
  h.ack("evil", h.award("evil")[0], false);
  assert.ok(h.reputation.penaltyOf({ nodeId: "evil", agentId: "evil.a", genome: g })!.until > h.clock.now());
  // ...then re-registers the same genome under a new name: still excluded, same record.
  h.node("evil", "evil.renamed", ["x"], g);
  await h.submit({ id: "t-after", prompt: "p", skill: "x" });
  const c = h.announces().find((x: any) => x.taskId === "t-after");
  assert.deepEqual(c.excludedAgents, [{ nodeId: "evil", agentId: "evil.renamed" }]);
  assert.deepEqual(h.reputation.record({ nodeId: "evil", agentId: "evil.renamed", genome: g }, "x"), { successes: 0, failures: 1 });
  await h.close();
});

test("a task belongs to its submitter: another's feedback is dropped, its id cannot be reused, replyTo stays in bounds", async () => {
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "t-own", prompt: "p", skill: "own" }, "submitter.alice");
  const [a] = h.announces();
  h.bid("n1", a);
  const aw = h.award("n1")[0];
  h.ack("n1", aw);
  h.done("n1", aw, "x");
  await h.until(() => h.results("t-own", "submitter.alice").length === 1, "result in alice's folder");
  assert.equal(h.results("t-own", "submitter.mallory").length, 0);
  // Mallory's feedback on alice's task changes nothing.
  await h.feedback.onFeedback("submitter.mallory", "t-own", { success: false });
  assert.equal(h.counters.get("dropped.feedback.not-owner"), 1);
  assert.deepEqual(h.reputation.record({ nodeId: "n1", agentId: "n1.a" }, "own"), { successes: 1, failures: 0 });
  await h.feedback.onFeedback("submitter.alice", "t-own", { success: false });
  assert.deepEqual(h.reputation.record({ nodeId: "n1", agentId: "n1.a" }, "own"), { successes: 0, failures: 1 });
  // Mallory cannot take alice's task id, even with the identical payload (no result is re-sent to her).
  await h.submit({ id: "t-own", prompt: "p", skill: "own" }, "submitter.mallory");
  assert.equal(h.events("t-own", "rejected", "submitter.mallory")[0]?.error.code, "DUPLICATE_TASK");
  assert.equal(h.results("t-own", "submitter.mallory").length, 0);
  // replyTo: the submitter's own folder or outside colony/; never another task's topic.
  await h.submit({ id: "t-r1", prompt: "p", replyTo: "colony/v1/submitters/submitter.alice/tasks/t-own/result" }, "submitter.mallory");
  await h.submit({ id: "t-r2", prompt: "p", replyTo: "colony/v1/nodes/n1/award" }, "submitter.mallory");
  for (const id of ["t-r1", "t-r2"]) assert.equal(h.events(id, "rejected", "submitter.mallory")[0]?.error.code, "REPLY_TO_FORBIDDEN", id);
  await h.submit({ id: "t-r3", prompt: "p", replyTo: "colony/v1/submitters/submitter.mallory/inbox" }, "submitter.mallory");
  await h.submit({ id: "t-r4", prompt: "p", replyTo: "home/results" }, "submitter.mallory");
  for (const id of ["t-r3", "t-r4"]) assert.equal(h.events(id, "accepted", "submitter.mallory").length, 1, id);
  await h.close();
});

/**
 * A market where alice (trusted) has seen agent n1.a answer well and n2.a answer so-so; then mallory
 * sends 100 tasks and gives feedback "wrong" whenever n1.a answered and "right" whenever n2.a did.
 * Returns who wins alice's next 20 tasks.
 */

async function hostileSubmitterScenario(trust: { verdictWindow?: number; untrustedWeight?: number }): Promise<string[]> {
  const h = await setup({}, undefined, { trustedSubmitters: ["submitter.alice"], ...trust });
  h.node("n1", "n1.a", ["q"]);
  h.node("n2", "n2.a", ["q"]);
  let n = 0;
  const run = async (by: string, check: string | undefined, answer: (nodeId: string, i: number) => string): Promise<{ id: string; winner: string }> => {
    const id = `t-${++n}`;
    await h.submit({ id, prompt: "q", skill: "q", ...(check ? { check: { type: "exact", value: check } } : {}) }, by);
    const a = h.announces().find((x: any) => x.taskId === id);
    for (const nodeId of ["n1", "n2"]) h.bid(nodeId, a, { latencyMs: 100, accuracy: 0.7 });
    const winner = h.award("n1").some((w: any) => w.taskId === id) ? "n1" : "n2";
    const aw = h.award(winner).find((w: any) => w.taskId === id);
    h.ack(winner, aw);
    h.done(winner, aw, answer(winner, n));
    await h.until(() => h.results(id, by).length === 1, `result of ${id}`);
    return { id, winner };
  };
  // Alice: n1.a is always right, n2.a two times in three.
  for (let i = 0; i < 60; i++) await run("submitter.alice", "ok", (node, k) => (node === "n1" || k % 3 ? "ok" : "no"));
  // Mallory: no check, then feedback against n1.a and for n2.a.
  for (let i = 0; i < 100; i++) {
    const { id, winner } = await run("submitter.mallory", undefined, () => "ok");
    await h.feedback.onFeedback("submitter.mallory", id, { success: winner !== "n1" });
  }
  const winners: string[] = [];
  for (let i = 0; i < 20; i++) winners.push((await run("submitter.alice", "ok", () => "ok")).winner);
  await h.close();
  return winners;
}

test("one hostile submitter cannot push a good agent out of the market (its verdicts count in a small window)", async () => {
  const winners = await hostileSubmitterScenario({});
  assert.ok(winners.filter((w) => w === "n1").length >= 15, `the good agent won ${winners.filter((w) => w === "n1").length} of 20 after the attack`);
  // The same attack, with a submitter's verdicts counted in full, does push it out: the window is what protects it.
  const unlimited = await hostileSubmitterScenario({ verdictWindow: 10_000, untrustedWeight: 1 });
  assert.ok(unlimited.filter((w) => w === "n1").length <= 5, `counted in full, the good agent still won ${unlimited.filter((w) => w === "n1").length} of 20`);
});
