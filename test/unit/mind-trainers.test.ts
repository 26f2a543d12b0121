// Trainer nodes' pure and local parts (docs/mind.md, "Trainer nodes"): the price of a job, the work
// estimate, where a job goes (quotes against this host's own price), the upload receiver that trusts
// nothing the node sends, the files offered to one node only, and private tasks' experiences kept home.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Counters } from "../../common/counters.ts";
import type { ModelChunkHeader, TrainWork } from "../../common/protocol.ts";
import { ChildUpload } from "../../coordinator/mind/child-upload.ts";
import { ServedFiles, shareableExperiences } from "../../coordinator/mind/served-files.ts";
import { estimateWork, Trainers } from "../../coordinator/mind/trainers.ts";
import type { CommandOutcome } from "../../coordinator/evolution/commands.ts";
import type { NodeEntry } from "../../coordinator/registry.ts";
import { LINK_BYTES_PER_SECOND, priceJob } from "../../trainer/price.ts";
import { silentLogger } from "../../common/logger.ts";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const A = "a".repeat(64);
const B = "b".repeat(64);

test("a quote is the compute at the measured speed plus the bytes to move; a model the node holds moves nothing", () => {
  const work: TrainWork = { trainFlops: 6e12, sampleFlops: 2e12, transferBytes: LINK_BYTES_PER_SECOND, models: [{ sha256: A, bytes: 2 * LINK_BYTES_PER_SECOND }, { sha256: B, bytes: LINK_BYTES_PER_SECOND }] };
  const q = priceJob(work, { flopsPerSecond: 1e12, watts: 10 }, (s) => s === A);
  assert.equal(q.seconds, 8 + 1 + 1, "8 s of compute, the experiences and child, the model it lacks");
  assert.equal(q.energyJ, 80, "energy is the compute's time at the training power");
  assert.equal(priceJob(work, { flopsPerSecond: 1e12 }, () => true).seconds, 9);
  assert.equal(priceJob(work, { flopsPerSecond: 1e12 }, () => true).energyJ, undefined, "no power figure, no energy");
});

test("the work of a job: 6 x parameters x tokens to train, 2 x parameters x tokens to sample, from the largest parent's f32 size", () => {
  const w = estimateWork({ steps: 10, batch: 4, meanChars: 8, samples: 100, models: [{ sha256: A, bytes: 4000 }, { sha256: B, bytes: 400 }], experiencesBytes: 123 });
  assert.equal(w.trainFlops, 6 * 1000 * 10 * 4 * 10);
  assert.equal(w.sampleFlops, 2 * 1000 * 100 * 10);
  assert.equal(w.transferBytes, 123 + 4000, "the experiences out, a child of the parent's size back");
  assert.deepEqual(w.models.map((m) => m.sha256), [A, B]);
});

function trainersWith(o: { quotes: Record<string, CommandOutcome | "silent">; own: number; trainOn?: "best" | "coordinator" | "nodes" }) {
  const asked: string[] = [];
  const nodes = Object.keys(o.quotes).map((nodeId): NodeEntry => ({ nodeId, online: true, lastSeen: 0, status: { state: "online", nodeId, protocol: "colony/1", deviceClass: "x", slots: 1, agents: [], models: [], trainer: { flopsPerSecond: 1, threads: 1, measuredAt: 0 }, at: 0 } as never }));
  nodes.push({ nodeId: "plain", online: true, lastSeen: 0 });
  const t = new Trainers({
    registry: { list: () => nodes }, served: new ServedFiles({ get: () => undefined, readChunk: async () => Buffer.alloc(0) }),
    commands: {
      send: (nodeId) => {
        asked.push(nodeId);
        const a = o.quotes[nodeId]!;
        return a === "silent" ? new Promise(() => {}) : Promise.resolve(a);
      },
    },
    settings: { trainOn: o.trainOn ?? "best", threads: 1 }, counters: new Counters(silentLogger, () => 0), logger: silentLogger,
    measure: async () => ({ flopsPerSecond: 1e12 / o.own, tokensPerSecond: 1, parameters: 1, threads: 1, seconds: 1 }),
  });
  return { t, asked };
}
const quoted = (nodeId: string, seconds: number): CommandOutcome => ({ commandId: "c", nodeId, agentId: "j", kind: "train-quote", status: "quoted", quote: { seconds }, at: 0 });
const work: TrainWork = { trainFlops: 1e12, sampleFlops: 0, transferBytes: 0, models: [] };

test("a job goes to the fastest quote when it beats this host; a tie, silence or refusals keep it here; trainOn decides who is asked", async () => {
  let r = await trainersWith({ quotes: { t1: quoted("t1", 5), t2: quoted("t2", 2) }, own: 10 }).t.choose("j", work, 200);
  assert.deepEqual([r.where, r.where === "node" && r.nodeId], ["node", "t2"]);
  assert.match(r.why, /fastest quote of t2 2\.0 s, t1 5\.0 s vs this host's 10\.0 s/);
  r = await trainersWith({ quotes: { t1: quoted("t1", 10) }, own: 10 }).t.choose("j", work, 200);
  assert.equal(r.where, "coordinator", "a tie stays here: nothing to move");
  assert.deepEqual([r.where === "coordinator" && r.asked, r.why], [true, "this host's 10.0 s beats the quotes (t1 10.0 s)"], "the job's record says why it stayed");
  const silent = trainersWith({ quotes: { t1: "silent", t2: { commandId: "c", nodeId: "t2", agentId: "j", kind: "train-quote", status: "refused", error: { code: "TRAINER_BUSY", message: "busy" }, at: 0 } }, own: 10 });
  r = await silent.t.choose("j", work, 100);
  assert.equal(r.where, "coordinator");
  assert.match(r.why, /no trainer node quoted/);
  assert.deepEqual(silent.asked.sort(), ["t1", "t2"], "only nodes that offer training are asked");
  const here = trainersWith({ quotes: { t1: quoted("t1", 1) }, own: 10, trainOn: "coordinator" });
  const kept = await here.t.choose("j", work, 100);
  assert.deepEqual([kept.where, kept.where === "coordinator" && kept.asked], ["coordinator", undefined], "nobody asked: nothing to record");
  assert.deepEqual(here.asked, [], "trainOn coordinator asks nobody");
  assert.equal((await trainersWith({ quotes: { t1: quoted("t1", 50) }, own: 10, trainOn: "nodes" }).t.choose("j", work, 100)).where, "node", "trainOn nodes prefers a node");
});

function frames(data: Buffer, chunk: number): { h: ModelChunkHeader; d: Buffer }[] {
  const out = [];
  for (let offset = 0; offset < data.length; offset += chunk) {
    const d = data.subarray(offset, offset + chunk);
    out.push({ h: { requestId: "j", sha256: sha(data), offset, length: d.length, total: data.length, chunkSha256: sha(d) }, d });
  }
  return out;
}

test("the upload receiver keeps a child only when every chunk and the whole file are what the node reports", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "child-upload-"));
  try {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    const good = new ChildUpload(path.join(dir, "good"), 10_000);
    for (const f of frames(data, 300)) assert.equal(good.onFrame(f.h, f.d), undefined);
    assert.equal(await good.complete(sha(data), data.length), undefined);
    assert.deepEqual(readFileSync(path.join(dir, "good")), data);
    assert.match((await good.complete(sha("other"), data.length))!, /the node reports/, "a report of other bytes is refused");

    const fs = frames(data, 300);
    const corrupt = new ChildUpload(path.join(dir, "corrupt"), 10_000);
    assert.match(corrupt.onFrame(fs[1]!.h, Buffer.alloc(fs[1]!.d.length))!, /does not match its sha256/);
    for (const f of [fs[0]!, fs[2]!]) corrupt.onFrame(f.h, f.d);
    assert.match((await corrupt.complete(sha(data), data.length))!, /expected 300/, "a gap is found");

    const big = new ChildUpload(path.join(dir, "big"), 500);
    assert.match(big.onFrame(fs[0]!.h, fs[0]!.d)!, /exceeds 500/);
    assert.match((await big.complete(sha(data), data.length))!, /no upload arrived/);

    // A second upload (after a re-sent `train`) starts over at offset 0.
    const again = new ChildUpload(path.join(dir, "again"), 10_000);
    for (const f of [fs[0]!, ...fs]) {
      assert.equal(again.onFrame(f.h, f.d), undefined);
      await new Promise((r) => setTimeout(r, 10)); // a node sends the next frame after the PUBACK
    }
    assert.equal(await again.complete(sha(data), data.length), undefined);

    // A node that floods frames without waiting is cut off instead of filling the coordinator's memory.
    const flood = new ChildUpload(path.join(dir, "flood"), 10_000);
    const answers = [...fs, ...fs].map((f) => flood.onFrame(f.h, f.d));
    assert.ok(answers.some((a) => /faster than they are written/.test(a ?? "")), JSON.stringify(answers));
    await flood.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a job's file is served to the node it was given to and to nobody else; private tasks' experiences stay home", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "served-"));
  try {
    const file = path.join(dir, "experiences.jsonl");
    writeFileSync(file, ['{"taskId":"a","prompt":"1"}', '{"taskId":"b","prompt":"2","private":true}', '{"taskId":"c","prompt":"3"}'].join("\n") + "\n");
    const store = { get: (s: string) => (s === A ? { file: "/models/a", signed: { manifest: { bytes: 1 } } } : undefined), readChunk: async () => Buffer.from("m") };
    const served = new ServedFiles(store);
    served.offer(B, { file, bytes: 10, nodeId: "t1" });
    assert.deepEqual(await served.get(B, "t1"), { file, signed: undefined, bytes: 10 });
    assert.equal(await served.get(B, "t2"), undefined, "another node gets nothing for the hash");
    assert.equal((await served.get(A, "t2"))!.file, "/models/a", "signed models as before");
    assert.equal((await served.readChunk(B, 0, 11)).toString(), '{"taskId":"');
    served.withdraw(B);
    assert.equal(await served.get(B, "t1"), undefined);
    const shared = await shareableExperiences(file);
    assert.notEqual(shared.file, file);
    assert.equal(shared.sha256, sha(readFileSync(shared.file)), "described by the bytes written");
    assert.equal(shared.bytes, readFileSync(shared.file).length);
    assert.deepEqual(readFileSync(shared.file, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { taskId: string }).taskId), ["a", "c"]);
    writeFileSync(file, '{"taskId":"a","prompt":"1"}\n');
    const whole = await shareableExperiences(file);
    assert.deepEqual(whole, { file, sha256: sha(readFileSync(file)), bytes: readFileSync(file).length }, "nothing private: the file as it is");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
