/**
 * Throughput of the TypeScript llama model: forward alone, and forward + backward (one training step's
 * gradient work, no optimizer), on a few-million-parameter shape. Reports tokens/s and achieved GFLOP/s
 * (matmul FLOPs 2*N*P forward, 6*N*P forward+backward, plus causal attention).
 *
 *   npm run bench -- model [--dim 256] [--layers 4] [--heads 8] [--kv-heads 4] [--ffn 688] [--vocab 320]
 *                          [--batch 8] [--seq 128] [--threads 2] [--backend auto] [--min-ms 3000]
 *
 * Last line: one-line JSON summary.
 */
import { parseArgs } from "node:util";
import { Rng } from "../common/random.ts";
import { kernelInfo, setKernelBackend, setKernelThreads, type KernelBackend } from "../trainer/kernels.ts";
import { createGrads, LlamaModel, zeroGrads, type BatchItem } from "../trainer/model.ts";

const { values } = parseArgs({
  options: {
    dim: { type: "string", default: "256" },
    layers: { type: "string", default: "4" },
    heads: { type: "string", default: "8" },
    "kv-heads": { type: "string", default: "4" },
    ffn: { type: "string", default: "688" },
    vocab: { type: "string", default: "320" },
    batch: { type: "string", default: "8" },
    seq: { type: "string", default: "128" },
    threads: { type: "string", default: "2" },
    backend: { type: "string", default: "auto" },
    "min-ms": { type: "string", default: "3000" },
  },
});
const n = (k: keyof typeof values) => Number(values[k]);
setKernelBackend(values.backend as KernelBackend | "auto");
setKernelThreads(n("threads"));
const config = {
  vocabSize: n("vocab"), dim: n("dim"), nLayers: n("layers"), nHeads: n("heads"), nKvHeads: n("kv-heads"),
  ffnDim: n("ffn"), contextLength: n("seq"), normEps: 1e-5, ropeTheta: 10000,
};
const model = LlamaModel.init(config, new Rng("bench"));
const rng = new Rng("bench-data");
const B = n("batch");
const T = n("seq");
const batch: BatchItem[] = Array.from({ length: B }, () => {
  const toks = Array.from({ length: T + 1 }, () => rng.int(3, config.vocabSize - 1));
  return { tokens: toks.slice(0, T), targets: toks.slice(1) };
});
const N = B * T;

// FLOPs: every linear weight is used once per token (2 FLOPs per weight forward, 4 more backward).
let linear = 0;
for (const [name, w] of model.params) if (!name.includes("norm") && name !== "token_embd.weight") linear += w.length;
const hd = config.dim / config.nHeads;
const attnFwd = config.nLayers * B * config.nHeads * hd * T * (T + 1) * 2; // QK^T and PV over the causal half
const flopsFwd = 2 * N * linear + attnFwd;
const flopsFb = 6 * N * linear + 3 * attnFwd;

function time(fn: () => void, minMs: number): number {
  fn(); // warm-up (JIT, native load)
  let runs = 0;
  const t0 = performance.now();
  do {
    fn();
    runs++;
  } while (performance.now() - t0 < minMs);
  return (performance.now() - t0) / runs;
}

const minMs = n("min-ms");
const grads = createGrads(model);
const seqs = batch.map((b) => b.tokens);
const step = () => {
  zeroGrads(grads);
  model.forwardBackward(batch, grads);
};
// Warm both paths first: the first calls load the native kernels and let V8 optimise the loops.
for (let i = 0; i < 2; i++) step();
const fwdMs = time(() => void model.forwardMany(seqs), minMs);
const fbMs = time(step, minMs);
const k = kernelInfo();
console.log(`model ${(model.parameterCount / 1e6).toFixed(2)}M params, ${B}x${T} tokens, kernels ${k.backend} x${k.threads}`);
console.log(`forward          ${fwdMs.toFixed(1)} ms  ${((N / fwdMs) * 1000).toFixed(0)} tok/s  ${(flopsFwd / fwdMs / 1e6).toFixed(2)} GFLOP/s`);
console.log(`forward+backward ${fbMs.toFixed(1)} ms  ${((N / fbMs) * 1000).toFixed(0)} tok/s  ${(flopsFb / fbMs / 1e6).toFixed(2)} GFLOP/s`);
console.log(
  JSON.stringify({
    bench: "model",
    params: model.parameterCount,
    tokens: N,
    backend: k.backend,
    threads: k.threads,
    forwardMs: +fwdMs.toFixed(2),
    forwardTokPerS: Math.round((N / fwdMs) * 1000),
    forwardGflops: +(flopsFwd / fwdMs / 1e6).toFixed(2),
    trainStepMs: +fbMs.toFixed(2),
    trainTokPerS: Math.round((N / fbMs) * 1000),
    trainGflops: +(flopsFb / fbMs / 1e6).toFixed(2),
  }),
);
