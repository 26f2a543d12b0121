/**
 * Training throughput of the whole training step (forward + backward + clipping + AdamW, through
 * trainer/train.ts) against llama.cpp doing the same work as the step's forward pass, on the same
 * weights (exported to GGUF) and the same thread count.
 *
 * Same batch shape: llama.cpp gets one batch of B sequences x T tokens (8 x 128) with logits for
 * every token, as the trainer's forward pass computes them: B sequences of one context
 * (`sequences: B`, `contextSize: T + 1` each, so no context shift: node-llama-cpp shifts when a
 * sequence reaches contextSize - 1 tokens) evaluated together with `controlledEvaluate` and
 * `generateNext.logits` on every token, which node-llama-cpp batches into ONE llama_decode of
 * B x T tokens, B x T of them with outputs. The bench checks this on every rep (it counts the
 * decode calls and the tokens and outputs put into each batch) and fails if it did anything else.
 *
 * Credit for the work done: llama.cpp is timed inside its decode call (the forward pass, final norm
 * and output matrix for every token; not node-llama-cpp's per-token readout of the logits into JS
 * Maps, which is reported beside it as `llamaWallMs`). FLOPs use the usual estimates over the
 * linear weights (output matrix included, embedding lookup and attention excluded on both sides):
 * training ~6 x params x tokens, a forward pass ~2 x params x tokens. The ratio trainer/llama.cpp
 * says how far the TypeScript trainer is from an optimised C++ forward pass.
 *
 * The two sides alternate in rounds (a trainer run of --steps steps, then --reps llama.cpp
 * batches) after one warm-up of each, so that load from other processes hits both alike; the
 * figures are medians per step / per batch over all rounds (the first timed step after the warm-up
 * is slower than the rest, so one step is not a measurement).
 *
 *   npm run bench -- trainer [--dim 256] [--layers 4] [--heads 8] [--kv-heads 4] [--ffn 688]
 *                            [--batch 8] [--seq 128] [--threads 2] [--steps 3] [--reps 4] [--rounds 4]
 *
 * Last line: one-line JSON summary.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { ControlledEvaluateInputItem, LlamaContext, Token } from "node-llama-cpp";
import { Rng } from "../common/random.ts";
import { exportModelGguf } from "../trainer/gguf-export.ts";
import { kernelInfo, setKernelThreads } from "../trainer/kernels.ts";
import { openLlama } from "../trainer/llama/llamacpp-logits.ts";
import { LlamaModel } from "../trainer/model.ts";
import { Tokenizer } from "../trainer/tokenizer.ts";
import { train, type TrainExample } from "../trainer/train.ts";

const { values } = parseArgs({
  options: {
    dim: { type: "string", default: "256" },
    layers: { type: "string", default: "4" },
    heads: { type: "string", default: "8" },
    "kv-heads": { type: "string", default: "4" },
    ffn: { type: "string", default: "688" },
    batch: { type: "string", default: "8" },
    seq: { type: "string", default: "128" },
    threads: { type: "string", default: "2" },
    steps: { type: "string", default: "3" },
    reps: { type: "string", default: "4" },
    rounds: { type: "string", default: "4" },
  },
});
const n = (k: keyof typeof values) => Number(values[k]);
const threads = n("threads");
setKernelThreads(threads);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// 61 printable characters + 259 fixed tokens = a 320-token vocabulary.
const chars = Array.from({ length: 61 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
const tokenizer = Tokenizer.fromTexts([chars]);
const T = n("seq");
const B = n("batch");
const config = { vocabSize: tokenizer.vocabSize, dim: n("dim"), nLayers: n("layers"), nHeads: n("heads"), nKvHeads: n("kv-heads"), ffnDim: n("ffn"), contextLength: T, normEps: 1e-5, ropeTheta: 10000 };
const model = LlamaModel.init(config, new Rng("bench-trainer"));
let linear = 0;
for (const [name, w] of model.params) if (!name.includes("norm") && name !== "token_embd.weight") linear += w.length;

const rng = new Rng("bench-trainer-data");
const examples: TrainExample[] = Array.from({ length: B * 4 }, (_, i) => {
  const toks = Array.from({ length: T + 1 }, () => rng.int(3, config.vocabSize - 1));
  return { tokens: toks.slice(0, T), targets: toks.slice(1), mask: new Array<number>(T).fill(1), line: i + 1 };
});

// ---- trainer: per-step times from train()'s onStep ----------------------------------------------
const trainStepMs: number[] = [];
async function trainerRound(steps: number, record: boolean): Promise<void> {
  let last = performance.now();
  await train(model, examples, {
    steps, batchSize: B, lr: 1e-4, seed: 1, config: { ...config }, progress: false,
    onStep: ({ tokens }) => {
      const now = performance.now();
      if (tokens !== B * T) throw new Error(`a training step processed ${tokens} tokens, expected ${B * T}`);
      if (record) trainStepMs.push(now - last);
      last = now;
    },
  });
}

// ---- llama.cpp: the same weights, one B x T batch with logits for every token ----------------------
const dir = mkdtempSync(path.join(os.tmpdir(), "colony-bench-trainer-"));
const file = path.join(dir, "m.gguf");
await exportModelGguf(model, tokenizer, file);
const llama = await openLlama();
const cppModel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const ctx = await cppModel.createContext({ sequences: B, contextSize: T + 1, batchSize: B * T, threads });
const seqs = Array.from({ length: B }, () => ctx.getSequence());
const prompts = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(3, config.vocabSize - 1)));
const inputs = prompts.map((p) => p.map((t): ControlledEvaluateInputItem => [t as Token, { generateNext: { logits: true } }]));

/**
 * What node-llama-cpp asks of llama.cpp, seen at its native binding (node-llama-cpp 3.22.1,
 * LlamaContext.js `decodeTokenBatchItems`): initBatch(n), addToBatch(seq, pos, tokens, logitIndexes)
 * per sequence, decodeBatch(). The bench times decodeBatch and counts what went into each batch.
 */
interface NativeContext {
  addToBatch(sequenceId: number, firstTokenIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  getThreads(): number;
}
const native = (ctx as unknown as { _ctx?: NativeContext })._ctx;
if (!native || typeof native.decodeBatch !== "function" || typeof native.addToBatch !== "function") {
  throw new Error("node-llama-cpp's LlamaContext has no _ctx.decodeBatch/addToBatch: the bench's instrumentation needs updating for this version");
}
const meter = { decodes: 0, tokens: 0, outputs: 0, decodeMs: 0 };
const addToBatch = native.addToBatch.bind(native);
const decodeBatch = native.decodeBatch.bind(native);
// The binding's methods are read-only on its prototype: own properties shadow them.
Object.defineProperty(native, "addToBatch", {
  value: (seqId: number, first: number, tokens: Uint32Array, logitIndexes: Uint32Array) => {
    meter.tokens += tokens.length;
    meter.outputs += logitIndexes.length;
    return addToBatch(seqId, first, tokens, logitIndexes);
  },
});
Object.defineProperty(native, "decodeBatch", {
  value: async () => {
    const t0 = performance.now();
    await decodeBatch();
    meter.decodeMs += performance.now() - t0;
    meter.decodes++;
  },
});

const llamaDecodeMs: number[] = [];
const llamaWallMs: number[] = [];
async function llamaBatch(record: boolean): Promise<void> {
  await Promise.all(seqs.map((s) => s.clearHistory()));
  Object.assign(meter, { decodes: 0, tokens: 0, outputs: 0, decodeMs: 0 });
  const t0 = performance.now();
  const res = await Promise.all(seqs.map((s, b) => s.controlledEvaluate(inputs[b]!)));
  const wall = performance.now() - t0;
  if (meter.decodes !== 1 || meter.tokens !== B * T || meter.outputs !== B * T || res.some((r) => r.length !== T || r.some((x) => !x?.next.logits))) {
    throw new Error(`llama.cpp did other work than one ${B}x${T} batch with all logits: ${JSON.stringify(meter)}`);
  }
  if (record) {
    llamaDecodeMs.push(meter.decodeMs);
    llamaWallMs.push(wall);
  }
}

// ---- alternate rounds after one warm-up of each ----------------------------------------------------
const rounds = n("rounds");
const steps = n("steps");
const reps = n("reps");
await trainerRound(1, false);
await llamaBatch(false);
const load0 = os.loadavg()[0]!;
for (let r = 0; r < rounds; r++) {
  await trainerRound(steps, true);
  for (let i = 0; i < reps; i++) await llamaBatch(true);
}
const load1 = os.loadavg()[0]!;
const cppThreads = native.getThreads();
await ctx.dispose();
await cppModel.dispose();
await llama.dispose();
rmSync(dir, { recursive: true, force: true });

const tokens = B * T;
const trainTokPerS = tokens / (median(trainStepMs) / 1000);
const llamaTokPerS = tokens / (median(llamaDecodeMs) / 1000);
const llamaWallTokPerS = tokens / (median(llamaWallMs) / 1000);
const trainFlops = 6 * linear * trainTokPerS;
const llamaFlops = 2 * linear * llamaTokPerS;
const ratio = trainFlops / llamaFlops;
const ms = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" ");
const k = kernelInfo();
console.log(`model ${(model.parameterCount / 1e6).toFixed(2)}M params (${(linear / 1e6).toFixed(2)}M linear), ${B}x${T} tokens per step and per llama.cpp batch, ${threads} threads (llama.cpp ${cppThreads}), kernels ${k.backend}, load ${load0.toFixed(1)} -> ${load1.toFixed(1)}`);
console.log(`trainer step ms:        ${ms(trainStepMs)}`);
console.log(`llama.cpp decode ms:    ${ms(llamaDecodeMs)}   (wall incl. node-llama-cpp's logits readout: ${ms(llamaWallMs)})`);
console.log(`trainer   ${trainTokPerS.toFixed(0)} tok/s  ${(trainFlops / 1e9).toFixed(2)} GFLOP/s (6 x linear params x tok/s, step incl. AdamW)`);
console.log(`llama.cpp ${llamaTokPerS.toFixed(0)} tok/s  ${(llamaFlops / 1e9).toFixed(2)} GFLOP/s (2 x linear params x tok/s, one ${B}x${T} decode, all logits)`);
console.log(`ratio trainer/llama.cpp ${ratio.toFixed(3)} (target >= 0.25)`);
console.log(
  JSON.stringify({
    bench: "trainer",
    params: model.parameterCount,
    linearParams: linear,
    tokensPerStep: tokens,
    batchShape: [B, T],
    threads,
    llamaThreads: cppThreads,
    backend: k.backend,
    trainStepMsMedian: +median(trainStepMs).toFixed(1),
    llamaDecodeMsMedian: +median(llamaDecodeMs).toFixed(1),
    llamaWallMsMedian: +median(llamaWallMs).toFixed(1),
    trainTokPerS: Math.round(trainTokPerS),
    trainGflops: +(trainFlops / 1e9).toFixed(3),
    llamaTokPerS: Math.round(llamaTokPerS),
    llamaWallTokPerS: Math.round(llamaWallTokPerS),
    llamaGflops: +(llamaFlops / 1e9).toFixed(3),
    ratio: +ratio.toFixed(3),
    target: 0.25,
    timedSteps: trainStepMs.length,
    timedBatches: llamaDecodeMs.length,
    loadavg1: [+load0.toFixed(1), +load1.toFixed(1)],
  }),
);
