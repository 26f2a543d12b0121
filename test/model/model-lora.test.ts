// LoRA adapters: llama.cpp applies our exported adapter exactly like our forward pass; adapter gradients
// match finite differences; the base stays frozen.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Llama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { exportModelGguf } from "../../trainer/gguf-export.ts";
import { llamaCppLogits, openLlama } from "../../trainer/llama/llamacpp-logits.ts";
import { exportLoraGguf, loadLoraGguf, LoraModel } from "../../trainer/lora.ts";
import type { LlamaConfig } from "../../trainer/llama/config.ts";
import { createGrads, LlamaModel, zeroGrads } from "../../trainer/model.ts";
import { Tokenizer } from "../../trainer/tokenizer.ts";

const dir = mkdtempSync(path.join(tmpdir(), "colony-model-lora-"));
let llama: Llama;
const tok = Tokenizer.fromTexts(["a lora adapter nudges the base model; tests check it twice.\n"]);

before(async () => {
  llama = await openLlama();
});
after(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Non-zero B so the adapter changes the output (fresh adapters start at B = 0). */
function randomizeB(lora: LoraModel, rng: Rng): void {
  for (const [n, t] of lora.params) if (n.endsWith(".lora_b")) for (let i = 0; i < t.length; i++) t[i] = rng.normal(0, 0.2);
}

const cases: Array<[string, Omit<LlamaConfig, "vocabSize">, Parameters<typeof LoraModel.create>[1]]> = [
  ["q,v rank 4 alpha 8 on GQA", { dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 48, contextLength: 64, normEps: 1e-5, ropeTheta: 10000 }, { rank: 4, alpha: 8 }],
  ["all targets rank 2 alpha 1", { dim: 24, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 40, contextLength: 64, normEps: 1e-5, ropeTheta: 10000 }, { rank: 2, alpha: 1, targets: "all" }],
];

for (const [label, shape, opts] of cases) {
  test(`llama.cpp with our adapter matches our LoRA forward within 1e-4 (${label})`, async () => {
    const base = LlamaModel.init({ ...shape, vocabSize: tok.vocabSize }, new Rng(label));
    const lora = LoraModel.create(base, opts, new Rng(label + "-lora"));
    const ids = tok.encode("the base model nudges a lora; it checks twice", { bos: true });
    assert.equal(maxAbsDiff(lora.forward(ids), base.forward(ids)), 0, "B = 0: a fresh adapter changes nothing");
    randomizeB(lora, new Rng(label + "-b"));
    const slug = label.replace(/\W+/g, "-");
    const baseFile = path.join(dir, `${slug}-base.gguf`);
    const loraFile = path.join(dir, `${slug}-lora.gguf`);
    await exportModelGguf(base, tok, baseFile);
    await exportLoraGguf(lora, base, loraFile);
    const ours = lora.forward(ids);
    assert.ok(maxAbsDiff(ours, base.forward(ids)) > 0.05, "the adapter must change the logits for the test to mean anything");
    const cpp = await llama.loadModel({ modelPath: baseFile });
    try {
      const theirs = await llamaCppLogits(cpp, ids, { threads: 1, lora: [{ filePath: loraFile, scale: 1 }] });
      const diff = maxAbsDiff(ours, theirs);
      assert.ok(diff < 1e-4, `max |ours - llama.cpp+lora| = ${diff}`);
    } finally {
      await cpp.dispose();
    }
    // Reload and merge give the same function.
    const back = await loadLoraGguf(loraFile, base);
    assert.deepEqual([...back.targets].sort(), [...lora.targets].sort());
    assert.ok(maxAbsDiff(back.forward(ids), ours) < 1e-6);
    assert.ok(maxAbsDiff(lora.merge().forward(ids), ours) < 1e-4);
  });
}

test("adapter gradients match finite differences; base weights get none and stay frozen", () => {
  const config: LlamaConfig = { vocabSize: 19, dim: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 12, contextLength: 16, normEps: 1e-5, ropeTheta: 10000 };
  const base = LlamaModel.init(config, new Rng("lora-grad"));
  const snapshot = new Map([...base.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const lora = LoraModel.create(base, { rank: 2, alpha: 4, targets: "all" }, new Rng("lg"));
  randomizeB(lora, new Rng("lgb"));
  const batch = [{ tokens: [1, 4, 7, 3, 9, 2], targets: [4, 7, 3, 9, 2, 5], mask: [0, 1, 1, 1, 1, 1] }];
  const grads = createGrads(lora);
  assert.deepEqual([...grads.keys()].sort(), [...lora.params.keys()].sort());
  assert.ok([...grads.keys()].every((k) => /\.lora_[ab]$/.test(k)));
  lora.forwardBackward(batch, grads);
  const lossOf = () => lora.forwardBackward(batch, new Map()).loss;
  for (const [name, w] of lora.params) {
    const g = grads.get(name)!;
    const order = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
    for (const i of order.slice(0, 3)) {
      const orig = w[i]!;
      w[i] = orig + 1e-2;
      const up = lossOf();
      w[i] = orig - 1e-2;
      const down = lossOf();
      w[i] = orig;
      const fd = (up - down) / 2e-2;
      const err = Math.abs(fd - g[i]!) / (Math.abs(fd) + Math.abs(g[i]!) + 1e-3);
      assert.ok(err < 2e-2, `${name}[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
    }
  }
  // Training steps move the adapters, lower the loss, and never touch the base.
  const first = lossOf();
  for (let step = 0; step < 20; step++) {
    zeroGrads(grads);
    lora.forwardBackward(batch, grads);
    for (const [name, w] of lora.params) {
      const g = grads.get(name)!;
      for (let i = 0; i < w.length; i++) w[i]! -= 0.1 * g[i]!;
    }
  }
  assert.ok(lossOf() < first * 0.8, `loss ${first} -> ${lossOf()}`);
  for (const [k, v] of base.params) assert.deepEqual(v, snapshot.get(k), `${k} changed`);
  // A base-weight gradient buffer is refused: LoRA trains adapters only.
  assert.throws(() => lora.forwardBackward(batch, createGrads(base)), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_PARAMS_INVALID");
});

test("LoRA options are validated", () => {
  const base = LlamaModel.init({ vocabSize: 19, dim: 8, nLayers: 1, nHeads: 2, nKvHeads: 2, ffnDim: 8, contextLength: 8, normEps: 1e-5, ropeTheta: 10000 }, new Rng(1));
  const code = (e: unknown) => e instanceof ColonyError && e.code === "LORA_OPTIONS_INVALID";
  assert.throws(() => LoraModel.create(base, { rank: 0 }, new Rng(1)), code);
  assert.throws(() => LoraModel.create(base, { rank: 2, alpha: -1 }, new Rng(1)), code);
  assert.throws(() => LoraModel.create(base, { rank: 2, targets: ["token_embd" as never] }, new Rng(1)), code);
  assert.throws(() => LoraModel.create(base, { rank: 2, targets: [] }, new Rng(1)), code);
  const l = LoraModel.create(base, { rank: 2 }, new Rng(1));
  assert.deepEqual(l.targets, ["blk.0.attn_q.weight", "blk.0.attn_v.weight"]);
  assert.equal(l.parameterCount, 2 * (2 * 8 + 8 * 2));
});
