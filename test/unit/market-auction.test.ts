import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { Rng } from "../../common/random.ts";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import { Market } from "../../coordinator/market/market.ts";
import type { MarketSettings } from "../../coordinator/market/parts.ts";
import { CheckRunner } from "../../coordinator/market/checks.ts";
import { SubmitterQuota, type QuotaSettings } from "../../coordinator/market/quota.ts";
import { MarketEventBus } from "../../coordinator/market/events.ts";
import { FeedbackDesk } from "../../coordinator/market/feedback.ts";
import { Reputation } from "../../coordinator/market/reputation.ts";
import { VerdictRelay } from "../../coordinator/market/verdicts.ts";
import { Registry } from "../../coordinator/registry.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { Outbox, topics } from "../../common/protocol.ts";

// The market's state machine with a FAKE CLOCK (no sleeping), a recording publisher and a real
// LevelDB store in a temporary folder. Messages are fed in as the inbound router would.

type Msg = { topic: string; msg: any };
/** The submitter of the tests' tasks (its folder is colony/v1/submitters/submitter.t/). */
const USER = "submitter.t";

async function setup(settings: Partial<MarketSettings & QuotaSettings> = {}, dir?: string, trust: { trustedSubmitters?: string[]; verdictWindow?: number; untrustedWeight?: number } = {}) {
  const ownDir = dir ?? mkdtempSync(path.join(os.tmpdir(), "colony-auction-"));
  const store = new TaskStore(ownDir);
  await store.start();
  const clock = new FakeClock();
  const out: Msg[] = [];
  let market!: Market;
  const registry = new Registry(clock, 30_000);
  registry.events.on("nodeOffline", ({ nodeId }) => market.onNodeOffline(nodeId));
  const counters = new Counters(silentLogger, () => clock.now());
  const rng = new Rng(1);
  // Wired as coordinator/coordinator.ts wires them: the learners subscribe to the market's events.
  const events = new MarketEventBus((err) => assert.fail(`a market event subscriber threw: ${String(err)}`));
  const outbox = new Outbox({ publish: (topic, payload) => void out.push({ topic, msg: JSON.parse(payload) }) });
  // The tests' own submitters are trusted (their verdicts count in full) unless a test says otherwise.
  const reputation = new Reputation({ store, clock, events, logger: silentLogger, penaltyBaseMs: 1000, penaltyMaxMs: 60_000, trustedSubmitters: [USER, "submitter.alice"], ...trust });
  await reputation.start();
  const verdicts = new VerdictRelay(events, reputation, outbox);
  await verdicts.start();
  const feedback = new FeedbackDesk(store, events, clock, counters, (id) => market.isRunning(id));
  const checks = new CheckRunner();
  // No limits unless a test sets them (quota.ts).
  const quota = new SubmitterQuota({ submitRate: settings.submitRate ?? 0, submitBurst: settings.submitBurst ?? 1, maxOpenTasks: settings.maxOpenTasks ?? 0 }, clock);
  market = new Market({
    settings: { bidWindowMs: 300, maxAttempts: 3, ackWithinMs: 1000, defaultDeadlineMs: 60_000, defaultMaxTokens: 64, ...settings },
    clock, rng: () => rng.next(), store, registry, reputation, events, counters, logger: silentLogger, out: outbox, checks, quota,
  });
  // A restarted market (a store given): auctions open when the fake clock first moves, as the
  // roster's gate opens once the known nodes are back.
  await market.start(dir ? { gate: new Promise<void>((r) => clock.setTimer(0, r)) } : {});
  const h = {
    dir: ownDir, store, clock, out, market, registry, counters, reputation, bus: events, feedback,
    node(nodeId: string, agentId = `${nodeId}.a`, skills: string[] = [], genome?: string) {
      registry.onStatus({ state: "online", nodeId, protocol: 1, deviceClass: "sim", slots: 1, agents: [{ agentId, skills, model: "m", state: "awake", ...(genome ? { genome } : {}) }], models: ["m"], at: clock.now() });
    },
    /** A submit in the folder of submitter `by` (default "submitter.t"). */
    async submit(s: Record<string, unknown>, by = USER) {
      await market.onSubmit(Buffer.from(JSON.stringify(s)), by);
    },
    on: (prefix: string) => out.filter((m) => m.topic === prefix),
    announces: () => out.filter((m) => m.topic === topics.announce).map((m) => m.msg),
    events: (id: string, type?: string, by = USER) => out.filter((m) => m.topic === topics.taskEvents(by, id) && (!type || m.msg.type === type)).map((m) => m.msg),
    results: (id: string, by = USER) => out.filter((m) => m.topic === topics.taskResult(by, id)).map((m) => m.msg),
    bid(nodeId: string, a: { auctionId: string; taskId: string }, est: Partial<{ latencyMs: number; energyJ: number; accuracy: number }> = {}, agentId = `${nodeId}.a`) {
      market.onBid({ type: "bid", auctionId: a.auctionId, taskId: a.taskId, nodeId, agentId, estimate: { latencyMs: 100, energyJ: 1, accuracy: 0.8, ...est } });
    },
    decline(nodeId: string, a: { auctionId: string; taskId: string }) {
      market.onBid({ type: "decline", auctionId: a.auctionId, taskId: a.taskId, nodeId, reason: "no-skill" });
    },
    award: (nodeId: string) => out.filter((m) => m.topic === topics.nodeAward(nodeId)).map((m) => m.msg),
    ack(nodeId: string, aw: any, accepted = true) {
      market.onAck({ auctionId: aw.auctionId, taskId: aw.taskId, nodeId, agentId: aw.agentId, accepted });
    },
    done(nodeId: string, aw: any, output: string | undefined, status: "ok" | "error" = "ok") {
      market.onDone({ auctionId: aw.auctionId, taskId: aw.taskId, nodeId, agentId: aw.agentId, status, ...(output !== undefined ? { output } : {}) });
    },
    /** Real-time wait for async store writes (the fake clock does not move). */
    async until(pred: () => boolean, what: string) {
      for (let i = 0; i < 400; i++) {
        if (pred()) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.fail(`timed out waiting for ${what}; published: ${JSON.stringify(out.map((m) => [m.topic.split("/").slice(-2).join("/"), m.msg.type ?? ""]))}`);
    },
    async close(keep = false) {
      await market.close();
      await checks.close();
      await verdicts.close();
      await reputation.close();
      await registry.close();
      await store.close();
      if (!keep && !dir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
  return h;
}

test("auction closes as soon as every eligible node answered, awards the best bid, one result", async () => {
  const h = await setup();
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t1", prompt: "p", check: { type: "exact", value: "P" } });
  assert.equal(h.events("t1", "accepted").length, 1);
  const [a] = h.announces();
  assert.equal(a.taskId, "t1");
  assert.equal(a.attempt, 1);
  h.bid("n1", a, { latencyMs: 900 });
  assert.equal(h.award("n1").length + h.award("n2").length, 0, "awarded before all answered");
  h.bid("n2", a, { latencyMs: 50 });
  // No clock advance: all expected nodes answered, so the auction closed at once.
  assert.equal(h.award("n2").length, 1);
  assert.equal(h.award("n1").length, 0);
  const aw = h.award("n2")[0];
  h.ack("n2", aw);
  h.done("n2", aw, "P");
  await h.until(() => h.results("t1").length === 1, "result");
  const r = h.results("t1")[0];
  assert.equal(r.status, "ok");
  assert.equal(r.checked, true);
  assert.equal(r.agentId, "n2.a");
  assert.deepEqual(r.attempts.map((x: any) => x.outcome), ["ok"]);
  // A repeated done changes nothing.
  h.done("n2", aw, "P");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(h.results("t1").length, 1);
  const stored = await h.store.getTask("t1");
  assert.equal(stored?.state, "done");
  await h.close();
});

test("bid window: a silent node does not stall the auction past bidWindowMs", async () => {
  const h = await setup();
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t2", prompt: "p" });
  const [a] = h.announces();
  h.bid("n1", a);
  h.clock.advance(299);
  assert.equal(h.award("n1").length, 0);
  h.clock.advance(1);
  assert.equal(h.award("n1").length, 1);
  // A bid after the close is dropped and counted; so is one for an auction that never existed.
  h.bid("n2", a);
  h.bid("n2", { auctionId: "au-nope", taskId: "t2" });
  assert.equal(h.counters.get("dropped.bid.closed"), 1);
  assert.equal(h.counters.get("dropped.bid.unknown-auction"), 1);
  await h.close();
});

test("NO_BIDDERS: nobody online, or everyone declines -> an error result, never a hang", async () => {
  const h = await setup();
  await h.submit({ id: "t3", prompt: "p" });
  await h.until(() => h.results("t3").length === 1, "result");
  assert.equal(h.results("t3")[0].error.code, "NO_BIDDERS");
  assert.equal(h.announces().length, 0);
  h.node("n1");
  await h.submit({ id: "t4", prompt: "p" });
  h.decline("n1", h.announces()[0]);
  await h.until(() => h.results("t4").length === 1, "result");
  assert.equal(h.results("t4")[0].error.code, "NO_BIDDERS");
  await h.close();
});

test("missed ack: cancel, penalty, re-auction with a new auctionId and the agent excluded; late done recorded, not published", async () => {
  const h = await setup();
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t5", prompt: "p" });
  const a1 = h.announces()[0];
  h.bid("n1", a1, { latencyMs: 10 });
  h.bid("n2", a1, { latencyMs: 800 });
  const aw1 = h.award("n1")[0];
  h.clock.advance(1000);
  assert.equal(h.on(topics.nodeCancel("n1")).length, 1);
  assert.equal(h.events("t5", "retry")[0].error.code, "ACK_TIMEOUT");
  const a2 = h.announces()[1];
  assert.equal(a2.attempt, 2);
  assert.notEqual(a2.auctionId, a1.auctionId);
  assert.deepEqual(a2.excludedAgents, [{ nodeId: "n1", agentId: "n1.a" }]);
  // n1's bid for the new auction is ignored (excluded); n2 wins.
  h.bid("n1", a2, { latencyMs: 1 });
  h.bid("n2", a2, { latencyMs: 800 });
  const aw2 = h.award("n2")[0];
  assert.equal(aw2.attempt, 2);
  // The superseded node reports late: recorded, not final.
  h.done("n1", aw1, "late output");
  h.ack("n2", aw2);
  h.done("n2", aw2, "right");
  await h.until(() => h.results("t5").length === 1, "result");
  const r = h.results("t5")[0];
  assert.equal(r.output, "right");
  assert.deepEqual(r.attempts.map((x: any) => [x.agentId, x.outcome]), [["n1.a", "ack-timeout"], ["n2.a", "ok"]]);
  await h.until(() => h.counters.get("done.late") === 1, "late done counted");
  await new Promise((r) => setTimeout(r, 30));
  const stored = await h.store.getTask("t5");
  assert.equal(stored?.attempts[0]?.late?.status, "ok");
  assert.equal(h.results("t5").length, 1);
  await h.close();
});

test("attempt limit: every attempt errors -> ATTEMPTS_EXHAUSTED listing each attempt", async () => {
  const h = await setup({ maxAttempts: 2 });
  h.node("n1");
  h.node("n2");
  h.node("n3");
  await h.submit({ id: "t6", prompt: "p" });
  for (let i = 0; i < 2; i++) {
    const a = h.announces()[i];
    for (const n of ["n1", "n2", "n3"]) if (!(a.excludedAgents ?? []).some((x: any) => x.nodeId === n)) h.bid(n, a);
    const winner = ["n1", "n2", "n3"].find((n) => h.award(n).some((w) => w.auctionId === a.auctionId))!;
    const aw = h.award(winner).find((w) => w.auctionId === a.auctionId);
    h.ack(winner, aw);
    h.done(winner, aw, undefined, "error");
  }
  await h.until(() => h.results("t6").length === 1, "result");
  const r = h.results("t6")[0];
  assert.equal(r.error.code, "ATTEMPTS_EXHAUSTED");
  assert.equal(r.attempts.length, 2);
  assert.ok(r.attempts.every((x: any) => x.outcome === "error" && x.error.code === "AGENT_ERROR"));
  await h.close();
});

test("winner's node goes offline while running -> NODE_OFFLINE, re-auctioned, finished once", async () => {
  const h = await setup();
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t7", prompt: "p" });
  const a1 = h.announces()[0];
  h.bid("n1", a1, { latencyMs: 10 });
  h.bid("n2", a1, { latencyMs: 900 });
  h.ack("n1", h.award("n1")[0]);
  h.registry.onStatus({ state: "offline", nodeId: "n1" });
  assert.equal(h.events("t7", "retry")[0].error.code, "NODE_OFFLINE");
  const a2 = h.announces()[1];
  h.bid("n2", a2); // n1 is offline, so n2 is the only expected node: closes at once
  const aw = h.award("n2")[0];
  h.ack("n2", aw);
  h.done("n2", aw, "x");
  await h.until(() => h.results("t7").length === 1, "result");
  assert.deepEqual(h.results("t7")[0].attempts.map((x: any) => x.outcome), ["offline", "ok"]);
  await h.close();
});

test("duplicate id: a different payload is rejected, an exact re-send is idempotent", async () => {
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "t8", prompt: "p", maxTokens: 5 });
  await h.submit({ prompt: "p", id: "t8", maxTokens: 5 });
  await h.submit({ id: "t8", prompt: "other" });
  assert.equal(h.events("t8", "accepted").length, 2);
  assert.equal(h.events("t8", "rejected")[0].error.code, "DUPLICATE_TASK");
  assert.equal(h.announces().length, 1);
  await h.close();
});

test("bad submits: readable id -> rejected with a code; no id -> counted drop; bad regex -> CHECK_INVALID", async () => {
  const h = await setup();
  await h.submit({ id: "t9", prompt: "" });
  assert.equal(h.events("t9", "rejected")[0].error.code, "PAYLOAD_INVALID");
  await h.submit({ id: "t10", prompt: "x", surprise: 1 });
  assert.equal(h.events("t10", "rejected")[0].error.code, "PAYLOAD_INVALID");
  await h.submit({ id: "t11", prompt: "x", check: { type: "regex", pattern: "(" } });
  assert.equal(h.events("t11", "rejected")[0].error.code, "CHECK_INVALID");
  await h.market.onSubmit(Buffer.from("{not json"), USER);
  await h.submit({ prompt: 5 });
  assert.equal(h.counters.get("dropped"), 2);
  assert.equal(await h.store.getTask("t9"), undefined);
  await h.close();
});

test("task deadline passes during an attempt -> cancel and DEADLINE_EXCEEDED", async () => {
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "t12", prompt: "p", deadlineMs: 500 });
  const a = h.announces()[0];
  h.bid("n1", a, { latencyMs: 100 });
  h.ack("n1", h.award("n1")[0]);
  h.clock.advance(500);
  await h.until(() => h.results("t12").length === 1, "result");
  assert.equal(h.results("t12")[0].error.code, "DEADLINE_EXCEEDED");
  assert.equal(h.on(topics.nodeCancel("n1")).length, 1);
  await h.close();
});

test("maxTokens is resolved once, at acceptance: announce, award and a resumed task all carry it", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-auction-"));
  const h1 = await setup({ defaultMaxTokens: 64 }, dir);
  h1.clock.advance(0); // a fresh store: nobody to wait for
  h1.node("n1");
  await h1.submit({ id: "t-mt", prompt: "p" });
  assert.equal(h1.announces()[0].maxTokens, 64);
  assert.equal((await h1.store.getTask("t-mt"))?.maxTokens, 64);
  h1.bid("n1", h1.announces()[0]);
  assert.equal(h1.award("n1")[0].maxTokens, 64);
  await h1.close(true);
  // Restarted with another default: the accepted task keeps the value it was accepted with.
  const h2 = await setup({ defaultMaxTokens: 99 }, dir);
  h2.node("n1");
  h2.clock.advance(0);
  await new Promise((r) => setImmediate(r)); // the gate opens in a microtask
  assert.equal(h2.announces()[0].maxTokens, 64);
  await h2.submit({ id: "t-mt2", prompt: "p" });
  assert.equal(h2.announces().find((a: any) => a.taskId === "t-mt2").maxTokens, 99);
  await h2.close();
  rmSync(dir, { recursive: true, force: true });
});

test("restart: an unfinished task in the store is resumed with a new auction", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-auction-"));
  const h1 = await setup({}, dir);
  h1.clock.advance(0); // a fresh store: nobody to wait for
  h1.node("n1");
  await h1.submit({ id: "t13", prompt: "p" });
  h1.bid("n1", h1.announces()[0]);
  h1.ack("n1", h1.award("n1")[0]);
  await new Promise((r) => setTimeout(r, 30));
  await h1.close(true);
  const h2 = await setup({}, dir);
  h2.node("n1");
  h2.clock.advance(0);
  await new Promise((r) => setImmediate(r)); // the gate opens in a microtask
  const a = h2.announces()[0];
  assert.ok(a, `no announce after restart: ${JSON.stringify(h2.out)} ${JSON.stringify(await h2.store.getTask("t13"))}`);
  assert.equal(a.attempt, 2);
  h2.bid("n1", a);
  const aw = h2.award("n1")[0];
  h2.ack("n1", aw);
  h2.done("n1", aw, "ok");
  await h2.until(() => h2.results("t13").length === 1, "result");
  assert.deepEqual(h2.results("t13")[0].attempts.map((x: any) => x.outcome), ["restarted", "ok"]);
  await h2.close();
  rmSync(dir, { recursive: true, force: true });
});

test("concurrent identical submits create one task; replyTo gets a copy of the result", async () => {
  const h = await setup();
  h.node("n1");
  const s = { id: "t14", prompt: "p", replyTo: "app/results" };
  await Promise.all([h.submit(s), h.submit(s), h.submit(s)]);
  assert.equal(h.announces().length, 1);
  h.bid("n1", h.announces()[0]);
  const aw = h.award("n1")[0];
  h.ack("n1", aw);
  h.done("n1", aw, "out");
  await h.until(() => h.results("t14").length === 1, "result");
  const copies = h.out.filter((m) => m.topic === "app/results");
  assert.equal(copies.length, 1);
  assert.deepEqual(copies[0]!.msg, h.results("t14")[0]);
  await h.close();
});

test("checks: exact (trimmed by default), regex, json-schema decide the result's status", async () => {
  const h = await setup();
  h.node("n1");
  const cases: [string, Record<string, unknown>, string, string][] = [
    ["c1", { type: "exact", value: "42" }, " 42\n", "ok"],
    ["c2", { type: "exact", value: "42", trim: false }, " 42", "error"],
    ["c3", { type: "regex", pattern: "^\\d+$" }, "123", "ok"],
    ["c4", { type: "regex", pattern: "^\\d+$" }, "12a", "error"],
    ["c5", { type: "json-schema", schema: { type: "object", required: ["a"], properties: { a: { type: "number" } } } }, '{"a":1}', "ok"],
    ["c6", { type: "json-schema", schema: { type: "object", required: ["a"] } }, "not json", "error"],
  ];
  for (const [id, check, output, status] of cases) {
    await h.submit({ id, prompt: "p", check });
    const a = h.announces().at(-1);
    h.bid("n1", a);
    const aw = h.award("n1").at(-1);
    h.ack("n1", aw);
    h.done("n1", aw, output);
    await h.until(() => h.results(id).length === 1, `result ${id}`);
    const r = h.results(id)[0];
    assert.equal(r.status, status, id);
    assert.equal(r.checked, status === "ok", id);
    if (status === "error") assert.equal(r.error.code, "CHECK_FAILED");
    // The node that ran it learns the verdict (for its hot cache) with the coordinator's record.
    const verdicts = h.on(topics.nodeVerdict("n1")).map((m) => m.msg).filter((v) => v.taskId === id);
    assert.equal(verdicts.length, 1, id);
    assert.deepEqual({ ...verdicts[0], record: undefined }, { taskId: id, agentId: aw.agentId, success: status === "ok", source: "check", record: undefined }, id);
  }
  await h.close();
});

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

test("market events: accepted, awarded, failed and finished reach a subscriber added outside the market", async () => {
  const h = await setup();
  const seen: string[] = [];
  const finished: unknown[] = [];
  for (const name of ["taskAccepted", "attemptAwarded", "attemptFailed", "taskFinished", "feedback"] as const) h.bus.on(name, () => seen.push(name));
  h.bus.on("taskFinished", (e) => finished.push(e));
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t16", prompt: "hello", skill: "echo", check: { type: "exact", value: "ok" } });
  const [a] = h.announces();
  h.bid("n1", a, { latencyMs: 10 });
  h.bid("n2", a, { latencyMs: 900 });
  const aw1 = h.award("n1")[0];
  h.ack("n1", aw1, false);
  // Re-auctioned without n1's agent: n2 wins the second auction.
  const [, a2] = h.announces();
  assert.deepEqual(a2.excludedAgents, [{ nodeId: "n1", agentId: "n1.a" }]);
  h.bid("n2", a2, { latencyMs: 900 });
  h.decline("n1", a2);
  const aw2 = h.award("n2")[0];
  h.ack("n2", aw2);
  h.done("n2", aw2, "ok");
  await h.until(() => h.results("t16").length === 1, "result");
  assert.deepEqual(seen, ["taskAccepted", "attemptAwarded", "attemptFailed", "attemptAwarded", "taskFinished"]);
  const f = finished[0] as { prompt: string; status: string; skill: string; delivered: { agentId: string; nodeId: string; output: string; verdict: unknown } };
  assert.equal(f.prompt, "hello");
  assert.equal(f.status, "ok");
  assert.equal(f.skill, "echo");
  assert.deepEqual([f.delivered.nodeId, f.delivered.agentId, f.delivered.output], ["n2", "n2.a", "ok"]);
  assert.deepEqual(f.delivered.verdict, { success: true, source: "check" });
  // The refusal cost n1's agent one failure and a penalty; n2's agent has one success.
  assert.deepEqual(h.reputation.record({ nodeId: "n1", agentId: "n1.a" }, "echo"), { successes: 0, failures: 1 });
  assert.deepEqual(h.reputation.record({ nodeId: "n2", agentId: "n2.a" }, "echo"), { successes: 1, failures: 0 });
  assert.ok(h.reputation.penaltyOf({ nodeId: "n1", agentId: "n1.a" })!.until > h.clock.now());
  await h.close();
});

test("PROMPT_TOO_LONG when every node declines because the prompt fits none of its agents' contexts", async () => {
  const h = await setup();
  h.node("n1");
  h.node("n2");
  await h.submit({ id: "t-long", prompt: "x".repeat(500) });
  const [a] = h.announces();
  for (const n of ["n1", "n2"]) h.market.onBid({ type: "decline", auctionId: a.auctionId, taskId: a.taskId, nodeId: n, reason: "context", detail: "largest 32 tokens" });
  await h.until(() => h.results("t-long").length === 1, "result");
  const r = h.results("t-long")[0];
  assert.equal(r.error.code, "PROMPT_TOO_LONG");
  assert.match(r.error.message, /n1: largest 32 tokens/);
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

test("checks run off the event loop: a catastrophic regex times out while the loop stays free, and the task ends CHECK_TIMEOUT without blaming the agent; a reused $id and many schemas are fine", async () => {
  const { monitorEventLoopDelay } = await import("node:perf_hooks");
  const { CheckRunner } = await import("../../coordinator/market/checks.ts");
  const budgetMs = 300;
  const runner = new CheckRunner({ timeoutMs: budgetMs });
  try {
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const catastrophic = { type: "regex" as const, pattern: "^(a+)+$" };
    const schemaBomb = { type: "json-schema" as const, schema: { type: "string", pattern: "^(a+)+$" } };
    // Unbounded, each of these matches runs longer than the age of the universe.
    const evil = await Promise.all([
      ...Array.from({ length: 3 }, () => runner.run(catastrophic, "a".repeat(40) + "!")),
      runner.run(schemaBomb, JSON.stringify("a".repeat(40) + "!")),
    ]);
    loop.disable();
    assert.deepEqual(evil, ["timeout", "timeout", "timeout", "timeout"]);
    assert.equal(runner.timeouts, 4);
    // The checks ran in workers: the event loop never stalled for a check's whole time budget (in
    // the coordinator's thread each of these blocked it for the budget).
    assert.ok(loop.max / 1e6 < budgetMs, `event loop blocked ${(loop.max / 1e6).toFixed(1)} ms`);
  } finally {
    await runner.close();
  }
  // With the default budget: replaced workers answer, a reused $id is each schema's own, and many
  // distinct schemas compile without keeping them all (an LRU of 256 in the worker).
  const steady = new CheckRunner();
  try {
    assert.equal(await steady.run({ type: "regex", pattern: "^(a+)+$" }, "aaaa"), true);
    const a = { type: "json-schema" as const, schema: { $id: "https://example.com/x", type: "number" } };
    const b = { type: "json-schema" as const, schema: { $id: "https://example.com/x", type: "string" } };
    assert.equal(await steady.run(a, "1"), true);
    assert.equal(await steady.run(b, '"s"'), true);
    assert.equal(await steady.run(b, "1"), false);
    for (let i = 0; i < 400; i++) assert.equal(await steady.run({ type: "json-schema", schema: { const: i } }, String(i)), true);
  } finally {
    await steady.close();
  }
  // In the market: the task ends CHECK_TIMEOUT with the output, and the agent's record counts the delivery.
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "bomb", prompt: "p", check: { type: "regex", pattern: "^(a+)+$" } });
  h.bid("n1", h.announces().at(-1));
  const aw = h.award("n1").at(-1);
  h.ack("n1", aw);
  h.done("n1", aw, "a".repeat(40) + "!");
  for (let i = 0; i < 300 && h.results("bomb").length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const r = h.results("bomb")[0];
  assert.equal(r?.error?.code, "CHECK_TIMEOUT");
  assert.equal(r.output, "a".repeat(40) + "!");
  assert.equal(r.checked, undefined);
  const verdict = h.on(topics.nodeVerdict("n1")).map((m) => m.msg).find((v) => v.taskId === "bomb");
  assert.deepEqual([verdict.success, verdict.source], [true, "delivery"]);
  await h.close();
});

test("RATE_LIMITED: a submitter's unfinished tasks and request rate are bounded; an exact re-send is not limited; others are unaffected", async () => {
  const h = await setup({ maxOpenTasks: 2, submitRate: 1, submitBurst: 3 });
  h.node("n1");
  await h.submit({ id: "q1", prompt: "p" });
  await h.submit({ id: "q2", prompt: "p" });
  await h.submit({ id: "q3", prompt: "p" });
  assert.equal(h.events("q3", "rejected")[0]?.error.code, "RATE_LIMITED", "a third unfinished task");
  assert.match(h.events("q3", "rejected")[0].error.message, /2 unfinished tasks \(limit 2\)/);
  // An exact re-send of an accepted task is answered from its record, not counted.
  await h.submit({ id: "q1", prompt: "p" });
  assert.equal(h.events("q1", "accepted").length, 2);
  // Another submitter has its own quota.
  await h.submit({ id: "r1", prompt: "p" }, "submitter.alice");
  assert.equal(h.events("r1", "accepted", "submitter.alice").length, 1);
  // Both tasks are won and one finishes: room for one more, and the burst (3 requests, one was
  // refused, re-sends are free) has one left...
  const finish = async (id: string) => {
    const aw = h.award("n1").find((x) => x.taskId === id);
    h.ack("n1", aw);
    h.done("n1", aw, "out");
    await h.until(() => h.results(id).length === 1, `${id}'s result`);
  };
  for (const id of ["q1", "q2"]) h.bid("n1", h.announces().find((x) => x.taskId === id));
  await finish("q1");
  await h.submit({ id: "q4", prompt: "p" });
  assert.equal(h.events("q4", "accepted").length, 1);
  // ...so with room again, the rate refuses; a second later the bucket holds one request again.
  await finish("q2");
  await h.submit({ id: "q5", prompt: "p" });
  assert.match(h.events("q5", "rejected")[0]?.error.message ?? "", /requests\/s/);
  h.clock.advance(1000);
  await h.submit({ id: "q6", prompt: "p" });
  assert.equal(h.events("q6", "accepted").length, 1);
  await h.close();
});
