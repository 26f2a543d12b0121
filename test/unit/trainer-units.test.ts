import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { ColonyError } from "../../common/errors.ts";
import { AdamW } from "../../trainer/optimizer.ts";
import { learningRateAt } from "../../trainer/schedule.ts";
import { clipGlobalNorm, globalNorm } from "../../trainer/clip.ts";
import { BatchSampler, encodePairs, epochPermutation, parseJsonl, readJsonlFile, type TextCodec } from "../../trainer/dataset.ts";
import { ProgressBar, formatDuration } from "../../trainer/progress.ts";
import { assertCheckpointMatches, loadCheckpoint, saveCheckpoint, type Checkpoint } from "../../trainer/checkpoint.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ColonyError, `expected a ColonyError, got ${String(err)}`);
    return err.code;
  }
  assert.fail("expected a throw");
}

test("AdamW: two steps match a hand computation, with decoupled decay only on matrices", () => {
  const params = new Map([["w", new Float32Array([1, -2])], ["attn_norm.weight", new Float32Array([1])]]);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
  const lr = 0.01;
  const grads = new Map([["w", new Float32Array([0.5, -1])], ["attn_norm.weight", new Float32Array([2])]]);
  opt.update(params, grads, lr);
  // Step 1: m = 0.1 g, v = 0.01 g^2; mhat = g, vhat = g^2 -> step = lr * sign(g) (up to eps).
  // w[0] = 1 * (1 - lr*wd) - lr * 0.5/0.5 = 0.999 - 0.01 = 0.989
  assert.ok(Math.abs(params.get("w")![0]! - 0.989) < 1e-6);
  assert.ok(Math.abs(params.get("w")![1]! - (-2 * 0.999 + 0.01)) < 1e-6);
  // The norm gain is not decayed: 1 - 0.01 = 0.99.
  assert.ok(Math.abs(params.get("attn_norm.weight")![0]! - 0.99) < 1e-6);
  // Step 2 with g = 0.5 again for w[0]: m = 0.9*0.05 + 0.05 = 0.095, v = 0.99*0.0025 + 0.0025 = 0.004975
  // mhat = 0.095/0.19 = 0.5, vhat = 0.004975/0.0199 = 0.25 -> update = lr * 0.5/0.5 = lr
  const before = params.get("w")![0]!;
  opt.update(params, grads, lr);
  assert.ok(Math.abs(params.get("w")![0]! - (before * 0.999 - 0.01)) < 1e-6);
  assert.equal(opt.step, 2);
});

test("AdamW: a frozen tensor (no gradient) is left alone", () => {
  const params = new Map([["a", new Float32Array([3])], ["b", new Float32Array([4])]]);
  const opt = new AdamW(params);
  opt.update(params, new Map([["a", new Float32Array([1])]]), 0.1);
  assert.equal(params.get("b")![0], 4);
  assert.notEqual(params.get("a")![0], 3);
});

test("schedule: linear warmup, peak, cosine to minLr at the last step", () => {
  const o = { lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 };
  assert.ok(Math.abs(learningRateAt(0, o) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRateAt(9, o) - 1) < 1e-12);
  assert.ok(Math.abs(learningRateAt(10, o) - 1) < 1e-12);
  assert.ok(Math.abs(learningRateAt(109, o) - 0.1) < 1e-12);
  // Midpoint of the cosine is the mean of peak and floor.
  assert.ok(Math.abs(learningRateAt(10 + 49.5, o) - 0.55) < 1e-9);
  let prev = Infinity;
  for (let s = 10; s < 110; s++) {
    const lr = learningRateAt(s, o);
    assert.ok(lr <= prev + 1e-12);
    prev = lr;
  }
});

test("clipping: global norm over every tensor; only scaled when above the limit", () => {
  const grads = new Map([["a", new Float32Array([3, 0])], ["b", new Float32Array([4])]]);
  assert.equal(globalNorm(grads), 5);
  assert.equal(clipGlobalNorm(grads, 10), 5);
  assert.deepEqual([...grads.get("a")!], [3, 0]);
  assert.equal(clipGlobalNorm(grads, 1), 5);
  assert.ok(Math.abs(globalNorm(grads) - 1) < 1e-6);
  assert.ok(Math.abs(grads.get("a")![0]! - 0.6) < 1e-6);
});

const charCodec: TextCodec = { encode: (s) => [...s].map((c) => c.charCodeAt(0)), bosId: 1, eosId: 2 };

test("dataset: malformed lines fail with stable codes that name the line", () => {
  assert.equal(codeOf(() => parseJsonl("")), "TRAIN_DATASET_EMPTY");
  assert.equal(codeOf(() => parseJsonl("\n  \n")), "TRAIN_DATASET_EMPTY");
  const notJson = '{"prompt":"a","completion":"b"}\n{"prompt": oops}\n';
  assert.equal(codeOf(() => parseJsonl(notJson)), "TRAIN_DATASET_LINE_NOT_JSON");
  assert.throws(() => parseJsonl(notJson, "f.jsonl"), /f\.jsonl:2/);
  assert.equal(codeOf(() => parseJsonl("[1,2]")), "TRAIN_DATASET_LINE_INVALID");
  assert.equal(codeOf(() => parseJsonl('{"prompt":1,"completion":"x"}')), "TRAIN_DATASET_LINE_INVALID");
  assert.equal(codeOf(() => parseJsonl('{"prompt":"x","completion":""}')), "TRAIN_DATASET_LINE_INVALID");
  assert.equal(codeOf(() => parseJsonl('{"prompt":"x"}')), "TRAIN_DATASET_LINE_INVALID");
  assert.equal(codeOf(() => readJsonlFile("/nonexistent/colony.jsonl")), "TRAIN_DATASET_UNREADABLE");
  const ok = parseJsonl('\n{"prompt":"ab","completion":"c"}\r\n{"prompt":"","completion":"xy"}\n');
  assert.deepEqual(ok.map((p) => p.line), [2, 3]);
});

test("dataset: loss mask covers the completion and EOS only; too-long examples are refused", () => {
  const [ex] = encodePairs([{ prompt: "ab", completion: "cd", line: 1 }], charCodec, 16);
  // seq = BOS a b c d EOS ; tokens = BOS a b c d ; targets = a b c d EOS
  assert.deepEqual(ex!.tokens, [1, 97, 98, 99, 100]);
  assert.deepEqual(ex!.targets, [97, 98, 99, 100, 2]);
  assert.deepEqual([...ex!.mask], [0, 0, 1, 1, 1]);
  // 6 tokens need 5 context positions.
  assert.doesNotThrow(() => encodePairs([{ prompt: "ab", completion: "cd", line: 1 }], charCodec, 5));
  const err = (() => {
    try {
      encodePairs([{ prompt: "ab", completion: "cd", line: 7 }], charCodec, 4);
    } catch (e) {
      return e as ColonyError;
    }
  })();
  assert.equal(err?.code, "TRAIN_EXAMPLE_TOO_LONG");
  assert.match(err!.message, /line 7/);
});

test("dataset: seeded shuffle is a permutation, reproducible, different per epoch and seed", () => {
  const p = epochPermutation(50, 7, 0);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(p, epochPermutation(50, 7, 0));
  assert.notDeepEqual(p, epochPermutation(50, 7, 1));
  assert.notDeepEqual(p, epochPermutation(50, 8, 0));
  const examples = encodePairs(Array.from({ length: 5 }, (_, i) => ({ prompt: "p", completion: String(i), line: i + 1 })), charCodec, 8);
  const a = new BatchSampler(examples, 3, 1);
  const seen = [...a.next(), ...a.next()].map((e) => e.line);
  // First epoch's five examples all appear in the first two batches (the sixth starts epoch 1).
  assert.equal(new Set(seen.slice(0, 5)).size, 5);
  // Resuming from a saved position yields the same batches as continuing.
  const pos = { ...a.position };
  const cont = a.next().map((e) => e.line);
  const resumed = new BatchSampler(examples, 3, 1, pos).next().map((e) => e.line);
  assert.deepEqual(resumed, cont);
});

test("progress: silent unless TTY or forced; renders step, loss, tok/s, ETA", () => {
  let out = "";
  const sink = new Writable({ write(chunk, _e, cb) { out += chunk.toString(); cb(); } });
  const quiet = new ProgressBar({ totalSteps: 10, stream: sink });
  quiet.update(1, 2.5, 100);
  quiet.done();
  assert.equal(out, "");
  let t = 0;
  const bar = new ProgressBar({ totalSteps: 4, stream: sink, force: true, now: () => t, intervalMs: 0 });
  t = 1000;
  bar.update(1, 2.5, 100);
  assert.match(out, /step 1\/4 loss 2\.5000 100 tok\/s ETA 0:03/);
  bar.done();
  assert.ok(out.endsWith("\n"));
  assert.equal(formatDuration(3725), "1:02:05");
});

test("checkpoint: round trip; corrupt, truncated and mismatched files are refused", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "colony-ckpt-"));
  try {
    const file = path.join(dir, "a.ckpt");
    const ck: Checkpoint = {
      step: 3, optimizerStep: 3, config: { dim: 8 }, train: { seed: 1 }, sampler: { epoch: 1, cursor: 2 }, rng: { s: [1, 2] },
      params: new Map([["x", new Float32Array([1, 2, 3])], ["y", new Float32Array([4])]]),
      m: new Map([["x", new Float32Array([0.1, 0.2, 0.3])], ["y", new Float32Array([0.4])]]),
      v: new Map([["x", new Float32Array([1e-3, 2e-3, 3e-3])], ["y", new Float32Array([4e-3])]]),
    };
    saveCheckpoint(file, ck);
    const back = loadCheckpoint(file);
    assert.equal(back.step, 3);
    assert.deepEqual(back.sampler, { epoch: 1, cursor: 2 });
    assert.deepEqual(back.rng, { s: [1, 2] });
    assert.deepEqual(back.params.get("x"), ck.params.get("x"));
    assert.deepEqual(back.v.get("y"), ck.v.get("y"));
    assertCheckpointMatches(file, back, ck.params);
    assert.equal(codeOf(() => assertCheckpointMatches(file, back, new Map([["x", new Float32Array(3)]]))), "TRAIN_CHECKPOINT_INVALID");
    assert.equal(codeOf(() => assertCheckpointMatches(file, back, new Map([["x", new Float32Array(2)], ["y", new Float32Array(1)]]))), "TRAIN_CHECKPOINT_INVALID");

    const bytes = readFileSync(file);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 0xff;
    writeFileSync(file, flipped);
    assert.equal(codeOf(() => loadCheckpoint(file)), "TRAIN_CHECKPOINT_INVALID");
    writeFileSync(file, bytes.subarray(0, bytes.length - 4));
    assert.equal(codeOf(() => loadCheckpoint(file)), "TRAIN_CHECKPOINT_INVALID");
    writeFileSync(file, Buffer.from("GGUF not a checkpoint"));
    assert.equal(codeOf(() => loadCheckpoint(file)), "TRAIN_CHECKPOINT_INVALID");
    assert.equal(codeOf(() => loadCheckpoint(path.join(dir, "missing.ckpt"))), "TRAIN_CHECKPOINT_UNREADABLE");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
