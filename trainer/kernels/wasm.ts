/**
 * WebAssembly SIMD kernels: the fallback for machines where the native kernels cannot be built
 * (no C++ compiler), still several times faster than plain JS because each instruction does four
 * multiply-adds. Node 20 runs 128-bit WASM SIMD on x86-64 (SSE) and aarch64 (NEON) alike.
 *
 * There is no WASM toolchain in this project, so the module is emitted here byte by byte: one
 * function, a 4×8 register-blocked micro-kernel over packed panels, C[Mp,Np] += Ap·Bp. JS does
 * the rest: it packs A into 4-row panels and B into 8-column panels (which absorbs every stride,
 * transposition and ragged edge, zero padding the rest) in WASM memory, runs the kernel, and
 * copies the valid part of C back. Packing is O(M·K + K·N), the product O(M·N·K).
 */

// ---- a tiny WASM emitter: just the opcodes the kernel needs ----
const I32 = 0x7f, V128 = 0x7b;
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, "utf8")];

const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32c = (n: number) => [0x41, ...sleb(n)];
const add = [0x6a], mul = [0x6c], sub = [0x6b], ltU = [0x49], shl = [0x74];
const f32load = (off: number) => [0x2a, 2, ...uleb(off)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const v128load = (off: number) => [...simd(0x00), 4, ...uleb(off)];
const v128store = (off: number) => [...simd(0x0b), 4, ...uleb(off)];
const v128zero = [...simd(0x0c), ...new Array(16).fill(0)];
const splat = simd(0x13), fadd = simd(0xe4), fmul = simd(0xe6);
const loop = (body: number[]) => [0x03, 0x40, ...body, 0x0b];

// kernel(mPanels, nPanels, K, A, B, C, ldcBytes): for every 8-column panel j of Bp and 4-row panel
// i of Ap, C[4i.., 8j..] += Ap_i · Bp_j. Ap_i is [K][4] floats, Bp_j is [K][8]. All counts >= 1.
function kernelModule(): Uint8Array<ArrayBuffer> {
  const [mP, nP, K, A, B, C, ldc] = [0, 1, 2, 3, 4, 5, 6];
  const [i, j, k, ap, bp, cp] = [7, 8, 9, 10, 11, 12];
  const acc = (n: number) => 13 + n; // 8 accumulators
  const b0 = 21, b1 = 22, x = 23;
  const rowStep = (r: number) => [
    ...get(ap), ...f32load(4 * r), ...splat, ...set(x),
    ...get(acc(2 * r)), ...get(x), ...get(b0), ...fmul, ...fadd, ...set(acc(2 * r)),
    ...get(acc(2 * r + 1)), ...get(x), ...get(b1), ...fmul, ...fadd, ...set(acc(2 * r + 1)),
  ];
  const storeRow = (r: number) => [
    ...get(cp), ...get(cp), ...v128load(0), ...get(acc(2 * r)), ...fadd, ...v128store(0),
    ...get(cp), ...get(cp), ...v128load(16), ...get(acc(2 * r + 1)), ...fadd, ...v128store(16),
    ...get(cp), ...get(ldc), ...add, ...set(cp),
  ];
  const kLoop = loop([
    ...get(bp), ...v128load(0), ...set(b0),
    ...get(bp), ...v128load(16), ...set(b1),
    ...rowStep(0), ...rowStep(1), ...rowStep(2), ...rowStep(3),
    ...get(ap), ...i32c(16), ...add, ...set(ap),
    ...get(bp), ...i32c(32), ...add, ...set(bp),
    ...get(k), ...i32c(1), ...sub, ...set(k),
    ...get(k), 0x0d, 0, // br_if 0: loop while k != 0
  ]);
  const iLoop = loop([
    ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((n) => [...v128zero, ...set(acc(n))]),
    ...get(A), ...get(i), ...get(K), ...mul, ...i32c(4), ...shl, ...add, ...set(ap), // A + i·K·16
    ...get(B), ...get(j), ...get(K), ...mul, ...i32c(5), ...shl, ...add, ...set(bp), // B + j·K·32
    ...get(K), ...set(k),
    ...kLoop,
    // cp = C + i·4·ldc + j·32
    ...get(C), ...get(i), ...get(ldc), ...mul, ...i32c(2), ...shl, ...add, ...get(j), ...i32c(5), ...shl, ...add, ...set(cp),
    ...storeRow(0), ...storeRow(1), ...storeRow(2), ...storeRow(3),
    ...get(i), ...i32c(1), ...add, ...set(i),
    ...get(i), ...get(mP), ...ltU, 0x0d, 0,
  ]);
  const jLoop = loop([...i32c(0), ...set(i), ...iLoop, ...get(j), ...i32c(1), ...add, ...set(j), ...get(j), ...get(nP), ...ltU, 0x0d, 0]);
  const locals = vec([[6, I32], [11, V128]]); // i j k ap bp cp; acc0-7 b0 b1 x
  const body = [...locals, ...jLoop, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec(new Array(7).fill([I32])), 0x00]])),
    ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0x00]])),
    ...section(7, vec([[...str("kernel"), 0x00, 0x00]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

// ---- the JS side: pack, run, unpack ----

interface Operand {
  p: Float32Array;
  off: number;
  rs: number;
  cs: number;
}

export interface WasmKernels {
  /** C(m, n) = alpha·Σ_k A(m,k)·B(k,n) (+ C(m, n) when accumulate); C row stride ldc, column stride 1. */
  gemm(M: number, N: number, K: number, A: Operand, B: Operand, C: Float32Array, cOff: number, ldc: number, alpha: number, accumulate: boolean): void;
}

export type WasmLoad = { ok: true; kernels: WasmKernels } | { ok: false; reason: string };

let cached: WasmLoad | undefined;

export function loadWasmKernels(): WasmLoad {
  if (cached) return cached;
  try {
    const bytes = kernelModule();
    if (!WebAssembly.validate(bytes)) return (cached = { ok: false, reason: "this runtime rejects the WASM SIMD module" });
    const mem = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
    const kernel = inst.exports.kernel as (mP: number, nP: number, K: number, a: number, b: number, c: number, ldc: number) => void;
    const kernels = makeGemm(mem, kernel);
    warmUp(kernels);
    cached = { ok: true, kernels };
  } catch (err) {
    cached = { ok: false, reason: `WASM SIMD unavailable: ${(err as Error).message}` };
  }
  return cached;
}

/**
 * V8 first runs WASM through its baseline compiler and moves a function to the optimizing one only
 * after it has run for a while; the baseline kernel is ~10x slower. A few small products at load
 * (about 10 ms) get the tier-up done before the trainer's first real step.
 */
function warmUp(k: WasmKernels): void {
  const M = 16, N = 64, K = 256;
  const a = new Float32Array(M * K).fill(0.5), b = new Float32Array(K * N).fill(0.25), c = new Float32Array(M * N);
  for (let r = 0; r < WARM_UP_CALLS; r++) k.gemm(M, N, K, { p: a, off: 0, rs: K, cs: 1 }, { p: b, off: 0, rs: N, cs: 1 }, c, 0, N, 1, false);
}
const WARM_UP_CALLS = 40;

// K is cut into blocks so that a 4-row A panel and an 8-column B panel stay in L1/L2 per pass.
const KB = 256;

function makeGemm(mem: WebAssembly.Memory, kernel: (mP: number, nP: number, K: number, a: number, b: number, c: number, ldc: number) => void): WasmKernels {
  let f32 = new Float32Array(mem.buffer);
  function ensure(floats: number): void {
    const bytes = floats * 4;
    if (bytes > mem.buffer.byteLength) {
      mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / 65536));
      f32 = new Float32Array(mem.buffer);
    }
  }
  return {
    gemm(M, N, K, A, B, C, cOff, ldc, alpha, accumulate) {
      if (M === 0 || N === 0) return;
      const Mp = (M + 3) & ~3, Np = (N + 7) & ~7;
      const kb = Math.min(KB, Math.max(K, 1));
      // layout (floats): Ap [Mp·kb] | Bp [Np·kb] | Cp [Mp·Np]
      const aBase = 0, bBase = Mp * kb, cBase = bBase + Np * kb;
      ensure(cBase + Mp * Np);
      f32.fill(0, cBase, cBase + Mp * Np);
      for (let k0 = 0; k0 < K; k0 += kb) {
        const kc = Math.min(kb, K - k0);
        // Ap[i/4][k][i%4] = alpha·A(i, k0+k), rows past M are zero (alpha folded in here: free)
        for (let i = 0; i < Mp; i++) {
          const base = aBase + (i >> 2) * kc * 4 + (i & 3);
          if (i >= M) {
            for (let k = 0; k < kc; k++) f32[base + 4 * k] = 0;
            continue;
          }
          let src = A.off + i * A.rs + k0 * A.cs;
          for (let k = 0; k < kc; k++, src += A.cs) f32[base + 4 * k] = alpha * A.p[src]!;
        }
        // Bp[j/8][k][j%8] = B(k0+k, j), columns past N are zero
        for (let j = 0; j < Np; j++) {
          const base = bBase + (j >> 3) * kc * 8 + (j & 7);
          if (j >= N) {
            for (let k = 0; k < kc; k++) f32[base + 8 * k] = 0;
            continue;
          }
          let src = B.off + j * B.cs + k0 * B.rs;
          for (let k = 0; k < kc; k++, src += B.rs) f32[base + 8 * k] = B.p[src]!;
        }
        kernel(Mp >> 2, Np >> 3, kc, aBase * 4, bBase * 4, cBase * 4, Np * 4);
      }
      for (let i = 0; i < M; i++) {
        const d = cOff + i * ldc, s = cBase + i * Np;
        if (accumulate) for (let j = 0; j < N; j++) C[d + j] = C[d + j]! + f32[s + j]!;
        else C.set(f32.subarray(s, s + N), d);
      }
    },
  };
}
