// The pure parts of the node's agent life cycle: command intake (what is acked, what is dropped),
// the status's spec budget, the population default, the adapter gate, and the agent store's
// population rule on a real LevelDB in a temp folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { ColonyError } from "../../common/errors.ts";
import { GenomeSchema } from "../../common/genome.ts";
import { silentLogger } from "../../common/logger.ts";
import { encode, MAX_PAYLOAD_BYTES, NodeStatusSchema, PROTOCOL_VERSION, type AgentInfo } from "../../common/protocol.ts";
import { checkLoraAdapter } from "../../gguf/lora-check.ts";
import { readGgufHeader } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { meta } from "../../gguf/meta.ts";
import { GgmlType } from "../../gguf/types.ts";
import { AgentStore } from "../../node/agents/agent-store.ts";
import { takeCommand } from "../../node/agents/command-intake.ts";
import { fitSpecs } from "../../node/presence.ts";
import { maxAgentsFor } from "../../node/profile.ts";

const g = (id: string, extra: Record<string, unknown> = {}) => GenomeSchema.parse({ id, model: "m.gguf", ...extra });
const spawn = { kind: "spawn", commandId: "c1", agentId: "a1", sentAt: 1, genome: { id: "a1", model: "m.gguf" }, lineage: { parents: [], generation: 1, reason: "r" } };
const buf = (v: unknown) => Buffer.from(typeof v === "string" ? v : encode(v));

test("command intake: valid commands pass; a broken one that names itself is refused (GENOME_INVALID for its genome); anything else is dropped", () => {
  assert.equal(takeCommand(buf(spawn)).kind, "command");
  const badGenome = takeCommand(buf({ ...spawn, genome: { id: "a1", model: "m.gguf", promptTemplate: "x" } }));
  assert.equal(badGenome.kind === "refuse" && badGenome.error.code, "GENOME_INVALID");
  const mismatch = takeCommand(buf({ ...spawn, genome: { id: "other", model: "m.gguf" } }));
  assert.equal(mismatch.kind === "refuse" && mismatch.error.code, "PAYLOAD_INVALID", "a valid genome under another id is the envelope's fault");
  const noHold = takeCommand(buf({ kind: "wake", commandId: "c2", agentId: "a1", sentAt: 1, reason: "r" }));
  assert.deepEqual(noHold.kind === "refuse" && [noHold.command, noHold.error.code], ["wake", "PAYLOAD_INVALID"]);
  for (const junk of ["{", "[]", encode({ ...spawn, commandId: "no/slash" }), encode({ ...spawn, kind: "explode" }), encode({ ...spawn, agentId: undefined }), "x".repeat(MAX_PAYLOAD_BYTES + 1)]) {
    assert.equal(takeCommand(buf(junk)).kind, "drop", junk.slice(0, 40));
  }
});

test("fitSpecs leaves out the largest genomes' specs first, only as many as the budget needs", () => {
  const info = (id: string, chars: number): AgentInfo => ({ agentId: id, skills: [], model: "m", state: "asleep", spec: g(id, { systemPrompt: "x".repeat(chars) }), generation: 0 });
  const agents = [info("a", 100), info("b", 8000), info("c", 6000), info("d", 50)];
  assert.deepEqual(fitSpecs(agents, 100_000), agents, "within budget: untouched");
  const fitted = fitSpecs(agents, 9000);
  assert.deepEqual(fitted.map((a) => a.spec !== undefined), [true, false, true, true]);
  assert.ok(encode(fitted).length <= 9000);
  // 256 agents with 8 KB prompts still make a status the coordinator accepts.
  const many = Array.from({ length: 256 }, (_, i) => info(`x${i}`, 8000));
  const status = { state: "online", nodeId: "n", protocol: PROTOCOL_VERSION, deviceClass: "d", slots: 1, agents: fitSpecs(many), models: [], at: 1 };
  assert.ok(encode(status).length < 48 * 1024);
  assert.ok(NodeStatusSchema.safeParse(status).success);
});

test("maxAgents: the profile's, else one per 128 MB of memory within [1, 64]", () => {
  assert.equal(maxAgentsFor({ maxAgents: 3 }, 64_000), 3);
  assert.equal(maxAgentsFor({}, 1024), 8);
  assert.equal(maxAgentsFor({}, 100), 1);
  assert.equal(maxAgentsFor({}, 64_000), 64);
});

function header(metadata: [string, ReturnType<typeof meta.str>][], tensors: [string, number[]][]) {
  return readGgufHeader(encodeGguf({ metadata, tensors: tensors.map(([name, dims]) => ({ name, dims, type: GgmlType.F32, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) })) }));
}
const base = header([["general.architecture", meta.str("llama")]], [["blk.0.attn_q.weight", [8, 8]], ["output.weight", [8, 20]]]);
const adapterMeta: [string, ReturnType<typeof meta.str>][] = [["general.architecture", meta.str("llama")], ["general.type", meta.str("adapter")], ["adapter.type", meta.str("lora")]];

test("the adapter gate accepts pairs shaped for the base and names what does not fit", () => {
  const ok = header(adapterMeta, [["blk.0.attn_q.weight.lora_a", [8, 2]], ["blk.0.attn_q.weight.lora_b", [2, 8]], ["output.weight.lora_a", [8, 2]], ["output.weight.lora_b", [2, 20]]]);
  assert.deepEqual(checkLoraAdapter(ok, base), { targets: ["blk.0.attn_q.weight", "output.weight"], rank: 2, alpha: undefined });
  const bad = (tensors: [string, number[]][], re: RegExp, m = adapterMeta) =>
    assert.throws(() => checkLoraAdapter(header(m, tensors), base), (e: unknown) => e instanceof ColonyError && re.test(e.message));
  bad([["blk.0.attn_q.weight.lora_a", [8, 2]], ["blk.0.attn_q.weight.lora_b", [2, 9]]], /shapes/);
  bad([["blk.0.attn_q.weight.lora_a", [8, 2]]], /lacks its lora_b/);
  bad([["blk.9.attn_q.weight.lora_a", [8, 2]], ["blk.9.attn_q.weight.lora_b", [2, 8]]], /does not have/);
  bad([["blk.0.attn_q.weight", [8, 8]]], /not named/);
  bad([["blk.0.attn_q.weight.lora_a", [8, 2]], ["blk.0.attn_q.weight.lora_b", [2, 8]]], /architecture/, [["general.architecture", meta.str("gemma")], ...adapterMeta.slice(1)]);
  bad([["blk.0.attn_q.weight.lora_a", [8, 2]], ["blk.0.attn_q.weight.lora_b", [2, 8]]], /general.type/, [adapterMeta[0]!]);
});

test("the agent store: the agents file less retired and respawned ids, plus spawned genomes, across a reopen", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-agent-store-"));
  const lineage = { parents: ["f1"], generation: 2, reason: "r" };
  try {
    let db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    let store = new AgentStore(db, silentLogger);
    await store.start();
    await store.putSpawned({ genome: g("s1"), lineage, at: 1, files: { model: "/models/m.gguf" } });
    await store.putSpawned({ genome: g("f2", { skills: ["x"] }), lineage, at: 1 });
    await store.retire("f1", { at: 2, reason: "weak" });
    await store.putSpawned({ genome: g("s2"), lineage, at: 3 });
    await store.retire("s2", { at: 4, reason: "weak" });
    await db.close();
    db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    store = new AgentStore(db, silentLogger);
    await store.start();
    const pop = store.population([g("f1"), g("f2"), g("f3")]);
    assert.deepEqual(pop.map((m) => [m.genome.id, m.generation, m.spawned]), [["f3", 0, false], ["f2", 2, true], ["s1", 2, true]]);
    assert.deepEqual(pop.find((m) => m.genome.id === "f2")!.genome.skills, ["x"], "the spawned genome replaces the file's");
    assert.equal(pop.find((m) => m.genome.id === "s1")!.files?.model, "/models/m.gguf");
    assert.equal(store.isRetired("s2"), true);
    // A spawn brings a retired id back.
    await store.putSpawned({ genome: g("f1"), lineage, at: 5 });
    assert.equal(store.isRetired("f1"), false);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
