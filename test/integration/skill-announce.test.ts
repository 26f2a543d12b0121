// Skill-scoped announces (issue 13, "the auction cost grows with eligible nodes, not with the
// fleet"): a task with a skill is announced on colony/v1/market/announce/{skill}, which only nodes
// with an agent for it subscribe to; a task without a skill on the market topic every node reads.
// A node daemon subscribes to a newly spawned agent's skill BEFORE its status tells the coordinator,
// so the first auction for the skill is heard. Real coordinator (aedes, auth, ACL), a real node
// daemon on a tiny llama model, and a scripted node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { decode, encode, topics, CommandAckSchema, type CommandAck } from "../../common/protocol.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";
import { startScriptedNode, waitRegistered, type ScriptedNode } from "../fixtures/scripted-node.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-skill-announce-"));
let h: Harness;
let model: string;
let node: Awaited<ReturnType<typeof startNode>>;
let reverse: ScriptedNode;
let sup: MqttClient;
let sub: MqttClient;
const acks: CommandAck[] = [];

before(async () => {
  // A short bid window: an announce the node misses ends NO_BIDDERS fast instead of hanging.
  h = await startHarness({ config: { bidWindowMs: 1500 } });
  model = await writeRandomModel(dir, "tiny");
  node = await startNode({ nodeId: "n-add", url: h.url, cred: await h.nodeCred("n-add"), dataDir: path.join(dir, "node"), genomes: [genome("n-add.a", model, ["add"], { contextSize: 64 })], calibrate: false });
  reverse = await startScriptedNode({ url: h.url, nodeId: "n-rev", skills: ["reverse"], ...(await h.nodeCred("n-rev")) });
  await waitRegistered((id) => h.coordinator.registry.isOnline(id), "n-add");
  await waitRegistered((id) => h.coordinator.registry.isOnline(id), "n-rev");
  sup = await h.superClient();
  sup.on("message", (t, p) => {
    const m = decode(CommandAckSchema, p);
    if (t === topics.nodeCommandAck("n-add") && m.ok) acks.push(m.value);
  });
  await sup.subscribeAsync(topics.nodeCommandAck("n-add"), { qos: 1 });
  sub = await h.submitter();
});
after(async () => {
  await reverse?.stop();
  await node?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

const heard = () => node.daemon.counters.get("announces");
const submit = (skill: string | undefined, prompt = "abc") =>
  submitAndWait(sub, { id: newTaskId(), prompt, maxTokens: 4, ...(skill ? { skill } : {}) }, { timeoutMs: 30_000 });

test("a task with a skill reaches only the nodes with the skill; a task without one reaches every node", async () => {
  const before = heard();
  const r = await submit("reverse");
  assert.equal(r.status, "ok", JSON.stringify(r));
  assert.equal(r.nodeId, "n-rev");
  assert.equal(heard(), before, "the add node never heard the reverse task's announce");

  const a = await submit("add", "add 1 2 =");
  assert.equal(a.status, "ok", JSON.stringify(a));
  assert.equal(a.nodeId, "n-add");
  assert.equal(heard(), before + 1);

  await submit(undefined);
  assert.equal(heard(), before + 2, "a task without a skill is announced to every node");
});

// (The node waits for the SUBACK before its status advertises the skill. Brokers handle one client's
// packets in order, so this passes without the wait as well; the wait does not rely on that.)
test("a spawned agent's new skill is heard from the first auction the coordinator opens for it", async () => {
  const commandId = "c-count-1";
  await sup.publishAsync(topics.nodeCommand("n-add"), encode({ kind: "spawn", commandId, agentId: "n-add.count", sentAt: Date.now(), genome: { id: "n-add.count", model, skills: ["count"], contextSize: 64 }, lineage: { parents: ["n-add.a"], generation: 1, reason: "test" } }), { qos: 1 });
  const eligible = () => h.coordinator.registry.eligibleNodes("count", new Set()).includes("n-add");
  const deadline = Date.now() + 20_000;
  // Submitted the moment the coordinator sees the skill: the node must already hear its topic.
  while (!eligible()) {
    assert.ok(Date.now() < deadline, `the spawn never reached the registry (acks: ${JSON.stringify(acks)})`);
    await new Promise((r) => setImmediate(r));
  }
  const r = await submit("count", "count a in aaa =");
  assert.equal(r.status, "ok", JSON.stringify(r));
  assert.equal(r.agentId, "n-add.count");
  assert.equal(acks.find((a) => a.commandId === commandId)?.status, "created");
});
