// The cold cache (coordinator/mind/experiences.ts): market events in, on a fake clock and a real
// LevelDB; indexes, the verified filter, feedback, the learn opt-out (also across a restart of the
// market) and retention by age and by count; a restart keeps everything.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { topics } from "../../common/protocol.ts";
import { checkPublish, checkSubscribe } from "../../coordinator/auth/acl.ts";
import type { Principal } from "../../coordinator/auth/credentials.ts";
import { Counters } from "../../common/counters.ts";
import { silentLogger } from "../../common/logger.ts";
import { MarketEventBus, type AttemptVerdict } from "../../coordinator/market/events.ts";
import { TaskStore, type TaskRecord } from "../../coordinator/market/task-store.ts";
import { ExperienceSchema, type Experience } from "../../common/experience.ts";
import { ExperienceStore, type ExperienceQuery } from "../../coordinator/mind/experiences.ts";
import { setup, USER } from "../fixtures/market-harness.ts";

const GENOME = "a".repeat(64);

async function open(dir: string, clock: FakeClock, bounds: { retentionMs?: number; maxExperiences?: number; pruneBatch?: number } = {}) {
  const store = new TaskStore(dir);
  await store.start();
  const events = new MarketEventBus((err) => assert.fail(`subscriber threw: ${String(err)}`));
  const counters = new Counters(silentLogger, () => clock.now());
  const exp = new ExperienceStore({ store, events, clock, counters, logger: silentLogger, retentionMs: bounds.retentionMs ?? 30 * 86_400_000, maxExperiences: bounds.maxExperiences ?? 1_000_000, pruneEveryMs: 1000, pruneBatch: bounds.pruneBatch });
  await exp.start();
  return {
    store, events, exp, counters,
    async close() {
      await exp.close();
      await store.close();
    },
  };
}

function task(id: string, prompt: string, owner = "submitter.t"): TaskRecord {
  return { id, owner, submit: { id, prompt }, acceptedAt: 0, deadlineAt: 0, state: "open", attempts: [] };
}

type Env = Awaited<ReturnType<typeof open>>;

function finished(env: Env, clock: FakeClock, o: { taskId: string; skill: string; node: string; agent: string; attempt?: number; output?: string; verdict?: AttemptVerdict; learn?: false; private?: true }) {
  env.events.emit("taskFinished", {
    taskId: o.taskId, submitter: "submitter.t", skill: o.skill, prompt: `prompt of ${o.taskId}`, status: "ok", attempts: o.attempt ?? 1, totalMs: 10, at: clock.now(),
    delivered: { attempt: o.attempt ?? 1, nodeId: o.node, agentId: o.agent, genome: GENOME, output: o.output ?? `answer ${o.taskId}`, verdict: o.verdict ?? { success: true, source: "check" }, cost: { energyJ: 1.5, tokens: 3, generateMs: 20, energySource: "model" } },
    ...(o.learn === false ? { learn: false as const } : {}),
    ...(o.private ? { private: true as const } : {}),
  });
}

async function all(exp: ExperienceStore, q: ExperienceQuery = {}): Promise<Experience[]> {
  const out: Experience[] = [];
  for await (const e of exp.query(q)) out.push(e);
  return out;
}

const ids = (list: Experience[]) => list.map((e) => `${e.taskId}#${e.attempt}`);

test("experiences: failed and delivered attempts, indexed by time, skill and agent", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-exp-"));
  const clock = new FakeClock();
  const env = await open(dir, clock);
  t.after(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const t0 = clock.now();
  await env.store.putTask(task("t1", "what is 2+2", "submitter.bob"));
  env.events.emit("attemptFailed", { taskId: "t1", skill: "add", attempt: 1, nodeId: "n1", agentId: "a1", genome: GENOME, outcome: "error", error: { code: "X", message: "boom" }, at: clock.now() });
  clock.advance(10);
  finished(env, clock, { taskId: "t1", skill: "add", node: "n2", agent: "a2", attempt: 2, output: "4" });
  clock.advance(10);
  finished(env, clock, { taskId: "t2", skill: "upper", node: "n1", agent: "a1", verdict: { success: true, source: "delivery" } });
  clock.advance(10);
  finished(env, clock, { taskId: "t3", skill: "add", node: "n1", agent: "a1", verdict: { success: false, source: "check" } });
  // A replayed event does not make a second experience.
  finished(env, clock, { taskId: "t3", skill: "add", node: "n1", agent: "a1", verdict: { success: false, source: "check" } });

  const every = await all(env.exp);
  assert.deepEqual(ids(every), ["t1#1", "t1#2", "t2#1", "t3#1"]);
  for (const e of every) ExperienceSchema.parse(e);
  const failed = every[0]!;
  assert.equal(failed.prompt, "what is 2+2", "a failed attempt's prompt comes from the task store");
  assert.equal(failed.submitter, "submitter.bob");
  assert.deepEqual({ output: failed.output, verdict: failed.verdict, at: failed.at }, { output: "", verdict: { success: false, source: "failure" }, at: t0 });
  assert.deepEqual(every[1]!.cost, { energyJ: 1.5, tokens: 3, generateMs: 20 }, "energySource is not part of an experience");
  assert.equal(every[1]!.genome, GENOME);

  assert.deepEqual(ids(await all(env.exp, { skill: "add" })), ["t1#1", "t1#2", "t3#1"]);
  assert.deepEqual(ids(await all(env.exp, { agent: { nodeId: "n1", agentId: "a1" } })), ["t1#1", "t2#1", "t3#1"]);
  assert.deepEqual(ids(await all(env.exp, { agent: { nodeId: "n1", agentId: "a1" }, skill: "add" })), ["t1#1", "t3#1"]);
  assert.deepEqual(ids(await all(env.exp, { since: t0 + 10, until: t0 + 30 })), ["t1#2", "t2#1"]);
  assert.deepEqual(ids(await all(env.exp, { skill: "add", since: t0 + 5 })), ["t1#2", "t3#1"]);
  assert.deepEqual(ids(await all(env.exp, { limit: 2 })), ["t1#1", "t1#2"]);
  assert.deepEqual(ids(await all(env.exp, { skill: "none" })), []);
  assert.equal(env.exp.size, 4);
  assert.equal(env.counters.get("experiences.duplicate"), 1);

  // A private task's experiences say so (a trainer node never gets them: coordinator/mind/served-files.ts).
  await env.store.putTask({ ...task("t4", "secret", "submitter.bob"), submit: { id: "t4", prompt: "secret", private: true } });
  env.events.emit("attemptFailed", { taskId: "t4", skill: "add", attempt: 1, nodeId: "n1", agentId: "a1", outcome: "error", error: { code: "X", message: "boom" }, at: clock.now() });
  finished(env, clock, { taskId: "t4", skill: "add", node: "n2", agent: "a2", attempt: 2, private: true });
  const t4 = (await all(env.exp)).filter((e) => e.taskId === "t4");
  assert.deepEqual(t4.map((e) => e.private), [true, true], "the failed attempt (from the stored submit) and the delivered one (from the event)");
  assert.equal(every.some((e) => e.private), false);
});

test("experiences: the verified filter, and feedback replaces the stored verdict", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-exp-"));
  const clock = new FakeClock();
  const env = await open(dir, clock);
  t.after(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });
  finished(env, clock, { taskId: "c1", skill: "add", node: "n1", agent: "a1", verdict: { success: true, source: "check" } });
  clock.advance(1);
  finished(env, clock, { taskId: "d1", skill: "add", node: "n1", agent: "a1", verdict: { success: true, source: "delivery" } });
  clock.advance(1);
  finished(env, clock, { taskId: "d2", skill: "add", node: "n1", agent: "a1", verdict: { success: true, source: "delivery" } });
  await env.exp.flush();
  assert.deepEqual(ids(await all(env.exp, { verified: true })), ["c1#1"], "a bare delivery is not verified");
  const a1 = { nodeId: "n1", agentId: "a1" };
  assert.deepEqual(ids(await env.exp.verifiedSuccesses([a1], ["add"], 10)), ["c1#1"]);

  const fb = (taskId: string, success: boolean) =>
    env.events.emit("feedback", { taskId, submitter: "submitter.t", skill: "add", nodeId: "n1", agentId: "a1", genome: GENOME, verdict: { success, source: "feedback" }, previous: { success: true, source: "delivery" }, at: clock.now() });
  fb("d1", true);
  fb("c1", false);
  // Feedback for a task the cache does not hold (opted out, or pruned) changes nothing.
  fb("unknown", true);
  const after = await all(env.exp);
  assert.deepEqual(after.map((e) => [e.taskId, e.verdict.success, e.verdict.source]), [["c1", false, "feedback"], ["d1", true, "feedback"], ["d2", true, "delivery"]]);
  assert.deepEqual(ids(await all(env.exp, { verified: true })), ["d1#1"]);
  assert.deepEqual(ids(await all(env.exp, { verified: true, agent: a1, skill: "add" })), ["d1#1"], "the verified index follows feedback");
  assert.deepEqual(ids(await env.exp.verifiedSuccesses([a1], ["add"], 10)), ["d1#1"]);

  // Feedback on an experience still queued (same turn of the loop) applies to it before it is written.
  finished(env, clock, { taskId: "q1", skill: "add", node: "n1", agent: "a1", verdict: { success: true, source: "delivery" } });
  fb("q1", true);
  assert.deepEqual(ids(await env.exp.verifiedSuccesses([a1, { nodeId: "n9", agentId: "a9" }], ["add", "upper"], 10)), ["d1#1", "q1#1"]);
  assert.deepEqual(ids(await env.exp.verifiedSuccesses([a1], ["add"], 1)), ["q1#1"], "the newest `limit` per skill");
  clock.advance(1);
  finished(env, clock, { taskId: "b1", skill: "add", node: "n2", agent: "b", verdict: { success: true, source: "check" } });
  finished(env, clock, { taskId: "u1", skill: "upper", node: "n2", agent: "b", verdict: { success: true, source: "check" } });
  assert.deepEqual(ids(await env.exp.verifiedSuccesses([a1, { nodeId: "n2", agentId: "b" }], ["add", "upper"], 2)), ["q1#1", "b1#1", "u1#1"], "per skill, across the agents");
});

test("experiences: a task with learn:false leaves none, also when it finishes after a restart", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-exp-"));
  const h1 = await setup({}, dir);
  const counters = new Counters(silentLogger);
  const mk = (h: typeof h1) => new ExperienceStore({ store: h.store, events: h.bus, clock: h.clock, counters, logger: silentLogger, retentionMs: 86_400_000, maxExperiences: 1000 });
  let exp = mk(h1);
  await exp.start();
  h1.clock.advance(0);
  h1.node("n1");
  // Finished before the restart: private one leaves nothing, the other is kept.
  for (const [id, learn] of [["kept-1", undefined], ["private-1", false]] as const) {
    await h1.submit({ id, prompt: "p", ...(learn === false ? { learn } : {}) });
    const a = h1.announces().find((x: { taskId: string }) => x.taskId === id);
    h1.bid("n1", a);
    const aw = h1.award("n1").find((x: { taskId: string }) => x.taskId === id);
    h1.ack("n1", aw);
    h1.done("n1", aw, "answer");
    await h1.until(() => h1.results(id).length === 1, `result of ${id}`);
  }
  // Awarded and acked, not finished, when the coordinator stops.
  for (const id of ["kept-2", "private-2"]) {
    await h1.submit({ id, prompt: "p", ...(id.startsWith("private") ? { learn: false } : {}) });
    h1.bid("n1", h1.announces().find((x: { taskId: string }) => x.taskId === id));
    h1.ack("n1", h1.award("n1").find((x: { taskId: string }) => x.taskId === id));
  }
  await new Promise((r) => setTimeout(r, 30));
  await exp.close();
  await h1.close(true);

  // The restarted market has no taskAccepted in memory: the stored submit says learn:false.
  const h2 = await setup({}, dir);
  exp = mk(h2);
  await exp.start();
  h2.node("n1");
  h2.node("n2");
  h2.clock.advance(0);
  await new Promise((r) => setImmediate(r));
  for (const id of ["kept-2", "private-2"]) {
    const a = h2.announces().find((x: { taskId: string }) => x.taskId === id);
    assert.ok(a, `no announce for ${id} after restart`);
    h2.bid("n1", a);
    h2.decline("n2", a);
    const aw = h2.award("n1").find((x: { taskId: string }) => x.taskId === id);
    h2.ack("n1", aw);
    // The first attempt after the restart fails (an error counts as a failed attempt), the next delivers.
    h2.done("n1", aw, undefined, "error");
  }
  await new Promise((r) => setTimeout(r, 30));
  // n1 sits out its penalty: n2 takes the re-auction.
  for (const id of ["kept-2", "private-2"]) {
    const a = h2.announces().filter((x: { taskId: string }) => x.taskId === id).at(-1);
    assert.equal(a.attempt, 3, JSON.stringify(h2.out.filter((m) => JSON.stringify(m.msg).includes(id)).map((m) => [m.topic.split("/").slice(-2).join("/"), m.msg.type ?? "", m.msg.attempt ?? "", m.msg.error?.code ?? ""])));
    h2.bid("n2", a);
    const aw = h2.award("n2").find((x: { taskId: string }) => x.taskId === id);
    h2.ack("n2", aw);
    h2.done("n2", aw, "answer");
    await h2.until(() => h2.results(id).length === 1, `result of ${id}`);
  }
  const got = await all(exp);
  assert.deepEqual(got.map((e) => `${e.taskId}#${e.attempt}:${e.verdict.source}`).sort(), ["kept-1#1:delivery", "kept-2#2:failure", "kept-2#3:delivery"]);
  assert.equal(got.find((e) => e.verdict.source === "failure")?.submitter, USER);
  await exp.close();
  await h2.close();
  rmSync(dir, { recursive: true, force: true });
});

test("experiences: retention prunes by age and by count, at start and on the timer", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-exp-"));
  const clock = new FakeClock();
  let env = await open(dir, clock, { retentionMs: 10_000, maxExperiences: 100, pruneBatch: 3 });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < 10; i++) {
    finished(env, clock, { taskId: `r${i}`, skill: i % 2 ? "odd" : "even", node: "n1", agent: "a1" });
    clock.advance(1000);
  }
  await env.exp.flush();
  assert.equal(env.exp.size, 10);
  // r0..r3 finished more than 10 s ago after 4 more seconds; the timer prunes them in batches of 3.
  clock.advance(4000);
  await env.exp.prune(); // waits for the sweep the timer started
  assert.deepEqual(ids(await all(env.exp)), ["r4#1", "r5#1", "r6#1", "r7#1", "r8#1", "r9#1"]);
  assert.deepEqual(ids(await all(env.exp, { skill: "odd" })), ["r5#1", "r7#1", "r9#1"], "index keys go with their records");
  assert.deepEqual(ids(await all(env.exp, { agent: { nodeId: "n1", agentId: "a1" }, verified: true, skill: "even" })), ["r4#1", "r6#1", "r8#1"]);
  assert.equal(env.counters.get("experiences.pruned"), 4);
  await env.close();

  // Reopened with a smaller count bound: the oldest beyond it go at start.
  env = await open(dir, clock, { retentionMs: 10_000, maxExperiences: 4, pruneBatch: 3 });
  assert.deepEqual(ids(await all(env.exp)), ["r6#1", "r7#1", "r8#1", "r9#1"]);
  assert.equal(env.exp.size, 4);
  // Over the bound while running: pruned right after the batch that crossed it.
  finished(env, clock, { taskId: "r10", skill: "even", node: "n1", agent: "a1" });
  await env.exp.flush();
  await env.exp.prune();
  assert.deepEqual(ids(await all(env.exp)), ["r7#1", "r8#1", "r9#1", "r10#1"]);
  await env.close();
});

test("experiences: a restart keeps every experience, its indexes and the count", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-exp-"));
  const clock = new FakeClock();
  let env = await open(dir, clock);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (let i = 0; i < 300; i++) {
    finished(env, clock, { taskId: `k${i}`, skill: `s${i % 3}`, node: `n${i % 2}`, agent: "a", verdict: { success: i % 5 !== 0, source: "check" } });
    clock.advance(7);
  }
  // close() writes what is still queued.
  await env.close();
  env = await open(dir, clock);
  const every = await all(env.exp);
  assert.equal(every.length, 300);
  assert.equal(env.exp.size, 300);
  assert.deepEqual(ids(every).slice(0, 3), ["k0#1", "k1#1", "k2#1"]);
  assert.equal((await all(env.exp, { skill: "s1" })).length, 100);
  assert.equal((await all(env.exp, { agent: { nodeId: "n0", agentId: "a" } })).length, 150);
  assert.equal((await all(env.exp, { verified: true })).length, 240);
  assert.equal((await env.exp.verifiedSuccesses([{ nodeId: "n0", agentId: "a" }], ["s0", "s1", "s2"], 1000)).length, 120);
  await env.close();
});

test("mind topics: only a coordinator-role principal may publish or subscribe there (broker ACL)", () => {
  const coordinator: Principal = { role: "coordinator", name: "coordinator" };
  const others: Principal[] = [{ role: "node", name: "pi-a" }, { role: "submitter", name: "tester" }];
  const reply = topics.mindReply("exp-1");
  for (const p of others) {
    assert.equal(checkPublish(p, topics.mindExperienceExport, false).allowed, false, `${p.role} publishes an export request`);
    assert.equal(checkPublish(p, reply, false).allowed, false, `${p.role} forges a reply page`);
    for (const filter of [reply, topics.mindReply("+"), topics.mindReply("#"), topics.mindExperienceExport, "colony/v1/mind/#"]) {
      assert.equal(checkSubscribe(p, filter).allowed, false, `${p.role} subscribes to ${filter}`);
    }
  }
  assert.equal(checkPublish(coordinator, topics.mindExperienceExport, false).allowed, true);
  assert.equal(checkSubscribe(coordinator, reply).allowed, true);
});
