// The node daemon against the real coordinator (embedded aedes with auth), real MQTT clients, real
// LevelDB and real llama.cpp on tiny GGUF files written by the trainer's exporter.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { decode, encode, topics, BidSchema, ResultSchema, type Announce, type Result, type Bid } from "../../common/protocol.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, fakeProbe, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";
import { submitterOf } from "../../coordinator/submitter.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-daemon-"));
let h: Harness;
let addModel: string;
let sortModel: string;
let submitter: MqttClient;

before(async () => {
  h = await startHarness();
  addModel = await writeRandomModel(dir, "adder", undefined, 1);
  sortModel = await writeRandomModel(dir, "sorter", undefined, 2);
  submitter = await h.submitter();
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

function resultOf(client: MqttClient, id: string, timeoutMs = 20_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const topic = topics.taskResult(submitterOf(submitter), id);
    const timer = setTimeout(() => reject(new Error(`no result for ${id}`)), timeoutMs);
    const onMsg = (t: string, p: Buffer) => {
      if (t !== topic) return;
      const m = decode(ResultSchema, p);
      if (!m.ok) return;
      clearTimeout(timer);
      client.off("message", onMsg);
      resolve(m.value);
    };
    client.on("message", onMsg);
    void client.subscribeAsync(topic, { qos: 1 }).then(() => client.publishAsync(topics.submit(submitterOf(submitter)), encode({ id, ...JSON.parse(pendingSubmit.get(id)!) }), { qos: 1 }));
  });
}
const pendingSubmit = new Map<string, string>();
function submit(id: string, task: Record<string, unknown>): Promise<Result> {
  pendingSubmit.set(id, JSON.stringify(task));
  return resultOf(submitter, id);
}

test("a task is won and answered by the agent whose skill fits; sleep frees the model; wake works", async () => {
  const node = await startNode({
    nodeId: "n-skill", url: h.url, cred: await h.nodeCred("n-skill"), dataDir: path.join(dir, "n-skill"),
    genomes: [genome("adder-1", addModel, ["add"]), genome("sorter-1", sortModel, ["sort"])], sleepAfterMs: 400, logger: (await import("../../common/logger.ts")).createLogger({ level: process.env.NODE_TEST_LOG ?? "silent" }),
  });
  try {
    const d = node.daemon;
    // Calibrated at start, then asleep: nothing loaded.
    assert.ok(d.calibrations.get(path.resolve(addModel))!.genTokensPerS > 0);
    // One source of truth for a model's threads: its calibration; the agent runs with them.
    assert.equal(d.pool.get("adder-1")!.threads, d.calibrations.get(path.resolve(addModel))!.threads);
    assert.equal(d.runtime.threadsFor(path.resolve(addModel)), d.calibrations.get(path.resolve(addModel))!.threads);
    assert.deepEqual(d.pool.info().map((a) => a.state), ["asleep", "asleep"]);
    assert.deepEqual(d.runtime.loadedModels(), []);

    const r = await submit("task-add-1", { prompt: "add 2 3 =", skill: "add", maxTokens: 8 });
    assert.equal(r.status, "ok", JSON.stringify(r.error));
    assert.equal(r.agentId, "adder-1");
    assert.equal(r.nodeId, "n-skill");
    assert.equal(typeof r.output, "string");
    assert.ok(r.output!.length > 0);
    // A private task: the real daemon bids on the announce that comes on its own topic.
    const r2 = await submit("task-sort-1", { prompt: "sort cba =", skill: "sort", maxTokens: 8, private: true });
    assert.equal(r2.agentId, "sorter-1");
    // The experience is in the hot cache, awaiting its verdict.
    assert.equal(d.hot.count("adder-1"), 1);
    const [e] = await d.hot.recent("adder-1");
    assert.equal(e!.taskId, "task-add-1");
    assert.equal(e!.output, r.output);

    // The coordinator's verdict (no check: a provisional success) reaches the hot cache (within 10 s:
    // the suite runs on 2 busy cores) with the
    // coordinator's record of the agent, which the node keeps as it is (it keeps none of its own).
    const experience = async (taskId: string) => (await d.hot.recent("adder-1")).find((x) => x.taskId === taskId);
    for (let i = 0; i < 500 && (await experience("task-add-1"))?.verdictSource !== "delivery"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await experience("task-add-1"))?.success, true);
    assert.deepEqual(d.records.get("adder-1", "add"), { successes: 1, failures: 0 });
    // The submitter's feedback REPLACES that observation: on the coordinator, in the node's record
    // cache and in its hot cache; the number of observations stays one.
    await submitter.publishAsync(topics.taskFeedback(submitterOf(submitter), "task-add-1"), encode({ success: false }), { qos: 1 });
    for (let i = 0; i < 500 && d.records.get("adder-1", "add").failures === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(h.coordinator.reputation.record(h.coordinator.registry.ref("n-skill", "adder-1")!, "add"), { successes: 0, failures: 1 });
    assert.deepEqual(d.records.get("adder-1", "add"), { successes: 0, failures: 1 });
    for (let i = 0; i < 500 && (await experience("task-add-1"))?.verdictSource !== "feedback"; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await experience("task-add-1"))?.success, false);

    // Idle agents sleep after sleepAfterMs: their models are disposed.
    for (let i = 0; i < 100 && d.runtime.loadedModels().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(d.runtime.loadedModels(), []);
    assert.deepEqual(d.pool.info().map((a) => a.state), ["asleep", "asleep"]);
    // An award to a sleeping agent wakes it.
    const r3 = await submit("task-add-2", { prompt: "add 4 4 =", skill: "add", maxTokens: 4 });
    assert.equal(r3.status, "ok");
    assert.equal(r3.agentId, "adder-1");
  } finally {
    await node.close();
  }
});

test("injected probe readings change the bids: low battery and heat decline, a busy CPU bids slower", async () => {
  const probe = fakeProbe();
  const node = await startNode({ nodeId: "n-probe", url: h.url, cred: await h.nodeCred("n-probe"), dataDir: path.join(dir, "n-probe"), genomes: [genome("p-1", addModel, ["add"])], profile: "x86-laptop", probe });
  const sup = await h.superClient();
  const bids: Bid[] = [];
  sup.on("message", (t, p) => {
    if (t !== topics.nodeBid("n-probe")) return;
    const m = decode(BidSchema, p);
    if (m.ok) bids.push(m.value);
  });
  await sup.subscribeAsync(topics.nodeBid("n-probe"), { qos: 1 });
  let n = 0;
  const ask = async (): Promise<Bid> => {
    const now = Date.now();
    const a: Announce = { auctionId: `probe-a${++n}`, taskId: `probe-t${n}`, attempt: 1, prompt: "add 1 1 =", skill: "add", maxTokens: 16, deadlineAt: now + 60_000, closesAt: now + 5000, sentAt: now };
    const count = bids.length;
    await sup.publishAsync(topics.announce, encode(a), { qos: 1 });
    for (let i = 0; i < 200 && bids.length === count; i++) await new Promise((r) => setTimeout(r, 5));
    const b = bids.at(-1)!;
    assert.equal(b.auctionId, a.auctionId);
    return b;
  };
  try {
    const calm = await ask();
    assert.equal(calm.type, "bid");
    probe.inject({ batteryPercent: 5, charging: false });
    const low = await ask();
    assert.equal(low.type === "decline" && low.reason, "battery");
    probe.inject({ charging: true });
    assert.equal((await ask()).type, "bid");
    probe.inject({ batteryPercent: undefined, charging: undefined, temperatureC: 99 });
    const hot = await ask();
    assert.equal(hot.type === "decline" && hot.reason, "thermal");
    probe.inject({ temperatureC: undefined, cpuLoad: 90 });
    const busy = await ask();
    assert.ok(calm.type === "bid" && busy.type === "bid");
    if (calm.type === "bid" && busy.type === "bid") {
      assert.ok(busy.estimate.latencyMs > calm.estimate.latencyMs * 1.5, `${busy.estimate.latencyMs} vs ${calm.estimate.latencyMs}`);
      assert.equal(busy.device?.cpuLoad, 90);
    }
  } finally {
    await node.close();
  }
});
