// gemmBatch (strided batched products) against a triple loop written from the definition, on
// attention-shaped batches (per-head slices, GQA, transposed operands), on both the entry-parallel
// and the split-product paths of the native backend, plus its bounds checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gemmBatch, kernelsFor, setKernelBackend, setKernelThreads, type GemmBatch, type KernelBackend } from "../../trainer/kernels.ts";
import { checkGemmBatch } from "../../trainer/kernels/gemm-batch.ts";
import { loadNativeKernels } from "../../trainer/kernels/native.ts";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function naive(s: GemmBatch): Float32Array {
  const c = s.c.slice();
  for (let e = 0; e < s.aOffsets.length; e++) {
    for (let m = 0; m < s.M; m++) {
      for (let n = 0; n < s.N; n++) {
        let sum = 0;
        for (let k = 0; k < s.K; k++) sum += s.a[s.aOffsets[e]! + m * s.aRowStride + k * s.aColStride]! * s.b[s.bOffsets[e]! + k * s.bRowStride + n * s.bColStride]!;
        const i = s.cOffsets[e]! + m * s.cRowStride + n;
        c[i] = (s.accumulate ? c[i]! : 0) + (s.alpha ?? 1) * sum;
      }
    }
  }
  return c;
}

function check(backend: KernelBackend, spec: GemmBatch, what: string): void {
  const want = naive(spec);
  const k = kernelsFor(backend);
  const got = { ...spec, c: spec.c.slice() };
  k.gemmBatch(got, checkGemmBatch(got));
  const tol = 4e-5 * Math.sqrt(spec.K + 1);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got.c[i]! - want[i]!);
    if (!(d <= tol * (1 + Math.abs(want[i]!)))) assert.fail(`${backend} ${what}: c[${i}] = ${got.c[i]}, want ${want[i]}`);
  }
}

// Packed rows of T tokens with H query heads and KV kv-heads of size hd, like trainer/llama/ops.ts.
function attentionCases(T: number, H: number, KV: number, hd: number): [string, GemmBatch][] {
  const qw = H * hd, kw = KV * hd, group = H / KV;
  const q = rand(T * qw, 1), kk = rand(T * kw, 2), v = rand(T * kw, 3), dOut = rand(T * qw, 4);
  const heads = [...Array(H).keys()];
  const probs = rand(H * T * T, 5);
  const tag = `T=${T} H=${H} KV=${KV} hd=${hd}`;
  return [
    // scores_h = Q_h · K_khᵀ / √hd  (B read transposed: row stride 1, column stride kw)
    [`${tag} scores`, { M: T, N: T, K: hd, a: q, aRowStride: qw, aColStride: 1, b: kk, bRowStride: 1, bColStride: kw, c: rand(H * T * T, 6), cRowStride: T,
      aOffsets: heads.map((h) => h * hd), bOffsets: heads.map((h) => Math.floor(h / group) * hd), cOffsets: heads.map((h) => h * T * T), alpha: 1 / Math.sqrt(hd) }],
    // out_h = P_h · V_kh, written into the head's columns of the packed output
    [`${tag} P·V`, { M: T, N: hd, K: T, a: probs, aRowStride: T, aColStride: 1, b: v, bRowStride: kw, bColStride: 1, c: rand(T * qw, 7), cRowStride: qw,
      aOffsets: heads.map((h) => h * T * T), bOffsets: heads.map((h) => Math.floor(h / group) * hd), cOffsets: heads.map((h) => h * hd) }],
    // dV_h += P_hᵀ · dOut_h  (A read transposed), one kv head per query head group entry
    [`${tag} Pᵀ·dOut`, { M: T, N: hd, K: T, a: probs, aRowStride: 1, aColStride: T, b: dOut, bRowStride: qw, bColStride: 1, c: rand(T * qw, 8), cRowStride: qw,
      aOffsets: heads.map((h) => h * T * T), bOffsets: heads.map((h) => h * hd), cOffsets: heads.map((h) => h * hd), accumulate: true }],
  ];
}

const native = loadNativeKernels();

test("gemmBatch matches the definition on attention-shaped batches (js, wasm, native)", () => {
  const cases = [...attentionCases(1, 2, 1, 4), ...attentionCases(13, 4, 2, 8), ...attentionCases(200, 8, 2, 32), ...attentionCases(129, 3, 3, 17)];
  for (const [what, spec] of cases) check("js", spec, what);
  for (const [what, spec] of cases) check("wasm", spec, what);
  if (!native.ok) return;
  try {
    for (const threads of [1, 2, 3]) {
      setKernelThreads(threads);
      for (const [what, spec] of cases) check("native", spec, `${what} threads=${threads}`);
    }
  } finally {
    setKernelThreads(2);
  }
});

test("gemmBatch: one big product (split inside), empty batch, K=0 overwrite", () => {
  const M = 150, N = 301, K = 277;
  const big: GemmBatch = { M, N, K, a: rand(M * K, 1), aRowStride: K, aColStride: 1, b: rand(K * N, 2), bRowStride: N, bColStride: 1,
    c: rand(M * N, 3), cRowStride: N, aOffsets: [0], bOffsets: [0], cOffsets: [0], accumulate: true, alpha: -0.5 };
  const zeroK: GemmBatch = { ...big, K: 0, accumulate: false };
  const none: GemmBatch = { ...big, aOffsets: [], bOffsets: [], cOffsets: [] };
  for (const b of ["js", "wasm", "native"] as const) {
    if (b === "native" && !native.ok) continue;
    check(b, big, "big");
    check(b, zeroK, "K=0");
    check(b, none, "empty batch");
  }
  setKernelBackend("auto");
  const c = new Float32Array(4).fill(9);
  gemmBatch({ M: 2, N: 2, K: 1, a: Float32Array.of(1, 2), aRowStride: 1, aColStride: 1, b: Float32Array.of(3, 4), bRowStride: 2, bColStride: 1, c, cRowStride: 2, aOffsets: [0], bOffsets: [0], cOffsets: [0] });
  assert.deepEqual([...c], [3, 4, 6, 8]);
});

test("gemmBatch rejects operands that run past their arrays, and bad sizes", () => {
  const is = (err: unknown) => (err as { code?: string }).code === "KERNEL_SHAPE_INVALID";
  const base: GemmBatch = { M: 2, N: 2, K: 2, a: new Float32Array(4), aRowStride: 2, aColStride: 1, b: new Float32Array(4), bRowStride: 2, bColStride: 1,
    c: new Float32Array(4), cRowStride: 2, aOffsets: [0], bOffsets: [0], cOffsets: [0] };
  assert.doesNotThrow(() => gemmBatch(base));
  assert.throws(() => gemmBatch({ ...base, aOffsets: [1] }), is);
  assert.throws(() => gemmBatch({ ...base, cOffsets: [-1] }), is);
  assert.throws(() => gemmBatch({ ...base, bColStride: 3 }), is);
  assert.throws(() => gemmBatch({ ...base, cRowStride: 1 }), is);
  assert.throws(() => gemmBatch({ ...base, M: 2.5 }), is);
  assert.throws(() => gemmBatch({ ...base, bOffsets: [0, 0] }), is);
  assert.throws(() => gemmBatch({ ...base, alpha: NaN }), is);
});
