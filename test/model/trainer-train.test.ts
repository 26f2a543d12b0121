import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Rng } from "../../common/random.ts";
import { ColonyError } from "../../common/errors.ts";
import type { LlamaConfig } from "../../trainer/llama/config.ts";
import { LlamaModel } from "../../trainer/model.ts";
import { Tokenizer } from "../../trainer/tokenizer.ts";
import { encodePairs, parseJsonl } from "../../trainer/dataset.ts";
import { train, type TrainOptions } from "../../trainer/train.ts";

// A tiny task the model can learn in a few dozen steps: map a letter to the next letter.
const lines = "abcdefghij".split("").map((c, i) => JSON.stringify({ prompt: `next ${c} =`, completion: ` ${"bcdefghijk"[i]}` }));
const pairs = parseJsonl(lines.join("\n"));
const tokenizer = Tokenizer.fromTexts(pairs.flatMap((p) => [p.prompt, p.completion]));
const config: LlamaConfig = { vocabSize: tokenizer.vocabSize, dim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 32, contextLength: 16, normEps: 1e-5, ropeTheta: 10000 };
const examples = encodePairs(pairs, tokenizer, config.contextLength);

function fresh(seed: number): LlamaModel {
  return LlamaModel.init(config, new Rng(seed));
}
function opts(extra: Partial<TrainOptions> = {}): TrainOptions {
  return { steps: 40, batchSize: 4, lr: 1e-2, seed: 5, config: { ...config }, progress: false, ...extra };
}
function sameParams(a: LlamaModel, b: LlamaModel): boolean {
  for (const [name, p] of a.params) {
    const q = b.params.get(name)!;
    if (Buffer.compare(Buffer.from(p.buffer, p.byteOffset, p.byteLength), Buffer.from(q.buffer, q.byteOffset, q.byteLength)) !== 0) return false;
  }
  return true;
}

test("training a tiny model on a tiny dataset lowers the loss", async () => {
  const model = fresh(5);
  const r = await train(model, examples, opts({ steps: 60 }));
  const first = r.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = r.losses.slice(-5).reduce((a, b) => a + b) / 5;
  assert.equal(r.step, 60);
  assert.ok(last < first * 0.5, `loss went from ${first} to ${last}`);
});

test("same seed gives bitwise identical parameters; another data seed does not", async () => {
  const a = fresh(5);
  const b = fresh(5);
  await train(a, examples, opts({ steps: 15 }));
  await train(b, examples, opts({ steps: 15 }));
  assert.ok(sameParams(a, b));
  const c = fresh(5);
  await train(c, examples, opts({ steps: 15, seed: 6 }));
  assert.ok(!sameParams(a, c));
});

test("resume from a checkpoint equals an uninterrupted run", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "colony-train-"));
  try {
    const ckpt = path.join(dir, "run.ckpt");
    const whole = fresh(5);
    await train(whole, examples, opts({ steps: 20 }));

    const first = fresh(5);
    const r1 = await train(first, examples, opts({ steps: 20, stopAfter: 9, checkpointPath: ckpt, checkpointEvery: 4 }));
    assert.equal(r1.step, 9);
    // A different init proves the weights come from the checkpoint, not from the seed.
    const second = fresh(99);
    const r2 = await train(second, examples, opts({ steps: 20, resumeFrom: ckpt }));
    assert.equal(r2.step, 20);
    assert.equal(r2.losses.length, 11);
    assert.ok(sameParams(whole, second));

    // Resuming with other settings is refused with a stable code.
    await assert.rejects(train(fresh(5), examples, opts({ steps: 20, lr: 2e-2, resumeFrom: ckpt })), (e: unknown) => e instanceof ColonyError && e.code === "TRAIN_CHECKPOINT_INVALID");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad options and a diverging loss fail with TRAIN_* codes", async () => {
  await assert.rejects(train(fresh(5), examples, opts({ steps: 0 })), (e: unknown) => e instanceof ColonyError && e.code === "TRAIN_OPTIONS_INVALID");
  await assert.rejects(train(fresh(5), examples, opts({ batchSize: 1.5 })), (e: unknown) => e instanceof ColonyError && e.code === "TRAIN_OPTIONS_INVALID");
  const broken = fresh(5);
  broken.params.get("output.weight")!.fill(Number.NaN);
  await assert.rejects(train(broken, examples, opts({ steps: 3 })), (e: unknown) => e instanceof ColonyError && e.code === "TRAIN_LOSS_NOT_FINITE");
});
