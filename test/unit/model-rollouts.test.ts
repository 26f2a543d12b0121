// Model rollout progress with fakes: the node's throttle (node/models/fetch-progress.ts) publishes at
// most every interval or step, in order, ending at the total; the coordinator's rollout table
// (coordinator/models/rollouts.ts) goes pending -> fetching -> done/failed per model x node, drops
// stale and unknown-model progress, bounds its rows, publishes a valid retained snapshot at most
// every interval and counts outcomes; the CLI's plain lines (cli/rollout-progress.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import { silentLogger } from "../../common/logger.ts";
import { MAX_ROLLOUTS, ModelProgressSchema, ModelRolloutsSchema, Outbox, topics, type ModelProgress, type ModelRollouts, type Rollout } from "../../common/protocol.ts";
import { RolloutTable } from "../../coordinator/models/rollouts.ts";
import { FetchProgress } from "../../node/models/fetch-progress.ts";
import { RolloutProgress } from "../../cli/rollout-progress.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const MB = 1_000_000;

test("fetch progress: throttled to the interval or 5 % of the model, states in order, seq growing, bytes reach the total", () => {
  const clock = new FakeClock();
  const sent: ModelProgress[] = [];
  const p = new FetchProgress({ nodeId: "n1", sha256: A, send: (m) => void sent.push(ModelProgressSchema.parse(m)), now: () => clock.now() });
  p.start(100 * MB, 10 * MB);
  // 1 MB per ms: 90 chunks in 90 ms, under the interval: only each 5 MB step goes out.
  for (let i = 0; i < 90; i++) {
    clock.advance(1);
    p.add(MB);
  }
  p.verifying();
  p.done();
  const fetching = sent.filter((m) => m.state === "fetching");
  assert.ok(fetching.length >= 18 && fetching.length <= 20, `${fetching.length} fetching messages for 90 chunks`);
  for (let i = 1; i < fetching.length; i++) assert.ok(fetching[i]!.bytes - fetching[i - 1]!.bytes >= 5 * MB);
  assert.deepEqual(sent.map((m) => m.seq), sent.map((_, i) => i));
  assert.deepEqual(sent.slice(-2).map((m) => [m.state, m.bytes, m.total]), [["verifying", 100 * MB, 100 * MB], ["done", 100 * MB, 100 * MB]]);
  assert.equal(new Set(sent.map((m) => m.transferId)).size, 1);
  assert.equal(sent[0]!.bytes, 10 * MB, "a resume starts at what the part file kept");

  // Slow chunks: the interval lets each out.
  const slow: ModelProgress[] = [];
  const q = new FetchProgress({ nodeId: "n1", sha256: A, send: (m) => void slow.push(m), now: () => clock.now() });
  q.start(1000 * MB, 0);
  for (let i = 0; i < 4; i++) {
    clock.advance(300);
    q.add(MB);
  }
  q.failed("MODEL_HASH_MISMATCH", "bad bytes");
  q.failed("MODEL_TRUNCATED", "twice");
  assert.deepEqual(slow.map((m) => m.state), ["fetching", "fetching", "fetching", "fetching", "fetching", "failed"]);
  assert.deepEqual([slow.at(-1)!.code, slow.at(-1)!.message], ["MODEL_HASH_MISMATCH", "bad bytes"]);
});

function table(known = new Set([A, B])) {
  const clock = new FakeClock();
  const sent: ModelRollouts[] = [];
  const out = new Outbox({ publish: (topic, payload, o) => {
    assert.equal(topic, topics.modelRollouts);
    assert.equal(o.retain, true);
    sent.push(ModelRolloutsSchema.parse(JSON.parse(payload)));
  } });
  const counters = new Counters(silentLogger, () => clock.now());
  const t = new RolloutTable({ out, clock, counters, known: (s) => known.has(s) });
  return { t, clock, sent, counters };
}
const prog = (o: Partial<ModelProgress>): ModelProgress => ({ nodeId: "n1", sha256: A, transferId: "mt-1", seq: 0, state: "fetching", bytes: 0, total: 10 * MB, at: 0, ...o });

test("rollout table: pending -> fetching -> done per model x node, stale and unknown progress dropped, one snapshot per interval, outcomes counted", async () => {
  const { t, clock, sent, counters } = table();
  await t.start();
  assert.equal(sent.length, 1, "an empty table at start");
  t.begin("push-1", A, 10 * MB, ["n1", "n2"]);
  assert.deepEqual(t.list().map((r) => [r.nodeId, r.state, r.requestId]), [["n1", "pending", "push-1"], ["n2", "pending", "push-1"]]);
  t.onProgress(prog({ seq: 0, bytes: 0 }));
  t.onProgress(prog({ seq: 2, bytes: 6 * MB }));
  t.onProgress(prog({ seq: 1, bytes: 3 * MB }));
  assert.equal(counters.get("dropped.model-progress.stale"), 1);
  t.onProgress(prog({ sha256: "c".repeat(64) }));
  assert.equal(counters.get("dropped.model-progress.unknown-model"), 1);
  assert.deepEqual([t.get(A, "n1")!.state, t.get(A, "n1")!.bytes, t.get(A, "n1")!.requestId], ["fetching", 6 * MB, "push-1"]);
  assert.equal(sent.length, 1, "throttled: nothing before the interval");
  clock.advance(250);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1]!.rollouts.map((r) => [r.nodeId, r.state, r.bytes]), [["n2", "pending", 0], ["n1", "fetching", 6 * MB]]);

  t.onProgress(prog({ seq: 3, state: "verifying", bytes: 10 * MB }));
  t.onProgress(prog({ seq: 4, state: "done", bytes: 10 * MB }));
  t.settle(A, "n1", "fetched");
  // n2 never answered: failed with the push's code; its progress may never have come.
  t.settle(A, "n2", "no-answer");
  // n3's spawn fetched B without a push, and the node refused it.
  t.onProgress(prog({ nodeId: "n3", sha256: B, transferId: "mt-3", seq: 0, state: "failed", bytes: 0, total: 0, code: "MODEL_FOREIGN_KEY", message: "another fleet" }));
  clock.advance(250);
  const last = sent.at(-1)!;
  assert.deepEqual(last.rollouts.map((r) => [r.nodeId, r.state, r.bytes, r.code ?? ""]), [["n1", "done", 10 * MB, ""], ["n2", "failed", 0, "MODEL_PUSH_NO_ANSWER"], ["n3", "failed", 0, "MODEL_FOREIGN_KEY"]]);
  assert.equal(last.rollouts.find((r) => r.nodeId === "n3")!.requestId, undefined);
  assert.deepEqual([counters.get("models.rollouts.done"), counters.get("models.rollouts.failed")], [1, 2], "done counted once (progress and ack)");

  // A new push of the same model to n1 starts a new row; a new transfer replaces the finished one.
  t.begin("push-2", A, 10 * MB, ["n1"]);
  assert.deepEqual([t.get(A, "n1")!.state, t.get(A, "n1")!.requestId], ["pending", "push-2"]);
  t.settle(A, "n1", "exists");
  assert.deepEqual([t.get(A, "n1")!.state, t.get(A, "n1")!.bytes], ["done", 10 * MB]);
  const before = sent.length;
  t.flush();
  assert.equal(sent.length, before + 1, "flush publishes what changed at once");
  assert.equal(sent.at(-1)!.rollouts.find((r) => r.nodeId === "n1")!.requestId, "push-2");
  t.flush();
  assert.equal(sent.length, before + 1, "and nothing when nothing changed");
  await t.close();
  await t.close();
  assert.equal(clock.pending, 0, "close clears the timer");
});

test("rollout table: at most MAX_ROLLOUTS rows, the oldest finished leave first", async () => {
  const known = new Set<string>();
  const { t, clock, sent } = table(known);
  await t.start();
  const sha = (i: number) => i.toString(16).padStart(64, "0");
  for (let i = 0; i < MAX_ROLLOUTS + 10; i++) {
    known.add(sha(i));
    t.onProgress(prog({ sha256: sha(i), transferId: `mt-${i}`, state: i < 20 ? "done" : "fetching" }));
  }
  clock.advance(250);
  const snap = sent.at(-1)!;
  assert.equal(snap.rollouts.length, MAX_ROLLOUTS);
  assert.equal(snap.omitted, 10);
  assert.ok(snap.rollouts.every((r) => r.sha256 >= sha(10)), "the first ten finished rows left");
  assert.ok(Buffer.byteLength(JSON.stringify(snap)) < 64 * 1024);
  await t.close();
});

test("rollout table: finished() waits while a transfer makes progress, for its end or a quiet period; never for a node that did not start", async () => {
  const { t, clock } = table();
  await t.start();
  t.begin("push-1", A, 10 * MB, ["n1", "n2", "n3"]);
  assert.equal(await t.finished(A, "n1", 1000), undefined, "pending: the node never started");
  assert.equal(await t.finished(B, "n1", 1000), undefined, "no row");
  t.onProgress(prog({ seq: 0 }));
  t.onProgress(prog({ nodeId: "n2", transferId: "mt-2", seq: 0 }));
  const got: Record<string, Rollout | undefined | "waiting"> = { n1: "waiting", n2: "waiting" };
  void t.finished(A, "n1", 1000).then((r) => (got.n1 = r));
  void t.finished(A, "n2", 1000).then((r) => (got.n2 = r));
  // n1 keeps sending progress: the quiet period restarts; n2 goes quiet.
  for (let i = 1; i <= 3; i++) {
    clock.advance(600);
    t.onProgress(prog({ seq: i, bytes: i * MB }));
  }
  await Promise.resolve();
  assert.equal(got.n2, undefined, "n2 went quiet for 1000 ms");
  assert.equal(got.n1, "waiting");
  t.onProgress(prog({ seq: 4, state: "done", bytes: 10 * MB }));
  await Promise.resolve();
  const n1 = got.n1 as unknown as Rollout;
  assert.deepEqual([n1.state, n1.bytes], ["done", 10 * MB]);
  assert.equal((await t.finished(A, "n1", 1000))?.state, "done", "already finished: at once");
  // A watcher open at close is released.
  t.onProgress(prog({ nodeId: "n3", transferId: "mt-3", seq: 0 }));
  const open = t.finished(A, "n3", 60_000);
  await t.close();
  assert.equal(await open, undefined);
  assert.equal(clock.pending, 0);
});

test("the CLI's plain lines: one per node at each change of state and each quarter", () => {
  let text = "";
  const p = new RolloutProgress({ stream: { write: (s: string) => ((text += s), true), isTTY: false } as never });
  const row = (nodeId: string, state: "pending" | "fetching" | "done" | "failed", bytes: number, code?: string) => ({ sha256: A, nodeId, state, bytes, total: 100, startedAt: 0, updatedAt: 0, ...(code ? { code } : {}) });
  p.update([row("n1", "pending", 0), row("n22", "pending", 0)]);
  for (const b of [10, 20, 30, 60, 100]) p.update([row("n1", "fetching", b)]);
  p.update([row("n1", "done", 100), row("n22", "failed", 0, "MODEL_ROLLBACK")]);
  p.done();
  p.update([row("n1", "fetching", 0)]);
  assert.deepEqual(text.trimEnd().split("\n").map((l) => l.trim()), [
    "n1  pending 0% (0.0 MB/0.0 MB)", "n22 pending 0% (0.0 MB/0.0 MB)", "n1  fetching 10% (0.0 MB/0.0 MB)", "n1  fetching 30% (0.0 MB/0.0 MB)",
    "n1  fetching 60% (0.0 MB/0.0 MB)", "n1  fetching 100% (0.0 MB/0.0 MB)", "n1  done 100% (0.0 MB/0.0 MB)", "n22 failed 0% (0.0 MB/0.0 MB) MODEL_ROLLBACK",
  ]);
});

test("the CLI's bars on a terminal: one line per node, redrawn in place at most every interval", () => {
  let text = "";
  let now = 0;
  const p = new RolloutProgress({ stream: { write: (s: string) => ((text += s), true), isTTY: true } as never, now: () => now });
  const row = (nodeId: string, bytes: number) => ({ sha256: A, nodeId, state: "fetching" as const, bytes, total: 100 * MB, startedAt: 0, updatedAt: 0 });
  p.update([row("n1", 0), row("n2", 0)]);
  now = 50;
  p.update([row("n1", 50 * MB)]);
  assert.equal(text.split("\n").length - 1, 2, "throttled: one drawing of two lines");
  now = 150;
  p.update([row("n1", 50 * MB)]);
  p.done();
  const draws = text.split("\x1b[2A");
  assert.equal(draws.length, 3, "redrawn twice over the same two lines");
  assert.match(draws.at(-1)!, /\r {2}n1 \[#{12}-{12}\] {2}50% {2}50\.0 MB\/100\.0 MB {2}fetching\x1b\[K\n\r {2}n2 \[-{24}\] {3}0%/);
});

