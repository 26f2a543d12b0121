/**
 * Training throughput of the whole training step (forward + backward + clipping + AdamW, through
 * trainer/train.ts) against llama.cpp's prompt processing on the same model shape, same thread
 * count. FLOPs use the usual estimates over the linear weights (embedding lookup excluded):
 * training ~6 x params x tokens, prompt processing ~2 x params x tokens. The ratio
 * trainer/llama.cpp says how far the TypeScript trainer is from an optimised C++ forward pass.
 *
 *   npm run bench -- trainer [--dim 256] [--layers 4] [--heads 8] [--kv-heads 4] [--ffn 688]
 *                            [--batch 8] [--seq 128] [--threads 2] [--steps 6] [--reps 20]
 *
 * Last line: one-line JSON summary.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";
import { Rng } from "../common/random.ts";
import { exportModelGguf } from "../trainer/gguf-export.ts";
import { kernelInfo, setKernelThreads } from "../trainer/kernels.ts";
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
    steps: { type: "string", default: "6" },
    reps: { type: "string", default: "20" },
  },
});
const n = (k: keyof typeof values) => Number(values[k]);
const threads = n("threads");
setKernelThreads(threads);

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

// Trainer: one warm-up step (JIT, native kernels), then timed steps.
const steps = n("steps");
await train(model, examples, { steps: 1, batchSize: B, lr: 1e-4, seed: 1, config: { ...config }, progress: false });
const r = await train(model, examples, { steps, batchSize: B, lr: 1e-4, seed: 1, config: { ...config }, progress: false });
const trainTokPerS = r.tokens / r.seconds;
const trainFlops = 6 * linear * trainTokPerS;

// llama.cpp: the same weights exported to GGUF, prompt processing of T-token prompts.
const dir = mkdtempSync(path.join(tmpdir(), "colony-bench-trainer-"));
const file = path.join(dir, "m.gguf");
await exportModelGguf(model, tokenizer, file);
const llama = await getLlama({ gpu: false, build: "never" });
const native = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const ctx = await native.createContext({ contextSize: T, batchSize: T, threads });
const seq = ctx.getSequence();
const prompt = Array.from({ length: T }, () => rng.int(3, config.vocabSize - 1));
await seq.evaluateWithoutGeneratingNewTokens(prompt as never[]);
const reps = n("reps");
const t0 = performance.now();
for (let i = 0; i < reps; i++) {
  await seq.clearHistory();
  await seq.evaluateWithoutGeneratingNewTokens(prompt as never[]);
}
const llamaSeconds = (performance.now() - t0) / 1000;
const llamaTokPerS = (reps * T) / llamaSeconds;
const llamaFlops = 2 * linear * llamaTokPerS;
await ctx.dispose();
await native.dispose();
await llama.dispose();
rmSync(dir, { recursive: true, force: true });

const k = kernelInfo();
const ratio = trainFlops / llamaFlops;
console.log(`model ${(model.parameterCount / 1e6).toFixed(2)}M params (${(linear / 1e6).toFixed(2)}M linear), ${B}x${T} tokens/step, ${threads} threads, kernels ${k.backend}`);
console.log(`trainer   ${trainTokPerS.toFixed(0)} tok/s  ${(trainFlops / 1e9).toFixed(2)} GFLOP/s (6 x linear params x tok/s, step incl. AdamW)`);
console.log(`llama.cpp ${llamaTokPerS.toFixed(0)} tok/s  ${(llamaFlops / 1e9).toFixed(2)} GFLOP/s (2 x linear params x tok/s, prompt processing)`);
console.log(`ratio trainer/llama.cpp ${ratio.toFixed(3)} (target >= 0.25)`);
console.log(
  JSON.stringify({
    bench: "trainer",
    params: model.parameterCount,
    linearParams: linear,
    tokensPerStep: B * T,
    threads,
    backend: k.backend,
    trainTokPerS: Math.round(trainTokPerS),
    trainGflops: +(trainFlops / 1e9).toFixed(3),
    llamaPromptTokPerS: Math.round(llamaTokPerS),
    llamaGflops: +(llamaFlops / 1e9).toFixed(3),
    ratio: +ratio.toFixed(3),
    target: 0.25,
  }),
);
