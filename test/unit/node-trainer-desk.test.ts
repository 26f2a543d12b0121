// The node's trainer desk (node/trainer/trainer-desk.ts) without processes: a fake clock, a recorded
// outbox, a fetcher that holds a transfer open. What it answers before and after its speed is known,
// one job at a time, and the keep-alive that tells the coordinator a long fetch is not a dead node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import type { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { Outbox, type Command, type TrainProgress } from "../../common/protocol.ts";
import { KEEPALIVE_MS, TrainerDesk } from "../../node/trainer/trainer-desk.ts";

type TrainingCommand = Extract<Command, { kind: "train-quote" | "train" | "train-cancel" }>;
const base = { commandId: "c1", sentAt: 0 };
const work = { trainFlops: 2e12, sampleFlops: 0, transferBytes: 0, models: [{ sha256: "f".repeat(64), bytes: 10 * 2 ** 20 }] };
const train = (jobId: string): TrainingCommand => ({
  kind: "train", ...base, agentId: jobId,
  spec: { skills: ["add"], mode: "full", steps: 10, batch: 4, seed: 1, gate: { perSkill: 5, margin: 0.01, seed: "g" } },
  inputs: { experiences: { sha256: "e".repeat(64), bytes: 10 }, parents: [{ agentId: "p", sha256: "f".repeat(64) }] },
});

test("the trainer desk: not ready before its speed is known, prices after, one job at a time, and keeps a long fetch alive", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "trainer-desk-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new FakeClock();
  const sent: TrainProgress[] = [];
  const out = new Outbox({ publish: (_topic, payload) => void sent.push(JSON.parse(payload) as TrainProgress) });
  let measured!: (v: { flopsPerSecond: number; tokensPerSecond: number; parameters: number; threads: number; seconds: number }) => void;
  let ready = 0;
  let closeFetcher = () => {};
  const desk = new TrainerDesk({
    nodeId: "t1", dir, threads: 1, watts: 10, holds: () => false, out, publishBytes: async () => {},
    // A transfer that does not end until the node closes its fetcher: the job sits in its fetch phase.
    fetcher: { ensure: () => new Promise((_r, reject) => (closeFetcher = () => reject(Object.assign(new Error("the node is shutting down"), { code: "ALREADY_CLOSED" })))), fetchFile: async () => {} },
    onCapability: () => ready++, clock, counters: new Counters(silentLogger, () => clock.now()), logger: silentLogger,
    measure: () => new Promise((r) => (measured = r)),
  });
  await desk.start();
  await assert.rejects(desk.onCommand({ kind: "train-quote", ...base, agentId: "j1", work }), (e: ColonyError) => e.code === "TRAINER_NOT_READY");
  measured({ flopsPerSecond: 1e12, tokensPerSecond: 1, parameters: 1, threads: 1, seconds: 1 });
  await new Promise((r) => setImmediate(r));
  assert.equal(ready, 1, "the status is republished with the capability");
  assert.equal(desk.capability!.flopsPerSecond, 1e12);
  assert.deepEqual(await desk.onCommand({ kind: "train-quote", ...base, agentId: "j1", work }), { status: "quoted", quote: { seconds: 3, energyJ: 20 } }, "2 s of compute and 10 MiB at 10 MiB/s; energy at 10 W");

  assert.deepEqual(await desk.onCommand(train("j1")), { status: "training" });
  assert.deepEqual(await desk.onCommand(train("j1")), { status: "exists" }, "the same job again goes on");
  await assert.rejects(desk.onCommand(train("j2")), (e: ColonyError) => e.code === "TRAINER_BUSY");
  await assert.rejects(desk.onCommand({ kind: "train-quote", ...base, agentId: "j2", work }), (e: ColonyError) => e.code === "TRAINER_BUSY");
  assert.deepEqual(await desk.onCommand({ kind: "train-cancel", ...base, agentId: "j2" }), { status: "absent" });

  // The job clears old folders and makes its own (real fs) before it reports its fetch.
  for (let i = 0; i < 100 && !sent.some((p) => p.progress?.phase === "fetch"); i++) await new Promise((r) => setTimeout(r, 5));
  const before = sent.length;
  assert.ok(before >= 1 && sent.at(-1)!.progress!.phase === "fetch");
  clock.advance(KEEPALIVE_MS * 2 + 1);
  const again = sent.slice(before);
  assert.equal(again.length, 2, "the fetch's progress goes out again every KEEPALIVE_MS");
  assert.ok(again.every((p) => p.state === "running" && p.progress!.phase === "fetch" && p.seq > sent[before - 1]!.seq));
  // The daemon closes its fetcher first (node/daemon.ts): the job ends without a report.
  closeFetcher();
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, before + 2, "a shutdown is no failure to report (the coordinator would give the job away)");
  await desk.close();
  clock.advance(KEEPALIVE_MS * 2);
  assert.equal(sent.length, before + 2, "nothing after close");
});
