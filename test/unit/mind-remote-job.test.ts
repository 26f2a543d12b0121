// A distillation job on a trainer node, as the coordinator follows it (coordinator/mind/remote-job.ts),
// with a fake clock, a recorded command channel and a stand-in gate: what it sends, when it sends the
// job again, when it gives up (MIND_TRAINER_LOST), and that it never gates an upload that is not what
// the node reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import type { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import type { TrainProgress } from "../../common/protocol.ts";
import type { CommandOutcome } from "../../coordinator/evolution/commands.ts";
import { RemoteJob } from "../../coordinator/mind/remote-job.ts";
import { ServedFiles } from "../../coordinator/mind/served-files.ts";
import type { startDistilJob } from "../../trainer/distil/job.ts";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const flush = () => new Promise((r) => setTimeout(r, 20));

function setup(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "remote-job-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const experiences = path.join(dir, "experiences.jsonl");
  writeFileSync(experiences, '{"taskId":"a"}\n');
  const clock = new FakeClock();
  const sent: { nodeId: string; kind: string }[] = [];
  let answer: (kind: string) => CommandOutcome = (kind) => ({ commandId: "c", nodeId: "t1", agentId: "j1", kind: kind as never, status: "training", at: 0 });
  let online = true;
  const served = new ServedFiles({ get: () => undefined, readChunk: async () => Buffer.alloc(0) });
  const gated: unknown[] = [];
  const startGate = ((spec: unknown) => {
    gated.push(spec);
    return { done: Promise.resolve({ childFile: "x", format: "gguf-model", datasetSha256: "d".repeat(64), counts: {}, steps: 1, seconds: 1, tokensPerSecond: 1, gate: { passed: true } }), pid: 1, cancel: async () => {}, [Symbol.asyncDispose]: async () => {} };
  }) as unknown as typeof startDistilJob;
  const job = new RemoteJob({
    nodeId: "t1", spec: { jobId: "j1", jobDir: dir, experiences, parents: [{ agentId: "p", modelFile: "/m" }], skills: ["add"] },
    command: { spec: { skills: ["add"], mode: "full", steps: 10, batch: 4, seed: 1, gate: { perSkill: 5, margin: 0.01, seed: "g" } }, inputs: { experiences: { sha256: "e".repeat(64), bytes: 15 }, parents: [{ agentId: "p", sha256: "f".repeat(64) }] } },
    experiences: { file: experiences, sha256: "e".repeat(64), bytes: 15 },
    commands: { send: async (nodeId, body) => (sent.push({ nodeId, kind: body.kind }), answer(body.kind)) },
    served, registry: { isOnline: () => online }, clock, counters: new Counters(silentLogger, () => clock.now()), logger: silentLogger,
    offlineGraceMs: 10_000, silenceMs: 30_000, startGate,
  });
  return {
    job, clock, sent, served, gated,
    setOnline: (v: boolean) => (online = v),
    answer: (f: typeof answer) => (answer = f),
  };
}

const progress = (seq: number, body: Partial<TrainProgress>): TrainProgress => ({ nodeId: "t1", jobId: "j1", seq, state: "running", at: 0, ...body });

test("the job goes to its node, whose upload is gated here once it matches what the node reports", async (t) => {
  const s = setup(t);
  s.job.start();
  await flush();
  assert.deepEqual(s.sent, [{ nodeId: "t1", kind: "train" }]);
  assert.ok(await s.served.get("e".repeat(64), "t1"), "the experiences are offered to the node");
  const child = Buffer.from("a child model's bytes");
  const h = { requestId: "j1", sha256: sha(child), offset: 0, length: child.length, total: child.length, chunkSha256: sha(child) };
  s.job.onFrame(h, child);
  s.job.onProgress(progress(5, { state: "trained", trained: { sha256: sha(child), bytes: child.length, format: "gguf-model", datasetSha256: "d".repeat(64), counts: { add: 3 }, steps: 10, seconds: 2, tokensPerSecond: 9 } }));
  const r = await s.job.done;
  assert.equal(r.gate.passed, true);
  assert.equal(s.gated.length, 1);
  assert.equal((s.gated[0] as { stage: string }).stage, "gate");
  assert.deepEqual((s.gated[0] as { trained: unknown }).trained, { datasetSha256: "d".repeat(64), counts: { add: 3 }, steps: 10, seconds: 2, tokensPerSecond: 9 });
  assert.equal(await s.served.get("e".repeat(64), "t1"), undefined, "withdrawn at the end");
});

test("an upload that is not what the node reports is never gated: MIND_TRAINER_LOST", async (t) => {
  const s = setup(t);
  s.job.start();
  const child = Buffer.from("bytes");
  s.job.onFrame({ requestId: "j1", sha256: sha(child), offset: 0, length: child.length, total: child.length, chunkSha256: sha(child) }, child);
  s.job.onProgress(progress(1, { state: "trained", trained: { sha256: sha("other bytes"), bytes: child.length, format: "gguf-model", datasetSha256: "d".repeat(64), counts: {}, steps: 1, seconds: 1, tokensPerSecond: 1 } }));
  await assert.rejects(s.job.done, (e: ColonyError) => e.code === "MIND_TRAINER_LOST" && /not what it reports/.test(e.message));
  assert.equal(s.gated.length, 0);
});

test("a node that drops out is sent the job again when it is back; one away too long loses it", async (t) => {
  const s = setup(t);
  s.job.start();
  await flush();
  s.setOnline(false);
  s.clock.advance(5_000);
  s.setOnline(true);
  s.clock.advance(1_000);
  await flush();
  assert.deepEqual(s.sent.map((x) => x.kind), ["train", "train"], "sent again on its return");
  s.setOnline(false);
  s.clock.advance(12_000);
  await assert.rejects(s.job.done, (e: ColonyError) => e.code === "MIND_TRAINER_LOST" && /offline/.test(e.message));
});

test("a silent node is asked again twice, then loses the job; its own refusal or failure ends the job with its code", async (t) => {
  const s = setup(t);
  s.job.start();
  await flush();
  s.clock.advance(31_000);
  await flush();
  s.clock.advance(31_000);
  await flush();
  assert.equal(s.sent.length, 3);
  s.clock.advance(31_000);
  await assert.rejects(s.job.done, (e: ColonyError) => e.code === "MIND_TRAINER_LOST" && /said nothing/.test(e.message));

  const r = setup(t);
  r.answer(() => ({ commandId: "c", nodeId: "t1", agentId: "j1", kind: "train", status: "refused", error: { code: "TRAINER_BUSY", message: "busy" }, at: 0 }));
  r.job.start();
  await assert.rejects(r.job.done, (e: ColonyError) => e.code === "TRAINER_BUSY");

  const f = setup(t);
  f.job.start();
  f.job.onProgress(progress(0, { progress: { phase: "train", step: 1, total: 10, loss: 1, tokensPerSecond: 1 } }));
  f.job.onProgress(progress(1, { state: "failed", error: { code: "DISTIL_NO_DATA", message: "nothing" } }));
  await assert.rejects(f.job.done, (e: ColonyError) => e.code === "DISTIL_NO_DATA");
});
