import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { topics } from "../../common/protocol.ts";
import { setup } from "../fixtures/market-harness.ts";

// The market's auction and attempt state machine: early close, bid window, failures and
// re-auctions, deadlines, restarts, market events (harness: test/fixtures/market-harness.ts).

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

test("an overdue attempt keeps running while no other agent could take the task; it is re-auctioned once one comes online", async () => {
  const h = await setup();
  h.node("n1");
  await h.submit({ id: "t13", prompt: "p", deadlineMs: 30_000 });
  h.bid("n1", h.announces()[0], { latencyMs: 100 });
  const aw = h.award("n1")[0];
  h.ack("n1", aw);
  // Due after 2 x 100 + 1000 ms: with nobody else to ask, a re-auction could only end NO_BIDDERS.
  h.clock.advance(1200);
  h.clock.advance(1200);
  assert.equal(h.events("t13", "retry").length, 0, "not given up");
  assert.equal(h.on(topics.nodeCancel("n1")).length, 0, "not cancelled");
  assert.equal(h.counters.get("attempts.overdue.kept"), 1, "counted once");
  h.done("n1", aw, "late but delivered");
  await h.until(() => h.results("t13").length === 1, "result");
  assert.equal(h.results("t13")[0].status, "ok");
  assert.deepEqual(h.results("t13")[0].attempts.map((x: any) => x.outcome), ["ok"]);

  // The same, until a second node with an agent for the task comes online: then the next check gives up.
  await h.submit({ id: "t14", prompt: "p", deadlineMs: 30_000 });
  const a1 = h.announces().at(-1);
  h.bid("n1", a1, { latencyMs: 100 });
  h.ack("n1", h.award("n1").at(-1));
  h.clock.advance(1200);
  assert.equal(h.events("t14", "retry").length, 0);
  h.node("n2");
  h.clock.advance(1200);
  assert.equal(h.events("t14", "retry")[0].error.code, "ATTEMPT_TIMEOUT");
  assert.match(h.events("t14", "retry")[0].error.message, /no result within 2400 ms of the ack/);
  const a2 = h.announces().at(-1);
  assert.notEqual(a2.auctionId, a1.auctionId);
  h.bid("n2", a2);
  const aw2 = h.award("n2")[0];
  h.ack("n2", aw2);
  h.done("n2", aw2, "x");
  await h.until(() => h.results("t14").length === 1, "result");
  assert.deepEqual(h.results("t14")[0].attempts.map((x: any) => [x.nodeId, x.outcome]), [["n1", "attempt-timeout"], ["n2", "ok"]]);
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
