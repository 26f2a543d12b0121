// Sleep really frees memory, wake works, and the pool respects the profile's memory reserve by
// sleeping the least recently used idle agent first (real llama.cpp, real GGUF files).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { silentLogger } from "../../common/logger.ts";
import { ColonyError } from "../../common/errors.ts";
import { Agent } from "../../node/agents/agent.ts";
import { AgentPool } from "../../node/agents/agent-pool.ts";
import { LlamaRuntime, verifyModelFile } from "../../node/llama/llama-runtime.ts";
import { genome, writeRandomModel } from "../fixtures/node-helpers.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-memory-"));
const runtime = new LlamaRuntime({ threads: 1, gpuLayers: 0, modelsDir: dir, logger: silentLogger });
let big: string;
let tinyA: string;
let tinyB: string;

before(async () => {
  await runtime.start();
  big = await writeRandomModel(dir, "big", { dim: 384, layers: 4, ffn: 1152, ctx: 256 }, 7);
  tinyA = await writeRandomModel(dir, "tiny-a", undefined, 8);
  tinyB = await writeRandomModel(dir, "tiny-b", undefined, 9);
});
after(async () => {
  await runtime.close();
  rmSync(dir, { recursive: true, force: true });
});

// The trainer's exporter leaves tens of MB of JS garbage: collect it so RSS deltas measure llama.cpp.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const rssMB = () => {
  gc();
  gc();
  return process.memoryUsage().rss / 2 ** 20;
};

test("sleep frees the model's resident memory; a shared model stays until its last agent sleeps; wake works", async () => {
  const bigModel = await verifyModelFile(big);
  const fileMB = bigModel.sizeMB;
  const a = new Agent(genome("big-a", big, ["x"]), bigModel, runtime);
  const b = new Agent(genome("big-b", big, ["y"]), bigModel, runtime);
  const r0 = rssMB();
  await a.wake();
  await b.wake();
  // Both agents share one loaded model.
  assert.deepEqual(runtime.loadedModels(), [big]);
  await a.generate("abc", { maxTokens: 4 });
  await b.generate("abc", { maxTokens: 4 });
  const r1 = rssMB();
  const resident = r1 - r0;
  assert.ok(resident > fileMB * 0.8, `loaded ${resident.toFixed(1)} MB for a ${fileMB.toFixed(1)} MB file`);
  await a.sleep();
  assert.deepEqual(runtime.loadedModels(), [big], "still used by b");
  await b.sleep();
  assert.deepEqual(runtime.loadedModels(), []);
  const freed = r1 - rssMB();
  // The first load also pays one-time llama.cpp allocations that stay; the model's own footprint
  // (its weights, ~the file size) must come back.
  assert.ok(freed >= fileMB * 0.9, `freed ${freed.toFixed(1)} MB of ${resident.toFixed(1)} MB loaded, model file ${fileMB.toFixed(1)} MB`);
  // Wake again: works and generates.
  await a.wake();
  const out = await a.generate("abc", { maxTokens: 5 });
  assert.ok(out.tokens >= 4 && out.text.length > 0, JSON.stringify(out));
  await a.sleep();
});

test("memory reserve: wake fails below it, and LRU idle agents sleep first to make room", async () => {
  // A fake free-memory reading: 1200 MB minus 200 MB per loaded model (needs 200 MB each).
  let base = 1000;
  const pool = new AgentPool(runtime, { memoryReserveMB: 900, sleepAfterMs: 3_600_000, logger: silentLogger, freeMemMB: () => base - 200 * runtime.loadedModels().length, modelNeedMB: () => 200 });
  const a = new Agent(genome("mem-a", tinyA, ["x"]), await verifyModelFile(tinyA), runtime);
  const b = new Agent(genome("mem-b", tinyB, ["x"]), await verifyModelFile(tinyB), runtime);
  pool.add(a);
  pool.add(b);
  await pool.start();
  try {
    await assert.rejects(pool.ensureAwake(a), (err: unknown) => err instanceof ColonyError && err.code === "MEMORY_RESERVE");
    assert.equal(a.state, "asleep");
    base = 1200;
    await pool.ensureAwake(a);
    assert.equal(a.state, "awake");
    // Waking b would leave 800 < 900: a (idle, least recently used) sleeps first.
    assert.equal(pool.reclaimableMB(b), 200);
    await pool.ensureAwake(b);
    assert.equal(a.state, "asleep");
    assert.equal(b.state, "awake");
    assert.deepEqual(runtime.loadedModels(), [tinyB]);
  } finally {
    await pool.close();
  }
});

test("a chat-style agent answers through the model's chat template; a completion agent uses its prompt template", async () => {
  const { meta } = await import("../../gguf/meta.ts");
  const { Rng } = await import("../../common/random.ts");
  const { exportModelGguf } = await import("../../trainer/gguf-export.ts");
  const { LlamaModel } = await import("../../trainer/model.ts");
  const { Tokenizer } = await import("../../trainer/tokenizer.ts");
  const tok = Tokenizer.fromTexts(["abcdefghijklmnopqrstuvwxyz0123456789 :=\n"]);
  const model = LlamaModel.init({ vocabSize: tok.vocabSize, dim: 32, nLayers: 1, nHeads: 4, nKvHeads: 4, ffnDim: 64, contextLength: 512, normEps: 1e-5, ropeTheta: 10000 }, new Rng(3));
  const file = path.join(dir, "chat.gguf");
  const template = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
  await exportModelGguf(model, tok, file, { name: "chat", extraMetadata: [["tokenizer.chat_template", meta.str(template)]] });
  const chat = new Agent(genome("chat-1", file, ["qa"], { kind: "chat", systemPrompt: "be brief" }), await verifyModelFile(file), runtime);
  try {
    const r = await chat.generate("hello", { maxTokens: 6 });
    assert.ok(r.tokens >= 1 && r.tokens <= 6, JSON.stringify(r));
    assert.equal(chat.state, "awake");
  } finally {
    await chat.sleep();
  }
  const comp = new Agent(genome("comp-1", file, ["qa"], { promptTemplate: "q: {prompt} a:" }), await verifyModelFile(file), runtime);
  try {
    const r = await comp.generate("hello", { maxTokens: 6 });
    assert.ok(r.tokens >= 1, JSON.stringify(r));
  } finally {
    await comp.sleep();
  }
  assert.deepEqual(runtime.loadedModels(), []);
});
