// Trainer nodes end to end, with real parts (docs/mind.md, "Trainer nodes"): a coordinator (embedded
// aedes, auth, ACLs), a node serving the seed agents on llama.cpp, and a second node that offers the
// `trainer` capability. A distillation job is quoted by the trainer node and by the coordinator's
// host (priced from each one's training speed; injected here so the trainer node is the faster one),
// placed on the node, which fetches the parents' signed models and the job's experiences over MQTT,
// trains in its own worker, and uploads the child; the coordinator checks the upload and gates it
// itself, then signs and spawns it. A trainer node that restarts mid-training resumes from its
// checkpoint when the coordinator sends the job again; a job on a node can be cancelled; a node that
// never comes back loses the job, and the coordinator trains it instead. Another node with a valid credential cannot slip its own child in.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { sha256File } from "../../common/file-hash.ts";
import { createHash } from "node:crypto";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { CoordinatorStatsSchema, decode, encodeChunkFrame, MindJobsSnapshotSchema, NodeStatusSchema, topics, type MindJob } from "../../common/protocol.ts";
import type { Throughput } from "../../trainer/throughput.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { checkedTask, ended, eventually, pinnedSeed, seedManifest } from "../fixtures/mind-fixtures.ts";
import { genome, startNode } from "../fixtures/node-helpers.ts";

const sha256Of = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const speed = (flopsPerSecond: number) => async (): Promise<Throughput> => ({ flopsPerSecond, tokensPerSecond: flopsPerSecond / 6e6, parameters: 1e6, threads: 1, seconds: 1 });

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-trainer-"));
let h: Harness;
let sub: MqttClient;
let sup: MqttClient;
let server: Awaited<ReturnType<typeof startNode>>;
let trainer: Awaited<ReturnType<typeof startNode>> | undefined;
const jobs = new Map<string, MindJob>();
const statuses = new Map<string, unknown>();

async function startTrainer(): Promise<Awaited<ReturnType<typeof startNode>>> {
  return startNode({
    nodeId: "n-train", url: h.url, cred: await h.nodeCred("n-train"), dataDir: path.join(dir, "trainer"), modelKey: h.coordinator.signingKey!.publicKey,
    genomes: [genome("seed-count", pinnedSeed("seed-count"), ["count"])], calibrate: false, trainer: { threads: 1, measure: speed(1e13) },
  });
}

/** The coordinator on a fixed port, so that the nodes find it again after its restart. */
let port = 0;
async function startCoordinator(): Promise<void> {
  h = await startHarness({
    dataDir: path.join(dir, "coordinator"),
    // The coordinator's host prices itself at a crawl, so the trainer node's quote wins.
    measureTraining: speed(1e6),
    config: { port, architect: false, bidWindowMs: 300, penaltyBaseMs: 100, mind: { enabled: true, threads: 1, steps: 40, batch: 16, maxExperiencesPerSkill: 200, minExperiencesPerSkill: 5, gatePerSkill: 25, margin: 0.01, sampling: false, trainOn: "best", quoteWindowMs: 3000, trainerOfflineMs: 4000, keepJobs: 50 } },
  });
  port = Number(new URL(h.url).port);
  sub = await h.submitter();
  sup = await h.superClient();
  sup.on("message", (topic, payload) => {
    if (topic === topics.mindJobs) {
      const d = decode(MindJobsSnapshotSchema, payload);
      if (d.ok) for (const j of d.value.jobs) jobs.set(j.jobId, j);
    } else if (topic === topics.coordinatorStats) {
      const d = decode(CoordinatorStatsSchema, payload);
      if (d.ok) for (const nd of d.value.nodes) if (nd.trainerGflops !== undefined) statuses.set(`stats:${nd.nodeId}`, nd.trainerGflops);
    } else if (topic === topics.nodeStatus("n-train")) {
      const d = decode(NodeStatusSchema, payload);
      if (d.ok) statuses.set(d.value.nodeId, d.value);
    }
  });
  await sup.subscribeAsync([topics.mindJobs, topics.nodeStatus("n-train"), topics.coordinatorStats], { qos: 1 });
}

before(async () => {
  await startCoordinator();
  server = await startNode({
    nodeId: "n-serve", url: h.url, cred: await h.nodeCred("n-serve"), dataDir: path.join(dir, "server"), modelKey: h.coordinator.signingKey!.publicKey,
    genomes: [genome("seed-add", pinnedSeed("seed-add"), ["add"], { accuracyPrior: { add: 0.97 } })], sleepAfterMs: 60_000,
  });
  trainer = await startTrainer();
});

after(async () => {
  await trainer?.close();
  await server?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const sampling = { candidates: 1, temperature: 0.5, prompts: 150 };

test("a trainer node advertises its measured speed, wins the job on its quote, trains it, and the coordinator gates, signs and spawns its upload", async () => {
  await eventually(() => (statuses.get("n-train") as { trainer?: unknown } | undefined)?.trainer, 30_000, "the trainer capability in its status");
  assert.equal((statuses.get("n-train") as { trainer: { flopsPerSecond: number } }).trainer.flopsPerSecond, 1e13);
  // `colony status` shows it: the coordinator's stats carry each trainer's speed.
  assert.equal(await eventually(() => statuses.get("stats:n-train") as number | undefined, 10_000, "the trainer in the coordinator's stats"), 10_000);
  for (let i = 0; i < 10; i++) assert.equal((await checkedTask(sub, "add", `trainer-it-${n++}`)).status, "ok");
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-node", skills: ["add"], parents: [{ agentId: "seed-add" }], sampling, reason: "test" }), { qos: 1 });
  // Another node with a valid credential claims the job and uploads its own "child" on its own topics: ignored.
  await eventually(() => h.coordinator.mind.get("t-node")?.trainer, 60_000, "the job placed on n-train");
  const cred = await h.nodeCred("n-hostile");
  const hostile = await connectMqtt({ url: h.url, username: cred.username, password: cred.password, logger: silentLogger });
  try {
    const fake = Buffer.from("not a model");
    await hostile.publishAsync(topics.nodeTrainUpload("n-hostile"), encodeChunkFrame({ requestId: "t-node", sha256: sha256Of(fake), offset: 0, length: fake.length, total: fake.length, chunkSha256: sha256Of(fake) }, fake), { qos: 1 });
    const forged = { nodeId: "n-hostile", jobId: "t-node", seq: 99, state: "trained", trained: { sha256: sha256Of(fake), bytes: fake.length, format: "gguf-model", datasetSha256: sha256Of("x"), counts: { add: 1 }, steps: 1, seconds: 1, tokensPerSecond: 1 }, at: Date.now() };
    await hostile.publishAsync(topics.nodeTrainProgress("n-hostile"), JSON.stringify(forged), { qos: 1 });
  } finally {
    await hostile.endAsync(true);
  }
  await eventually(() => (h.coordinator.counters.get("dropped.train-upload.unknown-job") >= 1 && h.coordinator.counters.get("dropped.train-progress.unknown-job") >= 1 ? true : undefined), 10_000, "the hostile node's upload and report to be dropped");
  const job = await eventually(() => ended(jobs, "t-node"), 240_000, "job t-node");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.trainer, "n-train", "placed on the trainer node");
  assert.match(job.reason, /trained on n-train \(fastest quote of n-train/);
  assert.ok(job.counts!.add! > 10, JSON.stringify(job.counts));
  // What the coordinator signed is what the node trained, byte for byte.
  const trained = path.join(dir, "trainer", "train-jobs", "t-node", "child.gguf");
  assert.equal(await sha256File(trained), job.model!.sha256);
  const d = trainer!.daemon;
  assert.equal(d.counters.get("trainer.jobs.trained"), 1);
  // The node fetched the parent's signed model and the experiences over MQTT; the coordinator gated here.
  assert.ok((d.counters.get("models.fetched") ?? 0) >= 1, "the parent's model was fetched and verified");
  assert.ok((d.counters.get("files.fetch.bytes") ?? 0) > 0, "the experiences were fetched");
  assert.equal(job.gate!.passed, true);
  assert.equal(job.child!.status, "created", JSON.stringify(job));
});

test("a LoRA job on a trainer node: the adapter is gated on its base here, signed with that base named by content, and born on the parent's model", async () => {
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-lora", skills: ["add"], parents: [{ agentId: "seed-add" }], mode: "lora", sampling }), { qos: 1 });
  const job = await eventually(() => ended(jobs, "t-lora"), 240_000, "job t-lora");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.trainer, "n-train");
  const m = h.coordinator.models!.get(job.model!.sha256)!.signed.manifest;
  assert.equal(m.format, "gguf-lora");
  const seedAdd = seedManifest.models.find((x) => x.name === "seed-add")!;
  assert.equal(m.base, seedAdd.sha256, "the adapter's base is the parent's model, by content");
  assert.equal(job.child!.status, "created", JSON.stringify(job));
  const life = h.coordinator.evolution.lineage.get("n-serve", job.child!.agentId)!;
  assert.equal(life.spec!.adapter, `colony:${job.model!.sha256}`);
  assert.match(life.spec!.model, new RegExp(seedAdd.sha256));
});

test("a trainer node restarted mid-training resumes from its checkpoint when the coordinator sends the job again", async () => {
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-resume", skills: ["add"], parents: [{ agentId: "seed-add" }], steps: 300, sampling, spawn: false }), { qos: 1 });
  await eventually(() => h.coordinator.mind.get("t-resume")?.progress?.phase === "train" && h.coordinator.mind.get("t-resume")!.progress!.step >= 30, 180_000, "training on the node");
  assert.equal(h.coordinator.mind.get("t-resume")!.trainer, "n-train");
  await trainer!.close();
  trainer = await startTrainer();
  const steps: number[] = [];
  await eventually(() => {
    const p = jobs.get("t-resume")?.progress;
    if (p?.phase === "train") steps.push(p.step);
    return steps.length > 0 && steps[0]! >= 25 ? true : undefined;
  }, 120_000, "training to resume on the node");
  const job = await eventually(() => ended(jobs, "t-resume"), 300_000, "job t-resume");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.trainer, "n-train");
  assert.deepEqual(readdirSync(path.join(dir, "trainer", "train-jobs")), ["t-resume"], "earlier jobs' folders are gone");
});

test("a coordinator restarted while a node trains its job goes back to that node, which trained on: the job ships once", async () => {
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-crestart", skills: ["add"], parents: [{ agentId: "seed-add" }], steps: 300, sampling, spawn: false }), { qos: 1 });
  await eventually(() => h.coordinator.mind.get("t-crestart")?.progress?.phase === "train" && h.coordinator.mind.get("t-crestart")!.progress!.step >= 30, 180_000, "training on the node");
  const trainedBefore = trainer!.daemon.counters.get("trainer.jobs.trained");
  await h.close();
  jobs.clear();
  await startCoordinator();
  assert.equal(h.coordinator.mind.get("t-crestart")?.state, "running", "the job is still owed");
  assert.equal(h.coordinator.mind.get("t-crestart")?.trainer, "n-train");
  const job = await eventually(() => ended(jobs, "t-crestart"), 300_000, "job t-crestart");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.trainer, "n-train", "not moved to the coordinator's host");
  assert.equal(trainer!.daemon.counters.get("trainer.jobs.trained"), trainedBefore + 1, "trained once, by the node that had it");
  assert.equal(h.coordinator.counters.get("mind.trainers.fallback"), 0);
});

test("a job trained on a node can be cancelled: the node stops after its step and the job ends cancelled", async () => {
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-cancel", skills: ["add"], parents: [{ agentId: "seed-add" }], steps: 300, sampling, spawn: false }), { qos: 1 });
  await eventually(() => h.coordinator.mind.get("t-cancel")?.progress?.phase === "train", 180_000, "training on the node");
  assert.equal(h.coordinator.mind.get("t-cancel")!.trainer, "n-train");
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-cancel", cancel: true }), { qos: 1 });
  const job = await eventually(() => ended(jobs, "t-cancel"), 60_000, "the cancelled job");
  assert.equal(job.state, "cancelled", JSON.stringify(job));
  await eventually(() => (trainer!.daemon.counters.get("trainer.jobs.cancelled") === 1 ? true : undefined), 30_000, "the node to stop training");
});

test("a trainer node that does not come back loses the job: the coordinator trains it itself", async () => {
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "t-lost", skills: ["add"], parents: [{ agentId: "seed-add" }], steps: 300, sampling, spawn: false }), { qos: 1 });
  await eventually(() => h.coordinator.mind.get("t-lost")?.progress?.phase === "train", 180_000, "training on the node");
  await trainer!.close();
  trainer = undefined;
  const job = await eventually(() => ended(jobs, "t-lost"), 300_000, "job t-lost");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.trainer, undefined, "trained here in the end");
  assert.match(job.reason, /n-train failed it \(MIND_TRAINER_LOST\), trained here/);
  assert.equal(h.coordinator.counters.get("mind.trainers.fallback"), 1);
});
