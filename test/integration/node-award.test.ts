// The award path of a node driven directly over MQTT by a client with coordinator rights: ack,
// progress, done; a redelivered award runs once; cancel and deadline stop a generation with their codes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { decode, encode, topics, AckSchema, DoneSchema, ProgressSchema, type Ack, type Award, type Done } from "../../common/protocol.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, SMALL, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-award-"));
let h: Harness;
let node: Awaited<ReturnType<typeof startNode>>;
let sup: MqttClient;
const acks: Ack[] = [];
const dones: Done[] = [];
let progress = 0;

before(async () => {
  h = await startHarness();
  const model = await writeRandomModel(dir, "small", SMALL, 6);
  node = await startNode({ nodeId: "n-aw", url: h.url, cred: await h.nodeCred("n-aw"), dataDir: path.join(dir, "node"), genomes: [genome("aw-agent", model, ["aw"]), genome("aw-small", model, ["aw-small"], { contextSize: 32 })] });
  sup = await h.superClient();
  sup.on("message", (t, p) => {
    if (t === topics.nodeAck("n-aw")) {
      const m = decode(AckSchema, p);
      if (m.ok) acks.push(m.value);
    } else if (t === topics.nodeDone("n-aw")) {
      const m = decode(DoneSchema, p);
      if (m.ok) dones.push(m.value);
    } else if (t === topics.nodeProgress("n-aw")) {
      if (decode(ProgressSchema, p).ok) progress++;
    }
  });
  await sup.subscribeAsync([topics.nodeAck("n-aw"), topics.nodeDone("n-aw"), topics.nodeProgress("n-aw")], { qos: 1 });
});
after(async () => {
  await node?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

const award = (id: string, o: Partial<Award> = {}): Award => ({ auctionId: `au-${id}`, taskId: id, attempt: 1, agentId: "aw-agent", prompt: "hello", skill: "aw", maxTokens: 8, deadlineAt: Date.now() + 60_000, sentAt: Date.now(), ackWithinMs: 1000, ...o });
async function until(f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a redelivered award is acked again but runs once", async () => {
  const a = award("dup-1");
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(a), { qos: 1 });
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(a), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "dup-1") && acks.filter((x) => x.taskId === "dup-1").length === 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(dones.filter((d) => d.taskId === "dup-1").length, 1);
  const d = dones.find((x) => x.taskId === "dup-1")!;
  assert.equal(d.status, "ok");
  assert.ok(d.timings!.tokens! >= 1 && d.timings!.tokens! <= 8);
  assert.ok(acks.filter((x) => x.taskId === "dup-1").every((x) => x.accepted));
});

test("a prompt that leaves no room in the agent's context is an error (PROMPT_EXCEEDS_CONTEXT), not an empty ok", async () => {
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(award("long-1", { agentId: "aw-small", skill: "aw-small", prompt: "abcdefghij ".repeat(6) })), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "long-1"));
  const d = dones.find((x) => x.taskId === "long-1")!;
  assert.equal(d.status, "error");
  assert.equal(d.error?.code, "PROMPT_EXCEEDS_CONTEXT");
  // A prompt that fits still runs on the same agent.
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(award("short-1", { agentId: "aw-small", skill: "aw-small", prompt: "abc", maxTokens: 100 })), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "short-1"));
  const ok = dones.find((x) => x.taskId === "short-1")!;
  assert.equal(ok.status, "ok");
  assert.ok(ok.timings!.tokens! >= 1 && ok.timings!.tokens! < 32, "generation stops at the context's end");
});

test("an award for an unknown agent is refused in the ack", async () => {
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(award("unknown-1", { agentId: "nobody" })), { qos: 1 });
  await until(() => acks.some((x) => x.taskId === "unknown-1"));
  const ack = acks.find((x) => x.taskId === "unknown-1")!;
  assert.equal(ack.accepted, false);
  assert.match(ack.reason!, /AGENT_NOT_FOUND/);
});

test("cancel stops a running generation with TASK_CANCELLED; a deadline with TASK_DEADLINE", async () => {
  const before = progress;
  await sup.publishAsync(topics.nodeAward("n-aw"), encode(award("cancel-1", { maxTokens: 1000 })), { qos: 1 });
  await until(() => progress > before);
  await sup.publishAsync(topics.nodeCancel("n-aw"), encode({ auctionId: "au-cancel-1", taskId: "cancel-1", reason: "submitter gave up" }), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "cancel-1"));
  const c = dones.find((d) => d.taskId === "cancel-1")!;
  assert.equal(c.status, "error");
  assert.equal(c.error?.code, "TASK_CANCELLED");

  await sup.publishAsync(topics.nodeAward("n-aw"), encode(award("deadline-1", { maxTokens: 1000, deadlineAt: Date.now() + 400 })), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "deadline-1"));
  const dl = dones.find((d) => d.taskId === "deadline-1")!;
  assert.equal(dl.status, "error");
  assert.equal(dl.error?.code, "TASK_DEADLINE");
  assert.equal(node.daemon.activeJobs, 0);
});

test("an idle node re-measures a stale calibration, never one of an awake agent", async () => {
  const d = node.daemon;
  const agent = d.pool.get("aw-agent")!;
  const before = d.calibrations.get(agent.modelFile)!;
  // Every agent of the model asleep (aw-small shares it), then one wakes.
  for (const a of d.pool.agents.values()) await a.sleep();
  await agent.wake();
  assert.equal(await d.recalibrator.runIfIdle(0), false, "agent awake: left alone");
  await agent.sleep();
  assert.equal(await d.recalibrator.runIfIdle(3600_000), false, "fresh calibration: left alone");
  assert.equal(await d.recalibrator.runIfIdle(0), true);
  const after = d.calibrations.get(agent.modelFile)!;
  assert.ok(after.at > before.at);
  assert.ok(after.genTokensPerS > 0);
  assert.equal(agent.state, "asleep");
});
