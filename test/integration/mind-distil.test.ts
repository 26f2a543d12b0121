// The collective mind end to end, with real parts: the coordinator (embedded aedes, auth, ACLs) and
// a real node daemon running the seed models on llama.cpp. Tasks run and leave experiences in the
// cold cache; an operator asks for a distillation over MQTT (a coordinator credential, as `colony
// distil --data-dir` does); the job trains in its own process, the gate judges the child on fresh
// held-out instances; a child that passes is signed, fetched and verified by the node, born as a
// spawned agent with its lineage, and wins tasks. A child that the gate stops (too few steps to learn
// a second skill) is recorded with its report, and nothing ships.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { verifySignedManifest } from "../../common/model-manifest.ts";
import { decode, MindJobsSnapshotSchema, topics, type MindJob } from "../../common/protocol.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { checkedTask, ended, eventually, pinnedSeed } from "../fixtures/mind-fixtures.ts";
import { genome, startNode } from "../fixtures/node-helpers.ts";


const dir = mkdtempSync(path.join(os.tmpdir(), "colony-mind-"));
let h: Harness;
let sub: MqttClient;
let sup: MqttClient;
let node: Awaited<ReturnType<typeof startNode>>;
const jobs = new Map<string, MindJob>();

const harness = () =>
  startHarness({
    dataDir: path.join(dir, "coordinator"),
    config: { architect: false, bidWindowMs: 300, penaltyBaseMs: 100, mind: { enabled: true, threads: 1, steps: 40, batch: 16, maxExperiencesPerSkill: 200, minExperiencesPerSkill: 5, gatePerSkill: 25, margin: 0.01, sampling: false, trainOn: "coordinator", quoteWindowMs: 3000, trainerOfflineMs: 120_000, keepJobs: 50 } },
  });

async function startFleet(): Promise<void> {
  h = await harness();
  node = await startNode({
    nodeId: "n-mind", url: h.url, cred: await h.nodeCred("n-mind"), dataDir: path.join(dir, "node"), modelKey: h.coordinator.signingKey!.publicKey,
    genomes: [
      genome("seed-add", pinnedSeed("seed-add"), ["add"], { accuracyPrior: { add: 0.97 } }),
      genome("seed-reverse", pinnedSeed("seed-reverse"), ["reverse"], { accuracyPrior: { reverse: 0.97 } }),
      // The reverse model claiming add: it answers add tasks wrongly; a parent whose experiences hold nothing verified.
      genome("bad-add", pinnedSeed("seed-reverse"), ["add"], { accuracyPrior: { add: 0.6 } }),
    ],
    sleepAfterMs: 60_000,
  });
  sub = await h.submitter();
  sup = await h.superClient();
  sup.on("message", (topic, payload) => {
    if (topic !== topics.mindJobs) return;
    const d = decode(MindJobsSnapshotSchema, payload);
    if (d.ok) for (const j of d.value.jobs) jobs.set(j.jobId, j);
  });
  await sup.subscribeAsync(topics.mindJobs, { qos: 1 });
}

before(startFleet);

let n = 0;

after(async () => {
  await node?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});


test("distil: two parents' experiences -> a child that passes the gate, signed, fetched and verified by the node, born with its lineage, and it wins tasks", async () => {
  for (let i = 0; i < 14; i++) await checkedTask(sub, "add", `mind-it-add-${n++}`);
  // Verified sampling: each parent also answers fresh training-split prompts; the check keeps the right answers.
  const sampling = { candidates: 1, temperature: 0.5, prompts: 150 };
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "j-add", skills: ["add"], parents: [{ agentId: "seed-add" }, { agentId: "bad-add" }], sampling, reason: "test" }), { qos: 1 });
  const job = await eventually(() => ended(jobs, "j-add"), 240_000, "job j-add");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(job.gate!.passed, true);
  const add = job.gate!.skills.find((s) => s.skill === "add")!;
  assert.equal(add.child.n, 25);
  assert.ok(add.child.acc >= add.best - 0.01, JSON.stringify(add));
  assert.ok(job.counts!.add! > 14, `trained on the verified successes and samples: ${JSON.stringify(job.counts)}`);
  // Signed into the store with the gate report; the node has verified and stored the same bytes.
  const stored = h.coordinator.models!.get(job.model!.sha256)!;
  const m = verifySignedManifest(stored.signed, h.coordinator.signingKey!.publicKey);
  assert.deepEqual(m.parents.map((p) => p.agentId).sort(), ["bad-add", "seed-add"]);
  assert.equal(m.gate!.passed, true);
  assert.equal(m.lineage, "distil-add");
  assert.equal(job.child!.status, "created", JSON.stringify(job));
  const child = job.child!.agentId;
  const life = h.coordinator.evolution.lineage.get("n-mind", child)!;
  assert.equal(life.state, "alive");
  assert.deepEqual([...life.parents].sort(), ["bad-add", "seed-add"]);
  assert.equal(life.spec!.model, `colony:${job.model!.sha256}`);
  assert.match(life.birth, /distilled from seed-add, bad-add on add .*passed the gate/);
  // It earns real tasks: its claim is what it measured on the gate's held-out set.
  let wins = 0;
  for (let i = 0; i < 60 && wins < 2; i++) if ((await checkedTask(sub, "add", `mind-it-add-${n++}`)).agentId === child) wins++;
  assert.ok(wins >= 2, `the distilled child won ${wins} tasks`);
});

test("distil: a child that cannot serve its parents' skills is stopped by the gate, recorded with its report, and nothing ships", async () => {
  for (let i = 0; i < 8; i++) await checkedTask(sub, "reverse", `mind-it-reverse-${n++}`);
  const models = h.coordinator.models!.list().length;
  const alive = h.coordinator.evolution.lineage.alive().length;
  // Two steps cannot teach one model both skills: the gate must say no.
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "j-both", skills: ["add", "reverse"], parents: [{ agentId: "seed-add" }, { agentId: "seed-reverse" }], steps: 2 }), { qos: 1 });
  const job = await eventually(() => ended(jobs, "j-both"), 240_000, "job j-both");
  assert.equal(job.state, "failed", JSON.stringify(job));
  assert.equal(job.gate!.passed, false);
  assert.ok(job.gate!.reasons.length > 0);
  assert.equal(job.model, undefined);
  assert.equal(job.child, undefined);
  assert.equal(h.coordinator.models!.list().length, models, "nothing was signed");
  assert.equal(h.coordinator.evolution.lineage.alive().length, alive, "nobody was born");
  // A parent the coordinator does not know is refused with its code; the coordinator keeps serving.
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "j-ghost", skills: ["add"], parents: [{ agentId: "nobody" }] }), { qos: 1 });
  const ghost = await eventually(() => ended(jobs, "j-ghost"), 30_000, "job j-ghost");
  assert.equal(ghost.state, "error");
  assert.equal(ghost.error!.code, "MIND_PARENT_UNKNOWN");
  assert.equal((await checkedTask(sub, "add", `mind-it-add-${n++}`)).status, "ok");
});

test("distil: a coordinator stopped mid-training resumes the job from its checkpoint at the next start, and it ships once", async () => {
  const sampling = { candidates: 1, temperature: 0.5, prompts: 100 };
  await sup.publishAsync(topics.mindDistil, JSON.stringify({ jobId: "j-restart", skills: ["add"], parents: [{ agentId: "seed-add" }], steps: 400, sampling }), { qos: 1 });
  await eventually(() => h.coordinator.mind.get("j-restart")?.progress?.phase === "train" && h.coordinator.mind.get("j-restart")!.progress!.step >= 30, 120_000, "training to be under way");
  await node.close();
  await h.close();
  jobs.clear();
  await startFleet();
  assert.equal(h.coordinator.mind.get("j-restart")?.state, "running", "the job is still owed");
  const firstStep = await eventually(() => (jobs.get("j-restart")?.progress?.phase === "train" ? jobs.get("j-restart")!.progress!.step : undefined), 120_000, "training to resume");
  assert.ok(firstStep >= 25, `resumed from the checkpoint (first step seen ${firstStep}), not from step 0`);
  const job = await eventually(() => ended(jobs, "j-restart"), 300_000, "job j-restart");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.equal(h.coordinator.models!.list().filter((m) => m.manifest.sha256 === job.model!.sha256).length, 1);
});

test("colony distil --coordinator runs a job on the running coordinator and follows it to the end; --list shows the jobs; a local run without its flags is a clear error", async () => {
  const { runColony } = await import("../fixtures/colony-process.ts");
  const conn = ["--url", h.url, "--data-dir", h.dataDir];
  const run = await runColony(["distil", "--coordinator", ...conn, "--skills", "add", "--parents", "n-mind/seed-add", "--steps", "20", "--sample", "1", "--sample-prompts", "100", "--temperature", "0.5", "--gate-per-skill", "25", "--no-spawn", "--job-id", "j-cli"]);
  assert.equal(run.code, 0, run.stderr);
  const job = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as MindJob;
  assert.equal(job.jobId, "j-cli");
  assert.equal(job.state, "passed", JSON.stringify(job));
  assert.ok(job.model, "signed into the store");
  assert.equal(job.child, undefined, "--no-spawn: nobody was born");
  const list = await runColony(["distil", "--list", ...conn, "--json"]);
  assert.equal(list.code, 0, list.stderr);
  const ids = (JSON.parse(list.stdout.trim().split("\n").at(-1)!) as MindJob[]).map((j) => j.jobId);
  for (const id of ["j-cli", "j-restart", "j-add", "j-both", "j-ghost"]) assert.ok(ids.includes(id), `${id} in ${ids.join(",")}`);
  const local = await runColony(["distil", "--skills", "add"]);
  assert.notEqual(local.code, 0);
  assert.match(local.stderr, /CLI_ARGUMENT_INVALID.*--experiences/);
});

test("the architect's distil decision becomes one job (a second identical decision while it waits adds none, an unlabeled niche none); it can be cancelled", async () => {
  const decision = { kind: "distil" as const, agentId: "seed-add", nodeId: "n-mind", parents: ["seed-add"], niche: "add@raspberry-pi-5", reason: "2 agents succeed at add over 5+ trials" };
  const before = h.coordinator.mind.list().length;
  await h.coordinator.mind.fromDecision(decision);
  await h.coordinator.mind.fromDecision(decision);
  const mine = h.coordinator.mind.list().filter((j) => j.by === "architect");
  assert.equal(h.coordinator.mind.list().length, before + 1);
  assert.equal(mine.length, 1);
  assert.deepEqual(mine[0]!.skills, ["add"], "the niche's skill");
  assert.equal(mine[0]!.reason, decision.reason);
  await h.coordinator.mind.fromDecision({ ...decision, niche: "~c3@raspberry-pi-5" });
  assert.equal(h.coordinator.mind.list().length, before + 1, "an unlabeled niche has no held-out set to gate on: no job");
  await h.coordinator.mind.cancel(mine[0]!.jobId);
  const end = await eventually(() => ended(jobs, mine[0]!.jobId), 60_000, "the cancelled job");
  assert.equal(end.state, "cancelled", JSON.stringify(end));
});
