import { test } from "node:test";
import assert from "node:assert/strict";
import { topics } from "../../common/protocol.ts";
import { setup, USER } from "../fixtures/market-harness.ts";

// A submit's way in and a delivered output's judgement: duplicates, bad submits, concurrency,
// checks (also off the event loop), per-submitter quotas (harness: test/fixtures/market-harness.ts).

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

test("checks run off the event loop: a catastrophic regex times out while the loop stays free, and the task ends CHECK_TIMEOUT without blaming the agent; a reused $id and many schemas are fine", async () => {
  const { monitorEventLoopDelay } = await import("node:perf_hooks");
  const { CheckRunner } = await import("../../coordinator/market/checks.ts");
  const { Counters } = await import("../../common/counters.ts");
  const { silentLogger } = await import("../../common/logger.ts");
  const counters = new Counters(silentLogger);
  const budgetMs = 300;
  const runner = new CheckRunner(counters, { timeoutMs: budgetMs });
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
    assert.equal(counters.get("checks.timeout"), 4);
    // The checks ran in workers: the event loop never stalled for a check's whole time budget (in
    // the coordinator's thread each of these blocked it for the budget).
    assert.ok(loop.max / 1e6 < budgetMs, `event loop blocked ${(loop.max / 1e6).toFixed(1)} ms`);
  } finally {
    await runner.close();
  }
  // With the default budget: replaced workers answer, a reused $id is each schema's own, and many
  // distinct schemas compile without keeping them all (an LRU of 256 in the worker).
  const steady = new CheckRunner(counters);
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
  // Both refusals (the open-task limit, then the rate) are counted for `colony status`.
  assert.equal(h.counters.get("submitters.rate-limited"), 2);
  await h.close();
});

/** Holds the store's FIRST putTask (the acceptance write) until `release(ok)`; later writes pass. */
function holdFirstWrite(h: Awaited<ReturnType<typeof setup>>) {
  const put = h.store.putTask.bind(h.store);
  let release!: (ok: boolean) => void;
  let first = true;
  h.store.putTask = (rec) => {
    if (!first) return put(rec);
    first = false;
    return new Promise<void>((resolve, reject) => (release = (ok) => (ok ? put(rec).then(resolve, reject) : reject(new Error("disk full")))));
  };
  return (ok: boolean) => release(ok);
}

test("the first auction overlaps the task's store write: a bid in before the write waits for it; events stay accepted, announced, awarded", async () => {
  const h = await setup();
  h.node("n1");
  const release = holdFirstWrite(h);
  const submitting = h.submit({ id: "ov1", prompt: "p", maxTokens: 5 });
  await h.until(() => h.announces().length === 1, "the announce while the task is being stored");
  assert.deepEqual(h.events("ov1"), [], "nothing tells the submitter anything before the task is stored");
  h.bid("n1", h.announces()[0]);
  assert.equal(h.award("n1").length, 0, "no award before the task is durable");
  release(true);
  await submitting;
  await h.until(() => h.award("n1").length === 1, "the award once stored");
  assert.deepEqual(h.events("ov1").map((e) => e.type), ["accepted", "announced", "awarded"]);
  assert.equal((await h.store.getTask("ov1"))?.state, "open");
  await h.close();
});

test("the first auction overlaps the task's store write: a failed write rejects the task, and its auction awards nothing and decides nothing", async () => {
  const h = await setup();
  h.node("n1");
  const release = holdFirstWrite(h);
  const submitting = h.submit({ id: "ov2", prompt: "p", maxTokens: 5 });
  await h.until(() => h.announces().length === 1, "the announce while the task is being stored");
  const announce = h.announces()[0];
  release(false);
  await submitting;
  assert.deepEqual(h.events("ov2").map((e) => [e.type, e.error?.code]), [["rejected", "INTERNAL"]]);
  h.bid("n1", announce);
  h.clock.advance(10_000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(h.award("n1").length, 0);
  assert.deepEqual(h.results("ov2"), []);
  assert.equal(h.market.isRunning("ov2"), false);
  assert.equal(await h.store.getTask("ov2"), undefined, "no zombie task for a restart to resume");
  await h.close();
});
