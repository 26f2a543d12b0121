/**
 * Element-wise and attention operations of the llama block, forward and backward, on row-major
 * Float32Arrays. The big matrix products live in trainer/kernels.ts; everything here is O(N*D) or
 * O(T^2*D) per sequence. Formulas follow llama.cpp's "llama" architecture (see docs/model.md).
 */

/** y = x / sqrt(mean(x^2) + eps) * w per row; stores 1/sqrt(...) in rstd[row] for the backward pass. */
export function rmsNorm(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array, N: number, D: number, eps: number): void {
  for (let t = 0; t < N; t++) {
    const o = t * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[o + i]! * x[o + i]!;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[t] = r;
    for (let i = 0; i < D; i++) y[o + i] = x[o + i]! * r * w[i]!;
  }
}

/**
 * Backward of rmsNorm: dx += dL/dx, dw += dL/dw (dw may be undefined when the weight is frozen).
 * With y_i = x_i r w_i and r = (mean(x^2)+eps)^-1/2:  dx_i = r w_i dy_i - x_i r^3 / D * sum_j dy_j w_j x_j.
 */
export function rmsNormBackward(
  dx: Float32Array, dw: Float32Array | undefined, dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, N: number, D: number,
): void {
  for (let t = 0; t < N; t++) {
    const o = t * D;
    const r = rstd[t]!;
    let dot = 0;
    for (let i = 0; i < D; i++) dot += dy[o + i]! * w[i]! * x[o + i]!;
    const c = (dot * r * r * r) / D;
    for (let i = 0; i < D; i++) dx[o + i]! += r * w[i]! * dy[o + i]! - x[o + i]! * c;
    if (dw) for (let i = 0; i < D; i++) dw[i]! += dy[o + i]! * x[o + i]! * r;
  }
}

/**
 * cos/sin tables [contextLength, headDim/2] for RoPE. Pair i of a head turns by pos * base^(-2i/headDim),
 * computed like ggml (theta_scale = base^(-2/headDim), theta multiplied by it pair after pair) so the
 * angles round the same way.
 */
export function ropeTables(contextLength: number, headDim: number, base: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(contextLength * half);
  const sin = new Float32Array(contextLength * half);
  const thetaScale = Math.fround(Math.pow(base, -2 / headDim));
  for (let p = 0; p < contextLength; p++) {
    let theta = Math.fround(p);
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
      theta = Math.fround(theta * thetaScale);
    }
  }
  return { cos, sin };
}

/**
 * Rotates ADJACENT pairs (x[2i], x[2i+1]) of every head in place, as llama.cpp's LLAMA_ROPE_TYPE_NORM does.
 * `inverse` turns by -theta: the backward pass of a rotation is its transpose.
 * Rows are tokens of consecutive sequences: positions restart at 0 at every `starts` entry.
 */
export function rope(
  x: Float32Array, starts: readonly number[], lengths: readonly number[], nHeads: number, headDim: number,
  cos: Float32Array, sin: Float32Array, inverse: boolean,
): void {
  const half = headDim / 2;
  const width = nHeads * headDim;
  const sgn = inverse ? -1 : 1;
  for (let s = 0; s < starts.length; s++) {
    const start = starts[s]!;
    for (let p = 0; p < lengths[s]!; p++) {
      const row = (start + p) * width;
      const tab = p * half;
      for (let h = 0; h < nHeads; h++) {
        const o = row + h * headDim;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i]!;
          const sn = sgn * sin[tab + i]!;
          const a = x[o + 2 * i]!;
          const b = x[o + 2 * i + 1]!;
          x[o + 2 * i] = a * c - b * sn;
          x[o + 2 * i + 1] = a * sn + b * c;
        }
      }
    }
  }
}

export interface AttnShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * Causal attention for one sequence of T tokens starting at row `start`.
 * q [*, nHeads*hd], k/v [*, nKvHeads*hd] (grouped-query: head h reads kv head floor(h / (nHeads/nKvHeads))).
 * probs (size nHeads*T*T, only the lower triangle is written) keeps softmax(q·k/sqrt(hd)) for the backward pass.
 */
export function attention(
  out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, start: number, T: number, sh: AttnShape,
): void {
  const { nHeads, nKvHeads, headDim: hd } = sh;
  const group = nHeads / nKvHeads;
  const qw = nHeads * hd;
  const kw = nKvHeads * hd;
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = (start + t) * qw + h * hd;
      const po = (h * T + t) * T;
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        const ko = (start + s) * kw + kh * hd;
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[qo + d]! * k[ko + d]!;
        const sc = dot * scale;
        probs[po + s] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) {
        const e = Math.exp(probs[po + s]! - max);
        probs[po + s] = e;
        sum += e;
      }
      const inv = 1 / sum;
      const oo = (start + t) * qw + h * hd;
      for (let d = 0; d < hd; d++) out[oo + d] = 0;
      for (let s = 0; s <= t; s++) {
        const p = probs[po + s]! * inv;
        probs[po + s] = p;
        const vo = (start + s) * kw + kh * hd;
        for (let d = 0; d < hd; d++) out[oo + d]! += p * v[vo + d]!;
      }
    }
  }
}

/** Backward of `attention` for one sequence: accumulates into dq, dk, dv (rows start..start+T). */
export function attentionBackward(
  dq: Float32Array, dk: Float32Array, dv: Float32Array, dOut: Float32Array, probs: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, start: number, T: number, sh: AttnShape, dp: Float32Array,
): void {
  const { nHeads, nKvHeads, headDim: hd } = sh;
  const group = nHeads / nKvHeads;
  const qw = nHeads * hd;
  const kw = nKvHeads * hd;
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const oo = (start + t) * qw + h * hd;
      const po = (h * T + t) * T;
      // dP_ts = dO_t · v_s ; dv_s += P_ts dO_t
      let pdp = 0;
      for (let s = 0; s <= t; s++) {
        const vo = (start + s) * kw + kh * hd;
        const p = probs[po + s]!;
        let dot = 0;
        for (let d = 0; d < hd; d++) {
          dot += dOut[oo + d]! * v[vo + d]!;
          dv[vo + d]! += p * dOut[oo + d]!;
        }
        dp[s] = dot;
        pdp += p * dot;
      }
      // softmax backward, then the scaled dot product: dS = P (dP - sum P dP) * scale
      for (let s = 0; s <= t; s++) {
        const ds = probs[po + s]! * (dp[s]! - pdp) * scale;
        if (ds === 0) continue;
        const ko = (start + s) * kw + kh * hd;
        for (let d = 0; d < hd; d++) {
          dq[oo + d]! += ds * k[ko + d]!;
          dk[ko + d]! += ds * q[oo + d]!;
        }
      }
    }
  }
}

/** h = silu(g) * u  (SwiGLU). */
export function swiglu(h: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    h[i] = (x / (1 + Math.exp(-x))) * u[i]!;
  }
}

/** Backward of swiglu: dg = dh * u * silu'(g), du = dh * silu(g) (both overwritten). */
export function swigluBackward(dg: Float32Array, du: Float32Array, dh: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    const sig = 1 / (1 + Math.exp(-x));
    du[i] = dh[i]! * x * sig;
    dg[i] = dh[i]! * u[i]! * sig * (1 + x * (1 - sig));
  }
}
