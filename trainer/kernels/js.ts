/**
 * Portable pure-JS kernels: the fallback when the native addon cannot be built or loaded (and the
 * baseline the native one is measured against). Same results as reference.ts to float rounding;
 * the loop order and register blocking differ, and zero gradients are not skipped (a branch per
 * element costs more than it saves on dense gradients).
 *
 * Why these shapes: V8 keeps a handful of doubles in registers, so each inner loop reads a few
 * rows once and updates several accumulators from them. That cuts the loads per multiply-add from
 * 2 (reference) to about 0.75, which is what bounds plain JS here.
 */

/** y[T,out] = x[T,in] · W[out,in]^T: 2 token rows × 4 weight rows = 8 dot products per pass. */
export function jsMatmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  let t = 0;
  for (; t + 2 <= T; t += 2) {
    const xa = t * inDim;
    const xb = xa + inDim;
    const ya = t * outDim;
    const yb = ya + outDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let i = 0; i < inDim; i++) {
        const va = x[xa + i]!;
        const vb = x[xb + i]!;
        const u0 = w[w0 + i]!, u1 = w[w1 + i]!, u2 = w[w2 + i]!, u3 = w[w3 + i]!;
        a0 += va * u0; a1 += va * u1; a2 += va * u2; a3 += va * u3;
        b0 += vb * u0; b1 += vb * u1; b2 += vb * u2; b3 += vb * u3;
      }
      y[ya + o] = a0; y[ya + o + 1] = a1; y[ya + o + 2] = a2; y[ya + o + 3] = a3;
      y[yb + o] = b0; y[yb + o + 1] = b1; y[yb + o + 2] = b2; y[yb + o + 3] = b3;
    }
    for (; o < outDim; o++) {
      const wo = o * inDim;
      let a = 0, b = 0;
      for (let i = 0; i < inDim; i++) {
        const u = w[wo + i]!;
        a += x[xa + i]! * u;
        b += x[xb + i]! * u;
      }
      y[ya + o] = a;
      y[yb + o] = b;
    }
  }
  for (; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let i = 0; i < inDim; i++) {
        const v = x[xo + i]!;
        a0 += v * w[w0 + i]!; a1 += v * w[w1 + i]!; a2 += v * w[w2 + i]!; a3 += v * w[w3 + i]!;
      }
      y[yo + o] = a0; y[yo + o + 1] = a1; y[yo + o + 2] = a2; y[yo + o + 3] = a3;
    }
    for (; o < outDim; o++) {
      const wo = o * inDim;
      let a = 0;
      for (let i = 0; i < inDim; i++) a += x[xo + i]! * w[wo + i]!;
      y[yo + o] = a;
    }
  }
}

/**
 * dst[row, :] += sum_k g[k] * src[k, :] over blocks of 4 source rows: one load and one store of
 * dst per 4 multiply-adds. Shared by both backward kernels (they differ only in which matrix is
 * the source and where the coefficients come from).
 */
function axpy4(dst: Float32Array, d: number, src: Float32Array, s0: number, s1: number, s2: number, s3: number, g0: number, g1: number, g2: number, g3: number, n: number): void {
  for (let i = 0; i < n; i++) {
    dst[d + i] = dst[d + i]! + (g0 * src[s0 + i]! + g1 * src[s1 + i]! + g2 * src[s2 + i]! + g3 * src[s3 + i]!);
  }
}

/**
 * dst rows a and b += (g · 4 src rows) and (h · the same 4 rows): each src element is loaded once
 * for two destination rows, 8 multiply-adds per 6 loads and 2 stores.
 */
function axpy4x2(
  dst: Float32Array, da: number, db: number, src: Float32Array, s0: number, s1: number, s2: number, s3: number,
  g0: number, g1: number, g2: number, g3: number, h0: number, h1: number, h2: number, h3: number, n: number,
): void {
  for (let i = 0; i < n; i++) {
    const u0 = src[s0 + i]!, u1 = src[s1 + i]!, u2 = src[s2 + i]!, u3 = src[s3 + i]!;
    dst[da + i] = dst[da + i]! + (g0 * u0 + g1 * u1 + g2 * u2 + g3 * u3);
    dst[db + i] = dst[db + i]! + (h0 * u0 + h1 * u1 + h2 * u2 + h3 * u3);
  }
}

/** dx[T,in] += dy[T,out] · W[out,in]: two tokens × four weight rows per pass over dx's rows. */
export function jsMatmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  let t = 0;
  for (; t + 2 <= T; t += 2) {
    const xa = t * inDim, xb = xa + inDim;
    const ya = t * outDim, yb = ya + outDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const w0 = o * inDim;
      axpy4x2(dx, xa, xb, w, w0, w0 + inDim, w0 + 2 * inDim, w0 + 3 * inDim,
        dy[ya + o]!, dy[ya + o + 1]!, dy[ya + o + 2]!, dy[ya + o + 3]!, dy[yb + o]!, dy[yb + o + 1]!, dy[yb + o + 2]!, dy[yb + o + 3]!, inDim);
    }
    for (; o < outDim; o++) {
      const g = dy[ya + o]!, h = dy[yb + o]!;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) {
        const u = w[wo + i]!;
        dx[xa + i] = dx[xa + i]! + g * u;
        dx[xb + i] = dx[xb + i]! + h * u;
      }
    }
  }
  for (; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    let o = 0;
    for (; o + 4 <= outDim; o += 4) {
      const w0 = o * inDim;
      axpy4(dx, xo, w, w0, w0 + inDim, w0 + 2 * inDim, w0 + 3 * inDim, dy[yo + o]!, dy[yo + o + 1]!, dy[yo + o + 2]!, dy[yo + o + 3]!, inDim);
    }
    for (; o < outDim; o++) {
      const g = dy[yo + o]!;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) dx[xo + i] = dx[xo + i]! + g * w[wo + i]!;
    }
  }
}

/** dW[out,in] += dy[T,out]^T · x[T,in]: two weight rows × four token rows per pass over them. */
export function jsMatmulDyTX(dw: Float32Array, dy: Float32Array, x: Float32Array, T: number, inDim: number, outDim: number): void {
  let o = 0;
  for (; o + 2 <= outDim; o += 2) {
    const wa = o * inDim, wb = wa + inDim;
    let t = 0;
    for (; t + 4 <= T; t += 4) {
      const r0 = t * outDim + o, r1 = r0 + outDim, r2 = r1 + outDim, r3 = r2 + outDim;
      const x0 = t * inDim;
      axpy4x2(dw, wa, wb, x, x0, x0 + inDim, x0 + 2 * inDim, x0 + 3 * inDim,
        dy[r0]!, dy[r1]!, dy[r2]!, dy[r3]!, dy[r0 + 1]!, dy[r1 + 1]!, dy[r2 + 1]!, dy[r3 + 1]!, inDim);
    }
    for (; t < T; t++) {
      const g = dy[t * outDim + o]!, h = dy[t * outDim + o + 1]!;
      const xo = t * inDim;
      for (let i = 0; i < inDim; i++) {
        const u = x[xo + i]!;
        dw[wa + i] = dw[wa + i]! + g * u;
        dw[wb + i] = dw[wb + i]! + h * u;
      }
    }
  }
  for (; o < outDim; o++) {
    const wo = o * inDim;
    let t = 0;
    for (; t + 4 <= T; t += 4) {
      const x0 = t * inDim;
      axpy4(dw, wo, x, x0, x0 + inDim, x0 + 2 * inDim, x0 + 3 * inDim,
        dy[t * outDim + o]!, dy[(t + 1) * outDim + o]!, dy[(t + 2) * outDim + o]!, dy[(t + 3) * outDim + o]!, inDim);
    }
    for (; t < T; t++) {
      const g = dy[t * outDim + o]!;
      const xo = t * inDim;
      for (let i = 0; i < inDim; i++) dw[wo + i] = dw[wo + i]! + g * x[xo + i]!;
    }
  }
}
