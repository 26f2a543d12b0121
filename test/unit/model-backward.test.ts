// Gradients of LlamaModel.forwardBackward against central finite differences of the loss, for every
// parameter kind, with packing (two sequences), masks, and the KL distillation term.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import type { LlamaConfig } from "../../trainer/llama/config.ts";
import { createGrads, LlamaModel, zeroGrads, type BatchItem } from "../../trainer/model.ts";

const config: LlamaConfig = { vocabSize: 23, dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 12, contextLength: 16, normEps: 1e-5, ropeTheta: 10000 };

function makeModel(seed: string): LlamaModel {
  const m = LlamaModel.init(config, new Rng(seed));
  // Non-trivial norm weights, so their gradients are not symmetric around 1.
  const rng = new Rng(seed + "-norms");
  for (const [name, w] of m.params) if (name.includes("norm")) for (let i = 0; i < w.length; i++) w[i] = 1 + rng.normal(0, 0.3);
  return m;
}

function softmaxRows(logits: Float32Array, V: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let o = 0; o < logits.length; o += V) {
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[o + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[o + j]! - max);
    for (let j = 0; j < V; j++) out[o + j] = Math.exp(logits[o + j]! - max) / s;
  }
  return out;
}

function makeBatch(softWeight: number): BatchItem[] {
  const rng = new Rng("batch");
  const seq = (n: number) => Array.from({ length: n }, () => rng.int(0, config.vocabSize - 1));
  const a = seq(7);
  const b = seq(5);
  // A "teacher": another random model's distribution over the same sequence.
  const teacher = LlamaModel.init(config, new Rng("teacher"));
  return [
    { tokens: a, targets: [...a.slice(1), 2], mask: [0, 0, 1, 1, 1, 1, 1] },
    { tokens: b, targets: [...b.slice(1), 2], softTargets: softmaxRows(teacher.forward(b), config.vocabSize), softWeight },
  ];
}

/** Checks analytic gradients of chosen entries of every tensor against central differences. */
function gradCheck(model: LlamaModel, batch: BatchItem[]): { worst: number; checked: number } {
  const grads = createGrads(model);
  model.forwardBackward(batch, grads);
  const lossOf = () => model.forwardBackward(batch, new Map()).loss;
  const rng = new Rng("pick");
  let worst = 0;
  let checked = 0;
  for (const [name, w] of model.params) {
    const g = grads.get(name)!;
    // The largest gradients (where a wrong formula shows most) plus a few random entries.
    const order = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
    const picks = new Set([...order.slice(0, 3), rng.int(0, g.length - 1), rng.int(0, g.length - 1)]);
    let tensorMax = 0;
    for (const i of g) tensorMax = Math.max(tensorMax, Math.abs(i));
    assert.ok(tensorMax > 1e-4, `${name}: gradient is (near) zero everywhere`);
    for (const i of picks) {
      const orig = w[i]!;
      const h = 1e-2;
      w[i] = orig + h;
      const up = lossOf();
      w[i] = orig - h;
      const down = lossOf();
      w[i] = orig;
      const fd = (up - down) / (2 * h);
      // float32 activations: absolute noise ~1e-5 in fd; relative error of a correct gradient < 1%.
      const err = Math.abs(fd - g[i]!) / (Math.abs(fd) + Math.abs(g[i]!) + 1e-3);
      worst = Math.max(worst, err);
      assert.ok(err < 2e-2, `${name}[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
      checked++;
    }
  }
  return { worst, checked };
}

test("gradients match finite differences for every tensor (cross-entropy + KL, packed, masked)", () => {
  const model = makeModel("grad");
  const kinds = new Set([...model.params.keys()].map((n) => n.replace(/^blk\.\d+\./, "")));
  assert.equal(kinds.size, 12, [...kinds].join(","));
  const { checked } = gradCheck(model, makeBatch(0.3));
  assert.ok(checked >= 5 * model.params.size - 10);
});

test("KL-only distillation gradients match finite differences", () => {
  const model = makeModel("kl");
  const batch = makeBatch(1).slice(1);
  gradCheck(model, batch);
  // With the student equal to the teacher, KL is 0 and so is its gradient.
  const self = softmaxRows(model.forward(batch[0]!.tokens), config.vocabSize);
  const grads = createGrads(model);
  const r = model.forwardBackward([{ ...batch[0]!, softTargets: self, softWeight: 1 }], grads);
  assert.ok(Math.abs(r.loss) < 1e-5, `KL(self||self) = ${r.loss}`);
  for (const g of grads.values()) for (const v of g) assert.ok(Math.abs(v) < 1e-5);
});

test("loss is the mean over counted positions; gradients accumulate; packing equals separate runs", () => {
  const model = makeModel("acc");
  const batch = makeBatch(0.3);
  const g1 = createGrads(model);
  const r = model.forwardBackward(batch, g1);
  assert.equal(r.count, 5 + 5);
  // Separate runs, each weighted by its share of the counted positions, give the same loss and gradients.
  const g2 = createGrads(model);
  const ra = model.forwardBackward([batch[0]!], g2);
  const gb = createGrads(model);
  const rb = model.forwardBackward([batch[1]!], gb);
  assert.ok(Math.abs(r.loss - (ra.loss * ra.count + rb.loss * rb.count) / r.count) < 1e-6);
  for (const [name, g] of g1) {
    const a = g2.get(name)!;
    const b = gb.get(name)!;
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i]! - (a[i]! * ra.count + b[i]! * rb.count) / r.count) < 1e-6, name);
  }
  // A second call adds the same gradient again; zeroGrads clears.
  const before = Float32Array.from(g1.get("output.weight")!);
  model.forwardBackward(batch, g1);
  const after = g1.get("output.weight")!;
  for (let i = 0; i < before.length; i++) assert.ok(Math.abs(after[i]! - 2 * before[i]!) < 1e-6);
  zeroGrads(g1);
  for (const g of g1.values()) assert.ok(g.every((v) => v === 0));
  // Packed logits equal one-at-a-time logits.
  const [la, lb] = model.forwardMany([batch[0]!.tokens, batch[1]!.tokens]);
  assert.deepEqual(la, model.forward(batch[0]!.tokens));
  assert.deepEqual(lb, model.forward(batch[1]!.tokens));
});

test("a few steps of gradient descent lower the loss; generate() follows the arg-max", () => {
  const model = makeModel("sgd");
  const tokens = [1, 5, 9, 5, 9, 5, 9, 5, 9];
  const batch = [{ tokens: tokens.slice(0, -1), targets: tokens.slice(1) }];
  const grads = createGrads(model);
  const first = model.forwardBackward(batch, grads).loss;
  let last = first;
  for (let step = 0; step < 30; step++) {
    for (const [name, w] of model.params) {
      const g = grads.get(name)!;
      for (let i = 0; i < w.length; i++) w[i]! -= 0.5 * g[i]!;
    }
    zeroGrads(grads);
    last = model.forwardBackward(batch, grads).loss;
  }
  assert.ok(last < first * 0.3, `loss ${first} -> ${last}`);
  const out = model.generate([1, 5, 9], 4);
  assert.deepEqual(out, [5, 9, 5, 9]);
});

test("bad input gets stable codes", () => {
  const model = makeModel("bad");
  const code = (c: string) => (e: unknown) => e instanceof ColonyError && e.code === c;
  assert.throws(() => model.forward([]), code("MODEL_TOKEN_INVALID"));
  assert.throws(() => model.forward([config.vocabSize]), code("MODEL_TOKEN_INVALID"));
  assert.throws(() => model.forward([1.5]), code("MODEL_TOKEN_INVALID"));
  assert.throws(() => model.forward(new Array(config.contextLength + 1).fill(1)), code("MODEL_SEQUENCE_TOO_LONG"));
  const g = createGrads(model);
  assert.throws(() => model.forwardBackward([], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1, 2], targets: [2] }], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1, 2], targets: [2, 99] }], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1, 2], targets: [2, 3], mask: [1, 2] }], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1, 2], targets: [2, 3], softTargets: new Float32Array(3) }], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1], targets: [2], softTargets: new Float32Array(23), softWeight: 2 }], g), code("MODEL_BATCH_INVALID"));
  assert.throws(() => model.forwardBackward([{ tokens: [1], targets: [2] }], new Map([["nope", new Float32Array(1)]])), code("MODEL_PARAMS_INVALID"));
  // Masked-out targets may be anything (e.g. -1 for "none").
  assert.deepEqual(model.forwardBackward([{ tokens: [1, 2], targets: [-1, 3], mask: [0, 1] }], g).count, 1);
  assert.throws(() => LlamaModel.init({ ...config, dim: 10, nHeads: 4 }, new Rng(1)), code("MODEL_CONFIG_INVALID"));
  assert.throws(() => LlamaModel.init({ ...config, nKvHeads: 3 }, new Rng(1)), code("MODEL_CONFIG_INVALID"));
  assert.throws(() => LlamaModel.init({ ...config, nHeads: 8, nKvHeads: 8 }, new Rng(1)), code("MODEL_CONFIG_INVALID")); // head size 1 is odd
  assert.throws(() => new LlamaModel(config, new Map()), code("MODEL_PARAMS_INVALID"));
});

test("KV-cached decoding gives the same logits as the full forward pass (GQA, LoRA)", async () => {
  const { LoraModel } = await import("../../trainer/lora.ts");
  const base = LlamaModel.init({ ...config, nHeads: 4, nKvHeads: 2, dim: 16, contextLength: 12 }, new Rng("kv"));
  const lora = LoraModel.create(base, { rank: 2, targets: "all" }, new Rng("kv-lora"));
  for (const [n, t] of lora.params) if (n.endsWith(".lora_b")) t.fill(0.05);
  for (const m of [base, lora]) {
    const seq = [1, 7, 3, 3, 9];
    const dec = m.decoder(seq.slice(0, 2));
    for (let i = 2; i < seq.length; i++) {
      const step = dec.step(seq[i]!);
      const full = m.forward(seq.slice(0, i + 1));
      const last = full.subarray(i * config.vocabSize);
      let d = 0;
      for (let j = 0; j < config.vocabSize; j++) d = Math.max(d, Math.abs(step[j]! - last[j]!));
      assert.ok(d < 1e-5, `position ${i}: ${d}`);
    }
    // generate() == greedy arg-max over full recomputation, stopping at the context length.
    const out = m.generate([1, 2], 50);
    const ref: number[] = [];
    const s = [1, 2];
    while (ref.length < 50 && s.length <= m.config.contextLength) {
      const l = m.forward(s).subarray((s.length - 1) * config.vocabSize);
      let best = 0;
      for (let j = 1; j < config.vocabSize; j++) if (l[j]! > l[best]!) best = j;
      ref.push(best);
      if (s.length === m.config.contextLength) break;
      s.push(best);
    }
    assert.deepEqual(out, ref);
    assert.equal(out.length, m.config.contextLength - 2 + 1);
  }
});

test("fastExp matches Math.exp to 1e-8 relative over the range the model uses, and at the edges", async () => {
  const { fastExp } = await import("../../trainer/llama/ops.ts");
  const rng = new Rng("exp");
  for (let i = 0; i < 20000; i++) {
    const x = rng.next() * 200 - 150;
    const rel = Math.abs(fastExp(x) - Math.exp(x)) / Math.exp(x);
    assert.ok(rel < 1e-8, `exp(${x}): relative error ${rel}`);
  }
  assert.equal(fastExp(0), 1);
  assert.equal(fastExp(-1e4), 0);
  assert.equal(fastExp(-Infinity), 0);
  assert.equal(fastExp(1e4), Infinity);
  assert.ok(Number.isNaN(fastExp(NaN)));
});
