// The push desk (coordinator/models/push-desk.ts) with fakes around the real rollout table: a node
// whose fetch command goes unanswered while its transfer still sends progress is waited for and
// answered with its row's outcome; one that never started, or goes quiet, is `no-answer`
// (MODEL_PUSH_NO_ANSWER in its row); the rows' final snapshot is published before the reply.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../common/clock.ts";
import { Counters } from "../../common/counters.ts";
import { silentLogger } from "../../common/logger.ts";
import { ModelPushReplySchema, ModelRolloutsSchema, Outbox, topics, type ModelProgress } from "../../common/protocol.ts";
import { PushDesk } from "../../coordinator/models/push-desk.ts";
import { RolloutTable } from "../../coordinator/models/rollouts.ts";

const A = "a".repeat(64);

test("push desk: an unanswered node whose bytes still flow gets its row's outcome; a silent one is no-answer; rows go out before the reply", async () => {
  const clock = new FakeClock();
  const counters = new Counters(silentLogger, () => clock.now());
  const wire: { topic: string; payload: string }[] = [];
  const out = new Outbox({ publish: (topic, payload) => void wire.push({ topic, payload }) });
  const rollouts = new RolloutTable({ out, clock, counters, known: (s) => s === A });
  await rollouts.start();
  const link = { client: { publishAsync: async (topic: string, payload: string) => void wire.push({ topic, payload }) } };
  const store = { get: (s: string) => (s === A ? { file: "/m.gguf", signed: { manifest: { sha256: A, bytes: 1000, version: 3 } } } : undefined) };
  // Every fetch command goes unanswered (the command layer's 3 x 5 s have passed).
  const commands = { send: async () => ({ status: "no-answer" as const, commandId: "c", nodeId: "n", agentId: "prefetch" }) };
  const desk = new PushDesk({ link, store, commands, registry: { list: () => [] }, rollouts, counters, logger: silentLogger, quietMs: 1000 } as never);
  const progress = (nodeId: string, seq: number, state: ModelProgress["state"], bytes: number): void =>
    rollouts.onProgress({ nodeId, sha256: A, transferId: `mt-${nodeId}`, seq, state, bytes, total: 1000, at: clock.now() });

  // n1 and n2 start fetching before the commands give up; n3 never starts.
  rollouts.begin("warm", A, 1000, ["n1", "n2"]);
  progress("n1", 0, "fetching", 0);
  progress("n2", 0, "fetching", 0);
  const pushed = desk.push({ requestId: "push-1", sha256: A, nodes: ["n1", "n2", "n3"] });
  await new Promise((r) => setImmediate(r));
  for (let i = 1; i <= 3; i++) {
    clock.advance(600);
    progress("n1", i, "fetching", i * 300);
  }
  // n2 went quiet at 1000 ms; n1 finishes.
  progress("n1", 4, "done", 1000);
  await pushed;

  const replyAt = wire.findIndex((m) => m.topic === topics.modelPushReply("push-1"));
  const reply = ModelPushReplySchema.parse(JSON.parse(wire[replyAt]!.payload));
  assert.deepEqual(reply.results.map((r) => [r.nodeId, r.status]), [["n1", "fetched"], ["n2", "no-answer"], ["n3", "no-answer"]]);
  const snapshots = wire.slice(0, replyAt).filter((m) => m.topic === topics.modelRollouts);
  const last = ModelRolloutsSchema.parse(JSON.parse(snapshots.at(-1)!.payload));
  assert.deepEqual(last.rollouts.map((r) => [r.nodeId, r.state, r.code ?? "", r.requestId]).sort(), [
    ["n1", "done", "", "push-1"], ["n2", "failed", "MODEL_PUSH_NO_ANSWER", "push-1"], ["n3", "failed", "MODEL_PUSH_NO_ANSWER", "push-1"],
  ]);
  assert.equal(wire.slice(replyAt + 1).filter((m) => m.topic === topics.modelRollouts).length, 0, "the final rows went out before the reply");
  await desk.close();
  await rollouts.close();
});
