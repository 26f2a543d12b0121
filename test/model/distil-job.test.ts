// The distillation job end to end: a worker process, real llama.cpp on the committed seed GGUFs,
// the trainer, the gate; cancel, crash (SIGKILL) and resume. Tiny step counts keep each test short.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getLlama } from "node-llama-cpp";
import type { ColonyError } from "../../common/errors.ts";
import { GateReportSchema } from "../../common/gate-report.ts";
import { startDistilJob, startTrainJob } from "../../trainer/distil/job.ts";
import { DistilResultSchema, type DistilProgress, type DistilSpecInput } from "../../trainer/distil/spec.ts";
import { loadCheckpoint } from "../../trainer/checkpoint.ts";
import { syntheticExperiences, writeExperiences } from "../fixtures/distil-experiences.ts";

let dir: string;
let experiences: string;
const parents = [
  { agentId: "p-add", modelFile: "models/seed-add.gguf", skills: ["add"] },
  { agentId: "p-rev", modelFile: "models/seed-reverse.gguf", skills: ["reverse"] },
];

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "distil-job-"));
  experiences = path.join(dir, "experiences.jsonl");
  writeExperiences(experiences, [...syntheticExperiences("p-add", "add", 200, "t-add"), ...syntheticExperiences("p-rev", "reverse", 200, "t-rev")]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const spec = (name: string, over: Partial<DistilSpecInput> = {}): DistilSpecInput => ({
  jobId: name, jobDir: path.join(dir, name), experiences, parents, skills: ["add", "reverse"], steps: 10, batch: 16, lr: 2e-3, threads: 1, checkpointEvery: 5, gate: { perSkill: 10 }, ...over,
});

test("a job on two parents' experiences writes a child llama.cpp loads and a valid gate report", async () => {
  const phases = new Set<string>();
  const job = startDistilJob(spec("two"), { onProgress: (p) => phases.add(p.phase) });
  const r = DistilResultSchema.parse(await job.done);
  await job.cancel(); // after the end: a no-op
  assert.equal(r.format, "gguf-model");
  assert.equal(r.steps, 10);
  assert.ok(r.counts.add! > 150 && r.counts.reverse! > 150, JSON.stringify(r.counts));
  assert.deepEqual([...phases], ["curate", "train", "export", "gate"]);
  const gate = GateReportSchema.parse(r.gate);
  assert.deepEqual(gate.skills.map((s) => s.skill), ["add", "reverse"]);
  const byParent = (skill: string, id: string) => gate.skills.find((s) => s.skill === skill)!.parents.find((p) => p.agentId === id)!.accuracy.acc;
  assert.ok(byParent("add", "p-add") >= 0.9 && byParent("reverse", "p-rev") >= 0.9, "each parent is good at its own skill");
  assert.ok(byParent("add", "p-rev") <= 0.1, "and not at the other's");
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath: r.childFile });
  await model.dispose();
  await llama.dispose();
});

test("a child that matches its parent passes; a wrecked child fails with reasons", async () => {
  const one = { parents: [parents[0]!], skills: ["add"] };
  const good = await startDistilJob(spec("good", { ...one, steps: 3, lr: 1e-5 })).done;
  assert.equal(good.gate.passed, true, good.gate.reasons.join("; "));
  const bad = await startDistilJob(spec("bad", { ...one, steps: 3, lr: 5, batch: 4 })).done;
  assert.equal(bad.gate.passed, false);
  assert.match(bad.gate.reasons.join("; "), /skill add: child .* below its best parent/);
  assert.ok(existsSync(bad.childFile), "a failing child is reported, not thrown away");
});

test("lora mode: an adapter on the strongest parent, gated through llama.cpp with the adapter applied", async () => {
  const r = await startDistilJob(spec("lora", { parents: [parents[0]!], skills: ["add"], mode: "lora", steps: 3, lr: 1e-5 })).done;
  assert.equal(r.format, "gguf-lora");
  assert.equal(r.base, "models/seed-add.gguf");
  assert.ok(existsSync(r.childFile));
  // llama.cpp loaded the adapter on its base for the gate; a near-zero update keeps the base's answers.
  assert.equal(r.gate.passed, true, r.gate.reasons.join("; "));
});

async function resumeAfter(name: string, stop: (job: ReturnType<typeof startDistilJob>) => void | Promise<unknown>, code: string): Promise<void> {
  const s = spec(name, { steps: 30 });
  let stopped = false;
  const job = startDistilJob(s, {
    onProgress: (p: DistilProgress) => {
      if (p.phase === "train" && p.step >= 12 && !stopped) {
        stopped = true;
        void stop(job);
      }
    },
  });
  await assert.rejects(job.done, (err: ColonyError) => err.code === code);
  const ckpt = path.join(dir, name, "train.ckpt");
  const at = loadCheckpoint(ckpt).step;
  assert.ok(at >= 10 && at < 30, `checkpoint at step ${at}`);
  const steps: number[] = [];
  const again = startDistilJob(s, { onProgress: (p) => void (p.phase === "train" && steps.push(p.step)) });
  const r = await again.done;
  assert.equal(r.steps, 30);
  assert.ok(steps[0]! > at, `resumed at step ${steps[0]} after the checkpoint at ${at}`);
}

test("cancel stops after the current step with a checkpoint; a new start resumes from it", async () => {
  await resumeAfter("cancel", (job) => job.cancel(), "DISTIL_CANCELLED");
});

test("a worker killed with SIGKILL rejects with DISTIL_WORKER_CRASHED; a new start resumes", async () => {
  await resumeAfter("crash", (job) => void process.kill(job.pid!, "SIGKILL"), "DISTIL_WORKER_CRASHED");
});

test("split stages: 'train' stops before the gate, 'gate' judges that child elsewhere; a foreign child that is not a model is refused before llama.cpp opens it", async () => {
  const one = { parents: [parents[0]!], skills: ["add"] };
  const t = await startTrainJob(spec("split", { ...one, steps: 3, lr: 1e-5 })).done;
  assert.equal("gate" in t, false, "a trainer node's job has no gate");
  const trained = { datasetSha256: t.datasetSha256, counts: t.counts, steps: t.steps, seconds: t.seconds, tokensPerSecond: t.tokensPerSecond };
  const g = await startDistilJob(spec("split-gate", { ...one, stage: "gate", out: t.childFile, trained })).done;
  assert.equal(g.gate.passed, true, g.gate.reasons.join("; "));
  assert.equal(g.datasetSha256, t.datasetSha256);
  assert.throws(() => startDistilJob(spec("split-x", { ...one, stage: "train" })), (err: ColonyError) => err.code === "DISTIL_SPEC_INVALID");
  const junk = path.join(dir, "junk.gguf");
  writeFileSync(junk, Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(64, 7)]));
  await assert.rejects(startDistilJob(spec("split-junk", { ...one, stage: "gate", out: junk, trained })).done, (err: ColonyError) => err.code === "DISTIL_CHILD_INVALID");
});

test("an invalid spec is refused before any process starts", () => {
  assert.throws(() => startDistilJob({ ...spec("x"), parents: [] }), (err: ColonyError) => err.code === "DISTIL_SPEC_INVALID");
});
