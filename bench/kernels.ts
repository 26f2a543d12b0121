/**
 * GFLOP/s of the trainer's three dense kernels, per backend, on shapes of a few-million-parameter
 * llama (T tokens per batch, dim, ffn, vocab). Backends run side by side in one process so the
 * ratios hold even when the shared CPU is noisy.
 *
 *   npm run bench -- kernels [--threads N] [--backends native,wasm,js,reference] [--min-ms 300] [--llama]
 *
 * --llama also times llama.cpp's prompt processing (F32 weights, T=256, 2·params·T FLOP) on two
 * model shapes at 1 and N threads, for scale: that is the figure the trainer is compared with.
 *
 * Prints one line per (shape, kernel, backend), then a one-line JSON summary: per backend the
 * FLOP-weighted GFLOP/s over all cases, and the speed-up of each backend over the reference.
 */
import { parseArgs } from "node:util";
import { kernelsFor, setKernelThreads, type GemmBatch, type KernelBackend, type KernelSet } from "../trainer/kernels.ts";
import { checkGemmBatch } from "../trainer/kernels/gemm-batch.ts";
import { loadNativeKernels } from "../trainer/kernels/native.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    backends: { type: "string", default: "native,wasm,js,reference" },
    "min-ms": { type: "string", default: "300" },
    llama: { type: "boolean", default: false },
  },
});
const threads = Number(values.threads);
setKernelThreads(threads);
const minMs = Number(values["min-ms"]);

const native = loadNativeKernels();
const backends = values.backends!.split(",").filter((b) => b !== "native" || native.ok) as KernelBackend[];
if (!native.ok) console.log(`native kernels unavailable: ${native.reason}`);
else console.log(`native: ${native.kernels.isa}, threads ${threads}`);
const sets = new Map<KernelBackend, KernelSet>(backends.map((b) => [b, kernelsFor(b)]));

// [label, T, in, out] for the products of one layer and the output head.
const shapes: [string, number, number, number][] = [
  ["attn q  T64  256->256", 64, 256, 256],
  ["ffn up  T64  256->768", 64, 256, 768],
  ["ffn dn  T64  768->256", 64, 768, 256],
  ["attn q  T256 512->512", 256, 512, 512],
  ["ffn up  T256 512->1408", 256, 512, 1408],
  ["ffn dn  T256 1408->512", 256, 1408, 512],
  ["head    T256 512->2000", 256, 512, 2000],
  ["head    T128 256->320", 128, 256, 320],
  ["decode  T1   512->1408", 1, 512, 1408],
];

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function time(fn: () => void, flops: number): number {
  fn(); // warm-up (JIT, page faults)
  let reps = 0;
  const t0 = performance.now();
  let el = 0;
  do {
    fn();
    reps++;
    el = performance.now() - t0;
  } while (el < minMs);
  return (flops * reps) / (el / 1000) / 1e9;
}

const totals = new Map<string, { flops: number; seconds: number }>();
const cases: Record<string, number | string>[] = [];
for (const [label, T, I, O] of shapes) {
  const x = rand(T * I, 1), w = rand(O * I, 2), dy = rand(T * O, 3);
  const y = new Float32Array(T * O), dx = new Float32Array(T * I), dw = new Float32Array(O * I);
  const flops = 2 * T * I * O;
  for (const kernel of ["matmulXWt", "matmulDyW", "matmulDyTX"] as const) {
    const row: Record<string, number | string> = { shape: label, kernel };
    for (const [b, k] of sets) {
      const run = kernel === "matmulXWt" ? () => k.matmulXWt(y, x, w, T, I, O) : kernel === "matmulDyW" ? () => k.matmulDyW(dx, dy, w, T, I, O) : () => k.matmulDyTX(dw, dy, x, T, I, O);
      const g = time(run, flops);
      row[b] = Number(g.toFixed(2));
      const tot = totals.get(b) ?? { flops: 0, seconds: 0 };
      tot.flops += flops;
      tot.seconds += flops / (g * 1e9);
      totals.set(b, tot);
    }
    cases.push(row);
    console.log(`${label.padEnd(24)} ${kernel.padEnd(11)} ` + backends.map((b) => `${b} ${String(row[b]).padStart(7)} GFLOP/s`).join("   "));
  }
}

// Attention through gemmBatch: scores = Q_h·K_hᵀ and out = P_h·V_h for every head of one sequence.
// Not part of the weighted totals (the layer kernels are); printed for comparison with JS loops.
const attn: Record<string, Record<string, number>> = {};
for (const [T, H, hd] of [[64, 8, 32], [256, 8, 64]] as const) {
  const qw = H * hd;
  const q = rand(T * qw, 1), kk = rand(T * qw, 2), v = rand(T * qw, 3), probs = rand(H * T * T, 4), out = new Float32Array(T * qw), sc = new Float32Array(H * T * T);
  const heads = [...Array(H).keys()];
  const scores: GemmBatch = { M: T, N: T, K: hd, a: q, aRowStride: qw, aColStride: 1, b: kk, bRowStride: 1, bColStride: qw, c: sc, cRowStride: T,
    aOffsets: heads.map((h) => h * hd), bOffsets: heads.map((h) => h * hd), cOffsets: heads.map((h) => h * T * T), alpha: 1 / Math.sqrt(hd) };
  const pv: GemmBatch = { M: T, N: hd, K: T, a: probs, aRowStride: T, aColStride: 1, b: v, bRowStride: qw, bColStride: 1, c: out, cRowStride: qw,
    aOffsets: heads.map((h) => h * T * T), bOffsets: heads.map((h) => h * hd), cOffsets: heads.map((h) => h * hd) };
  const offS = checkGemmBatch(scores), offP = checkGemmBatch(pv);
  const label = `attention T${T} H${H} hd${hd}`;
  const row: Record<string, number> = {};
  for (const [b, k] of sets) {
    if (b === "reference") continue;
    row[b] = Number(time(() => { k.gemmBatch(scores, offS); k.gemmBatch(pv, offP); }, 4 * T * T * hd * H).toFixed(2));
  }
  attn[label] = row;
  console.log(`${label.padEnd(36)} ` + Object.entries(row).map(([b, g]) => `${b} ${String(g).padStart(7)} GFLOP/s`).join("   "));
}

// Weighted like a training step: every case counted once, time-weighted (total flops / total time).
const summary: Record<string, unknown> = { bench: "kernels", threads, isa: native.ok ? native.kernels.isa : null };
const gflops: Record<string, number> = {};
for (const [b, t] of totals) gflops[b] = Number((t.flops / t.seconds / 1e9).toFixed(2));
summary.gflops = gflops;
summary.attentionGemmBatch = attn;
if (gflops.reference) {
  const speedup: Record<string, number> = {};
  for (const b of backends) speedup[b] = Number((gflops[b]! / gflops.reference).toFixed(1));
  summary.speedupVsReference = speedup;
}
if (values.llama) summary.llamaCpp = await llamaCppPromptGflops();
console.log(JSON.stringify(summary));

async function llamaCppPromptGflops(): Promise<Record<string, number>> {
  // Imported here so the kernel benchmark itself does not depend on the model code.
  const { mkdtempSync, rmSync } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const { Rng } = await import("../common/random.ts");
  const { LlamaModel } = await import("../trainer/model.ts");
  const { exportModelGguf } = await import("../trainer/gguf-export.ts");
  const { Tokenizer } = await import("../trainer/tokenizer.ts");
  const { openLlama } = await import("../trainer/llama/llamacpp-logits.ts");
  const tok = Tokenizer.fromTexts(["the cat sat on the mat, and the dog barked at 3 birds!\n"]);
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-bench-"));
  const llama = await openLlama();
  const out: Record<string, number> = {};
  const T = 256;
  try {
    for (const [dim, ffn] of [[256, 688], [512, 1408]] as const) {
      const model = LlamaModel.init({ vocabSize: tok.vocabSize, dim, nLayers: 4, nHeads: 8, nKvHeads: 4, ffnDim: ffn, contextLength: T, normEps: 1e-5, ropeTheta: 10000 }, new Rng("bench"));
      const file = path.join(dir, `m${dim}.gguf`);
      await exportModelGguf(model, tok, file, {});
      const m = await llama.loadModel({ modelPath: file });
      for (const th of [...new Set([1, threads])]) {
        const ctx = await m.createContext({ contextSize: T, batchSize: T, threads: th, flashAttention: false });
        const seq = ctx.getSequence();
        const toks = Array.from({ length: T }, (_, i) => 3 + (i % (tok.vocabSize - 3)));
        let best = Infinity;
        for (let r = 0; r < 5; r++) {
          await seq.clearHistory();
          const t0 = performance.now();
          await seq.evaluateWithoutGeneratingNewTokens(toks as never);
          best = Math.min(best, performance.now() - t0);
        }
        const g = Number(((2 * model.parameterCount * T) / best / 1e6).toFixed(2));
        const label = `dim${dim} ffn${ffn} L4 ${(model.parameterCount / 1e6).toFixed(1)}M T${T} threads${th}`;
        out[label] = g;
        console.log(`llama.cpp prompt ${label.padEnd(40)} ${g} GFLOP/s (best of 5: ${best.toFixed(1)} ms)`);
        await ctx.dispose();
      }
      await m.dispose();
    }
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
