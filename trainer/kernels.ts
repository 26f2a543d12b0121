/**
 * Dense kernels for the trainer. Every matrix is a row-major Float32Array.
 * Weights are stored like llama.cpp stores them: W is [out, in] (row = one output unit).
 *
 * The three exported products dispatch to a backend chosen once per process:
 * - "native": a packed SIMD GEMM in C++ (native/kernels/gemm.h + binding.cc), compiled for this CPU on first
 *   use and split over `setKernelThreads(n)` threads (default: all cores);
 * - "wasm": WebAssembly SIMD (trainer/kernels/wasm.ts), the fallback where no C++ compiler exists;
 * - "js": register-blocked pure JS (trainer/kernels/js.ts), the last resort;
 * - "reference": the plain loops that define the semantics (trainer/kernels/reference.ts).
 * "auto" (the default, or COLONY_KERNELS=auto; the variables are read in trainer/kernels/config.ts) takes native when it builds and passes its self-test,
 * else wasm when the runtime has WASM SIMD, else js. Faster backends match the reference to float rounding (test/kernels-*.test.ts); they sum
 * in another order, and they do not skip zero gradients, so a NaN/Inf in W propagates even where dy
 * is 0. Outputs must not alias inputs. See docs/kernels.md.
 */
import { ColonyError } from "../common/errors.ts";
import { KERNEL_BACKENDS, kernelsEnv, threadsProblem, type KernelBackend } from "./kernels/config.ts";
import { KernelErrors } from "./kernels/errors.ts";
import { checkGemmBatch, jsGemmBatch, type GemmBatch } from "./kernels/gemm-batch.ts";
import { jsMatmulDyTX, jsMatmulDyW, jsMatmulXWt } from "./kernels/js.ts";
import { loadNativeKernels } from "./kernels/native.ts";
import { loadWasmKernels } from "./kernels/wasm.ts";
import { refMatmulDyTX, refMatmulDyW, refMatmulXWt } from "./kernels/reference.ts";

export type { KernelBackend } from "./kernels/config.ts";
export type { GemmBatch } from "./kernels/gemm-batch.ts";

type Kernel = (out: Float32Array, a: Float32Array, b: Float32Array, T: number, inDim: number, outDim: number) => void;

/** The three products of one backend, without shape checks (callers of `kernelsFor` check). */
export interface KernelSet {
  backend: KernelBackend;
  matmulXWt: Kernel;
  matmulDyW: Kernel;
  matmulDyTX: Kernel;
  /** `offsets` = checkGemmBatch(spec): [aOff, bOff, cOff] per product. */
  gemmBatch: (spec: GemmBatch, offsets: Int32Array) => void;
}

export interface KernelInfo {
  backend: KernelBackend;
  threads: number;
  /** Native only: the instruction set the compiler targeted, e.g. "avx2 lanes=8 mr=6 nr=16". */
  isa?: string;
  /** Why "auto" fell back from native (to wasm or js), when it did. */
  fallbackReason?: string;
}

// COLONY_KERNEL_THREADS or all cores (kernels/config.ts), until setKernelThreads.
let threads = kernelsEnv().threads;
let active: KernelSet | undefined;
let info: KernelInfo | undefined;

/** Threads the native backend splits each product over (wasm, js and reference are single-threaded). */
export function setKernelThreads(n: number): void {
  const problem = threadsProblem(n, "kernel threads");
  if (problem !== undefined) throw new ColonyError(KernelErrors.KERNEL_OPTIONS_INVALID, problem);
  threads = n;
  if (info) info.threads = n;
}

/** The kernels of one backend; throws KERNEL_BACKEND_UNAVAILABLE for native or wasm when it cannot load. */
export function kernelsFor(backend: KernelBackend): KernelSet {
  if (backend === "reference") return { backend, matmulXWt: refMatmulXWt, matmulDyW: refMatmulDyW, matmulDyTX: refMatmulDyTX, gemmBatch: jsGemmBatch };
  if (backend === "js") return { backend, matmulXWt: jsMatmulXWt, matmulDyW: jsMatmulDyW, matmulDyTX: jsMatmulDyTX, gemmBatch: jsGemmBatch };
  if (backend === "wasm") {
    const r = loadWasmKernels();
    if (!r.ok) throw new ColonyError(KernelErrors.KERNEL_BACKEND_UNAVAILABLE, r.reason);
    const g = r.kernels.gemm;
    return {
      backend,
      // the same (M, N, K, strides) mapping as native/kernels/binding.cc
      // With fewer than 4 rows (decoding) packing all of W costs more than the product: plain JS.
      matmulXWt: (y, x, w, T, i, o) => (T < 4 ? jsMatmulXWt(y, x, w, T, i, o) : g(T, o, i, { p: x, off: 0, rs: i, cs: 1 }, { p: w, off: 0, rs: 1, cs: i }, y, 0, o, 1, false)),
      matmulDyW: (dx, dy, w, T, i, o) => (T < 4 ? jsMatmulDyW(dx, dy, w, T, i, o) : g(T, i, o, { p: dy, off: 0, rs: o, cs: 1 }, { p: w, off: 0, rs: i, cs: 1 }, dx, 0, i, 1, true)),
      matmulDyTX: (dw, dy, x, T, i, o) => g(o, i, T, { p: dy, off: 0, rs: 1, cs: o }, { p: x, off: 0, rs: i, cs: 1 }, dw, 0, i, 1, true),
      gemmBatch: (s, offs) => {
        for (let e = 0; e < offs.length / 3; e++) {
          g(s.M, s.N, s.K, { p: s.a, off: offs[3 * e]!, rs: s.aRowStride, cs: s.aColStride }, { p: s.b, off: offs[3 * e + 1]!, rs: s.bRowStride, cs: s.bColStride },
            s.c, offs[3 * e + 2]!, s.cRowStride, s.alpha ?? 1, s.accumulate ?? false);
        }
      },
    };
  }
  if (backend === "native") {
    const r = loadNativeKernels();
    if (!r.ok) throw new ColonyError(KernelErrors.KERNEL_BACKEND_UNAVAILABLE, r.reason);
    const k = r.kernels;
    // `threads` is read at call time so setKernelThreads applies to an already chosen backend.
    return {
      backend,
      matmulXWt: (y, x, w, T, i, o) => k.matmulXWt(y, x, w, T, i, o, threads),
      matmulDyW: (dx, dy, w, T, i, o) => k.matmulDyW(dx, dy, w, T, i, o, threads),
      matmulDyTX: (dw, dy, x, T, i, o) => k.matmulDyTX(dw, dy, x, T, i, o, threads),
      gemmBatch: (s, offs) => {
        const dims = Int32Array.of(s.M, s.N, s.K, s.aRowStride, s.aColStride, s.bRowStride, s.bColStride, s.cRowStride, s.accumulate ? 1 : 0, threads);
        k.gemmBatch(s.c, s.a, s.b, offs, dims, s.alpha ?? 1);
      },
    };
  }
  throw new ColonyError(KernelErrors.KERNEL_OPTIONS_INVALID, `unknown kernel backend ${JSON.stringify(backend)} (expected one of ${KERNEL_BACKENDS.join(", ")})`);
}

/** Chooses the backend for this process ("auto" = native if it loads, else wasm, else js) and returns what was chosen. */
export function setKernelBackend(name: KernelBackend | "auto"): KernelInfo {
  if (!(KERNEL_BACKENDS as readonly string[]).includes(name)) {
    throw new ColonyError(KernelErrors.KERNEL_OPTIONS_INVALID, `unknown kernel backend ${JSON.stringify(name)} (expected one of ${KERNEL_BACKENDS.join(", ")})`);
  }
  let fallbackReason: string | undefined;
  if (name === "auto") {
    const r = loadNativeKernels();
    if (r.ok) name = "native";
    else {
      const w = loadWasmKernels();
      name = w.ok ? "wasm" : "js";
      fallbackReason = w.ok ? r.reason : `${r.reason}; ${w.reason}`;
    }
  }
  active = kernelsFor(name);
  const n = name === "native" ? loadNativeKernels() : undefined;
  info = { backend: name, threads };
  if (n?.ok) info.isa = n.kernels.isa;
  if (fallbackReason !== undefined) info.fallbackReason = fallbackReason;
  return { ...info };
}

/** The backend in use (choosing it now from COLONY_KERNELS if no product ran yet). */
export function kernelInfo(): KernelInfo {
  if (!info) init();
  return { ...info! };
}

function init(): KernelSet {
  setKernelBackend(kernelsEnv().backend);
  return active!;
}

function checkShape(name: string, out: Float32Array, outLen: number, a: Float32Array, aLen: number, b: Float32Array, bLen: number, T: number, inDim: number, outDim: number): void {
  if (!Number.isInteger(T) || !Number.isInteger(inDim) || !Number.isInteger(outDim) || T < 0 || inDim < 0 || outDim < 0 || T * Math.max(inDim, outDim) > 0x7fffffff || outDim * inDim > 0x7fffffff) {
    throw new ColonyError(KernelErrors.KERNEL_SHAPE_INVALID, `${name}: sizes must be non-negative integers, got T=${T} in=${inDim} out=${outDim}`);
  }
  if (!(out instanceof Float32Array) || !(a instanceof Float32Array) || !(b instanceof Float32Array)) {
    throw new ColonyError(KernelErrors.KERNEL_SHAPE_INVALID, `${name}: every operand must be a Float32Array`);
  }
  if (out.length < outLen || a.length < aLen || b.length < bLen) {
    throw new ColonyError(
      KernelErrors.KERNEL_SHAPE_INVALID,
      `${name}: arrays too short for T=${T} in=${inDim} out=${outDim} (need ${outLen}/${aLen}/${bLen}, got ${out.length}/${a.length}/${b.length})`,
    );
  }
}

/** y[T,out] = x[T,in] · W[out,in]^T  (y is overwritten). */
export function matmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  checkShape("matmulXWt", y, T * outDim, x, T * inDim, w, outDim * inDim, T, inDim, outDim);
  (active ?? init()).matmulXWt(y, x, w, T, inDim, outDim);
}

/** dx[T,in] += dy[T,out] · W[out,in]. */
export function matmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  checkShape("matmulDyW", dx, T * inDim, dy, T * outDim, w, outDim * inDim, T, inDim, outDim);
  (active ?? init()).matmulDyW(dx, dy, w, T, inDim, outDim);
}

/** dW[out,in] += dy[T,out]^T · x[T,in]. */
export function matmulDyTX(dw: Float32Array, dy: Float32Array, x: Float32Array, T: number, inDim: number, outDim: number): void {
  checkShape("matmulDyTX", dw, outDim * inDim, dy, T * outDim, x, T * inDim, T, inDim, outDim);
  (active ?? init()).matmulDyTX(dw, dy, x, T, inDim, outDim);
}

/**
 * C_e = alpha·A_e·B_e (+ C_e) for a batch of equal-shaped strided products (trainer/kernels/gemm-batch.ts),
 * e.g. attention scores for every head: A = Q's head slice, B = K's head slice read transposed.
 */
export function gemmBatch(spec: GemmBatch): void {
  const offs = checkGemmBatch(spec);
  (active ?? init()).gemmBatch(spec, offs);
}
