// Our TypeScript forward pass vs the real llama.cpp (node-llama-cpp) on the GGUF files we export.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Llama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { exportModelGguf, loadModelGguf } from "../../trainer/gguf-export.ts";
import { llamaCppLogits, openLlama } from "../../trainer/llama/llamacpp-logits.ts";
import type { LlamaConfig } from "../../trainer/llama/config.ts";
import { LlamaModel } from "../../trainer/model.ts";
import { BYTE_BASE, FIRST_CHAR_ID, Tokenizer } from "../../trainer/tokenizer.ts";

const dir = mkdtempSync(path.join(tmpdir(), "colony-model-parity-"));
let llama: Llama;
const tok = Tokenizer.fromTexts(["the cat sat on the mat, and the dog barked at 3 birds!\n"]);
const text = "the dog sat on the cat; 3 birds barked at the mat and the cat sat";

before(async () => {
  llama = await openLlama();
});
after(async () => {
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const shapes: Array<[string, Omit<LlamaConfig, "vocabSize">]> = [
  ["multi-head", { dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 4, ffnDim: 64, contextLength: 128, normEps: 1e-5, ropeTheta: 10000 }],
  ["grouped-query 8/2", { dim: 64, nLayers: 2, nHeads: 8, nKvHeads: 2, ffnDim: 96, contextLength: 128, normEps: 1e-6, ropeTheta: 500000 }],
  ["multi-query 4/1, 3 layers", { dim: 48, nLayers: 3, nHeads: 4, nKvHeads: 1, ffnDim: 40, contextLength: 96, normEps: 1e-5, ropeTheta: 10000 }],
];

for (const [label, shape] of shapes) {
  test(`forward matches llama.cpp within 1e-4 (${label})`, async () => {
    const model = LlamaModel.init({ ...shape, vocabSize: tok.vocabSize }, new Rng(label));
    const file = path.join(dir, `${label.replace(/\W+/g, "-")}.gguf`);
    await exportModelGguf(model, tok, file, { name: label });
    const ids = tok.encode(text, { bos: true });
    assert.ok(ids.length > 60, "long enough to exercise RoPE at later positions");
    const ours = model.forward(ids);
    const cpp = await llama.loadModel({ modelPath: file });
    try {
      const theirs = await llamaCppLogits(cpp, ids, { threads: 1 });
      const diff = maxAbsDiff(ours, theirs);
      assert.ok(diff < 1e-4, `max |ours - llama.cpp| = ${diff}`);
      // The logits are not trivially small: the comparison is meaningful.
      let spread = 0;
      for (let i = 0; i < ours.length; i++) spread = Math.max(spread, Math.abs(ours[i]!));
      assert.ok(spread > 0.5, `logit scale ${spread}`);
      assert.equal(cpp.trainContextSize, shape.contextLength);
      assert.equal(cpp.fileInfo.metadata.general.architecture, "llama");
    } finally {
      await cpp.dispose();
    }
    // The loader reads back exactly the model we wrote.
    const back = await loadModelGguf(file);
    // normEps travels as float32, so it comes back rounded; everything else is exact.
    assert.deepEqual({ ...back.model.config, normEps: 0 }, { ...model.config, normEps: 0 });
    assert.equal(back.model.config.normEps, Math.fround(model.config.normEps));
    assert.deepEqual(back.tokenizer.tokens, tok.tokens);
    assert.ok(maxAbsDiff(back.model.forward(ids), ours) < 1e-6);
  });
}

test("F16 export: weights within half precision; llama.cpp agrees within 5e-3 (it rounds activations to F16 too)", async () => {
  const model = LlamaModel.init(
    { vocabSize: tok.vocabSize, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 48, contextLength: 64, normEps: 1e-5, ropeTheta: 10000 },
    new Rng("f16"),
  );
  const file = path.join(dir, "f16.gguf");
  await exportModelGguf(model, tok, file, { dtype: "f16" });
  const { model: back } = await loadModelGguf(file);
  for (const [name, w] of model.params) {
    const d = maxAbsDiff(w, back.params.get(name)!);
    assert.ok(d < 2e-3 * 4, `${name}: ${d}`);
  }
  const ids = tok.encode("the cat sat on the mat", { bos: true });
  const cpp = await llama.loadModel({ modelPath: file });
  try {
    const theirs = await llamaCppLogits(cpp, ids, { threads: 1 });
    const diff = maxAbsDiff(back.forward(ids), theirs);
    // ggml's F16 matmul converts the activations to F16 before the dot product (measured ~1e-3 here),
    // which an F32 forward pass cannot reproduce exactly; the F32 export is the exact path.
    assert.ok(diff < 5e-3, `F16: max |ours - llama.cpp| = ${diff}`);
  } finally {
    await cpp.dispose();
  }
});

test("greedy generation: node-llama-cpp's LlamaCompletion (BOS added by llama.cpp) == model.generate", async () => {
  const { LlamaCompletion } = await import("node-llama-cpp");
  const model = LlamaModel.init(
    { vocabSize: tok.vocabSize, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 48, contextLength: 64, normEps: 1e-5, ropeTheta: 10000 },
    new Rng("generate"),
  );
  const file = path.join(dir, "generate.gguf");
  await exportModelGguf(model, tok, file);
  const cpp = await llama.loadModel({ modelPath: file });
  const ctx = await cpp.createContext({ contextSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
  try {
    const completion = new LlamaCompletion({ contextSequence: ctx.getSequence() });
    for (const prompt of ["the cat", "3 birds and"]) {
      const theirs: number[] = [];
      // Compare token ids. A random model emits many byte tokens, and node-llama-cpp holds back a
      // trailing run that is not complete UTF-8, so its list may stop a few tokens short of ours.
      await completion.generateCompletion(prompt, { maxTokens: 24, temperature: 0, onToken: (t) => theirs.push(...(t as number[])) });
      const ours = model.generate(tok.encode(prompt, { bos: true }), 24, tok.eosId);
      assert.equal(ours.length, 24);
      assert.ok(theirs.length >= 12, `llama.cpp produced only ${theirs.length} tokens`);
      assert.deepEqual(ours.slice(0, theirs.length), theirs, `prompt ${JSON.stringify(prompt)}`);
      for (const t of ours.slice(theirs.length)) assert.ok(t >= BYTE_BASE && t < FIRST_CHAR_ID, "only a held-back byte run may be missing");
    }
  } finally {
    await ctx.dispose();
    await cpp.dispose();
  }
});

test("loadModelGguf rejects what is not a Colony llama model", async () => {
  const { writeFile } = await import("node:fs/promises");
  const bad = path.join(dir, "bad.gguf");
  await writeFile(bad, Buffer.from("GGUF\x03\x00\x00\x00truncated"));
  await assert.rejects(loadModelGguf(bad), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_GGUF_INVALID");
  await assert.rejects(loadModelGguf(path.join(dir, "missing.gguf")), (e: unknown) => e instanceof ColonyError && e.code === "MODEL_GGUF_INVALID");
});
