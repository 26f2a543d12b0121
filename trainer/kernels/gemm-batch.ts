/**
 * A batch of equal-shaped strided products, C_e = alpha·A_e·B_e (+ C_e), for the small products
 * that do not fit the three layer kernels, above all attention (Q·Kᵀ and P·V per head, and their
 * gradients). Strides let a product read a head's slice of the packed [N, heads·headDim] matrices,
 * or a transposed operand, without copying. One call per layer and sequence keeps the call overhead
 * negligible and lets the native backend spread the heads over threads.
 */
import { ColonyError } from "../../common/errors.ts";
import { KernelErrors } from "./errors.ts";

export interface GemmBatch {
  /** Rows of C and A. */
  M: number;
  /** Columns of C and B. */
  N: number;
  /** Columns of A = rows of B. */
  K: number;
  /** A_e(m, k) = a[aOffsets[e] + m·aRowStride + k·aColStride]. */
  a: Float32Array;
  aRowStride: number;
  aColStride: number;
  /** B_e(k, n) = b[bOffsets[e] + k·bRowStride + n·bColStride]. */
  b: Float32Array;
  bRowStride: number;
  bColStride: number;
  /** C_e(m, n) = c[cOffsets[e] + m·cRowStride + n]. C regions of different entries must not overlap, nor alias A or B. */
  c: Float32Array;
  cRowStride: number;
  /** One offset per product; all three lists have the batch's length. */
  aOffsets: ArrayLike<number>;
  bOffsets: ArrayLike<number>;
  cOffsets: ArrayLike<number>;
  /** Scale of the product (default 1), e.g. 1/√headDim for attention scores. */
  alpha?: number;
  /** Add into C (true) or overwrite it (false, the default). */
  accumulate?: boolean;
}

function bad(msg: string): never {
  throw new ColonyError(KernelErrors.KERNEL_SHAPE_INVALID, `gemmBatch: ${msg}`);
}

function isSize(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0x7fffffff;
}

function fits(off: number, rows: number, cols: number, rs: number, cs: number, len: number): boolean {
  if (!isSize(off)) return false;
  if (rows === 0 || cols === 0) return true;
  return off + (rows - 1) * rs + (cols - 1) * cs < len;
}

/** Checks every size, stride and offset; returns the offsets packed as the native side wants them. */
export function checkGemmBatch(s: GemmBatch): Int32Array {
  const { M, N, K } = s;
  for (const [k, v] of Object.entries({ M, N, K, aRowStride: s.aRowStride, aColStride: s.aColStride, bRowStride: s.bRowStride, bColStride: s.bColStride, cRowStride: s.cRowStride })) {
    if (!isSize(v)) bad(`${k} must be a non-negative integer, got ${String(v)}`);
  }
  if (s.cRowStride < N) bad(`cRowStride ${s.cRowStride} is below N ${N}: rows of C would overlap`);
  if (!(s.a instanceof Float32Array) || !(s.b instanceof Float32Array) || !(s.c instanceof Float32Array)) bad("a, b and c must be Float32Arrays");
  const count = s.aOffsets.length;
  if (s.bOffsets.length !== count || s.cOffsets.length !== count) bad("aOffsets, bOffsets and cOffsets differ in length");
  if (s.alpha !== undefined && !Number.isFinite(s.alpha)) bad("alpha must be finite");
  const offs = new Int32Array(3 * count);
  for (let e = 0; e < count; e++) {
    const ao = s.aOffsets[e]!, bo = s.bOffsets[e]!, co = s.cOffsets[e]!;
    if (!fits(ao, M, K, s.aRowStride, s.aColStride, s.a.length)) bad(`entry ${e}: A (${M}x${K} at ${ao}) runs past a (${s.a.length})`);
    if (!fits(bo, K, N, s.bRowStride, s.bColStride, s.b.length)) bad(`entry ${e}: B (${K}x${N} at ${bo}) runs past b (${s.b.length})`);
    if (!fits(co, M, N, s.cRowStride, 1, s.c.length)) bad(`entry ${e}: C (${M}x${N} at ${co}) runs past c (${s.c.length})`);
    offs[3 * e] = ao;
    offs[3 * e + 1] = bo;
    offs[3 * e + 2] = co;
  }
  return offs;
}

/** Pure-JS batch (portable fallback and reference): dot-product order when B is contiguous along k, else row updates. */
export function jsGemmBatch(s: GemmBatch, offs: Int32Array): void {
  const { M, N, K, a, b, c, aRowStride: ars, aColStride: acs, bRowStride: brs, bColStride: bcs, cRowStride: ldc } = s;
  const alpha = s.alpha ?? 1;
  const acc = s.accumulate ?? false;
  for (let e = 0; e < offs.length / 3; e++) {
    const ao = offs[3 * e]!, bo = offs[3 * e + 1]!, co = offs[3 * e + 2]!;
    if (brs === 1 && bcs !== 1) {
      // B is a transposed row-major matrix (e.g. Kᵀ): each C element is a dot of two contiguous runs.
      for (let m = 0; m < M; m++) {
        const ar = ao + m * ars;
        const cr = co + m * ldc;
        for (let n = 0; n < N; n++) {
          const bc = bo + n * bcs;
          let sum = 0;
          for (let k = 0; k < K; k++) sum += a[ar + k * acs]! * b[bc + k]!;
          c[cr + n] = (acc ? c[cr + n]! : 0) + alpha * sum;
        }
      }
    } else {
      for (let m = 0; m < M; m++) {
        const ar = ao + m * ars;
        const cr = co + m * ldc;
        if (!acc) c.fill(0, cr, cr + N);
        for (let k = 0; k < K; k++) {
          const v = alpha * a[ar + k * acs]!;
          if (v === 0) continue;
          const br = bo + k * brs;
          for (let n = 0; n < N; n++) c[cr + n] = c[cr + n]! + v * b[br + n * bcs]!;
        }
      }
    }
  }
}
