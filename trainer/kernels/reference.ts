/**
 * The reference kernels: the plainest loops that state the semantics. Every faster backend is
 * tested against these (test/kernels-*.test.ts). Row-major Float32Arrays, W is [out, in] like
 * llama.cpp stores it.
 */

/** y[T,out] = x[T,in] · W[out,in]^T  (y is overwritten). */
export function refMatmulXWt(y: Float32Array, x: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += x[xo + i]! * w[wo + i]!;
      y[yo + o] = s;
    }
  }
}

/** dx[T,in] += dy[T,out] · W[out,in]. */
export function refMatmulDyW(dx: Float32Array, dy: Float32Array, w: Float32Array, T: number, inDim: number, outDim: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    for (let o = 0; o < outDim; o++) {
      const g = dy[yo + o]!;
      if (g === 0) continue;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) dx[xo + i]! += g * w[wo + i]!;
    }
  }
}

/** dW[out,in] += dy[T,out]^T · x[T,in]. */
export function refMatmulDyTX(dw: Float32Array, dy: Float32Array, x: Float32Array, T: number, inDim: number, outDim: number): void {
  for (let t = 0; t < T; t++) {
    const xo = t * inDim;
    const yo = t * outDim;
    for (let o = 0; o < outDim; o++) {
      const g = dy[yo + o]!;
      if (g === 0) continue;
      const wo = o * inDim;
      for (let i = 0; i < inDim; i++) dw[wo + i]! += g * x[xo + i]!;
    }
  }
}
