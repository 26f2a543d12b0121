/**
 * Incremental (KV-cached) decoding: the prompt runs once through the packed forward pass, whose
 * post-RoPE keys and values seed the cache; each new token then costs one row per layer instead of
 * recomputing the whole prefix. Used by LlamaModel.generate.
 */
import { blk, forward, linear, type Net } from "./network.ts";
import { rmsNorm, swiglu } from "./ops.ts";

export class KvDecoder {
  private readonly keys: Float32Array[];
  private readonly values: Float32Array[];
  /** Number of positions in the cache. */
  length = 0;
  private readonly kvDim: number;

  /** Runs the prompt; `lastLogits` then holds the prediction for the next token. */
  constructor(private readonly net: Net, prompt: readonly number[], public lastLogits: Float32Array = new Float32Array(0)) {
    const c = net.config;
    this.kvDim = c.nKvHeads * (c.dim / c.nHeads);
    const cache = forward(net, [prompt]);
    const T = prompt.length;
    this.keys = cache.layers.map((L) => {
      const k = new Float32Array(c.contextLength * this.kvDim);
      k.set(L.k.subarray(0, T * this.kvDim));
      return k;
    });
    this.values = cache.layers.map((L) => {
      const v = new Float32Array(c.contextLength * this.kvDim);
      v.set(L.v.subarray(0, T * this.kvDim));
      return v;
    });
    this.length = T;
    this.lastLogits = cache.logits.slice((T - 1) * c.vocabSize, T * c.vocabSize);
  }

  /** Appends `token` at the next position and returns the logits predicting the one after it. */
  step(token: number): Float32Array {
    const net = this.net;
    const c = net.config;
    const D = c.dim;
    const hd = D / c.nHeads;
    const qDim = c.nHeads * hd;
    const F = c.ffnDim;
    const pos = this.length;
    if (pos >= c.contextLength) throw new RangeError("KV cache full");
    const none = new Map<string, Float32Array>();
    const x = net.params.get("token_embd.weight")!.slice(token * D, (token + 1) * D);
    const xn = new Float32Array(D);
    const rstd = new Float32Array(1);
    const q = new Float32Array(qDim);
    const att = new Float32Array(qDim);
    const tmp = new Float32Array(D);
    const g = new Float32Array(F);
    const u = new Float32Array(F);
    const h = new Float32Array(F);
    const sig = new Float32Array(F);
    const scores = new Float32Array(pos + 1);
    const half = hd / 2;
    const rotate = (v: Float32Array, off: number, heads: number): void => {
      for (let hh = 0; hh < heads; hh++) {
        const o = off + hh * hd;
        for (let i = 0; i < half; i++) {
          const cs = net.ropeCos[pos * half + i]!;
          const sn = net.ropeSin[pos * half + i]!;
          const a = v[o + 2 * i]!;
          const b = v[o + 2 * i + 1]!;
          v[o + 2 * i] = a * cs - b * sn;
          v[o + 2 * i + 1] = a * sn + b * cs;
        }
      }
    };
    const group = c.nHeads / c.nKvHeads;
    const scale = 1 / Math.sqrt(hd);
    for (let l = 0; l < c.nLayers; l++) {
      const K = this.keys[l]!;
      const V = this.values[l]!;
      rmsNorm(xn, rstd, x, net.params.get(blk(l, "attn_norm"))!, 1, D, c.normEps);
      linear(net, blk(l, "attn_q"), q, xn, 1, D, qDim, none);
      const kRow = K.subarray(pos * this.kvDim, (pos + 1) * this.kvDim);
      const vRow = V.subarray(pos * this.kvDim, (pos + 1) * this.kvDim);
      linear(net, blk(l, "attn_k"), kRow, xn, 1, D, this.kvDim, none);
      linear(net, blk(l, "attn_v"), vRow, xn, 1, D, this.kvDim, none);
      rotate(q, 0, c.nHeads);
      rotate(K, pos * this.kvDim, c.nKvHeads);
      for (let hh = 0; hh < c.nHeads; hh++) {
        const kh = Math.floor(hh / group);
        let max = -Infinity;
        for (let s = 0; s <= pos; s++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[hh * hd + d]! * K[s * this.kvDim + kh * hd + d]!;
          scores[s] = dot * scale;
          if (scores[s]! > max) max = scores[s]!;
        }
        let sum = 0;
        for (let s = 0; s <= pos; s++) sum += scores[s] = Math.exp(scores[s]! - max);
        for (let d = 0; d < hd; d++) att[hh * hd + d] = 0;
        for (let s = 0; s <= pos; s++) {
          const p = scores[s]! / sum;
          for (let d = 0; d < hd; d++) att[hh * hd + d]! += p * V[s * this.kvDim + kh * hd + d]!;
        }
      }
      linear(net, blk(l, "attn_output"), tmp, att, 1, qDim, D, none);
      for (let i = 0; i < D; i++) x[i]! += tmp[i]!;
      rmsNorm(xn, rstd, x, net.params.get(blk(l, "ffn_norm"))!, 1, D, c.normEps);
      linear(net, blk(l, "ffn_gate"), g, xn, 1, D, F, none);
      linear(net, blk(l, "ffn_up"), u, xn, 1, D, F, none);
      swiglu(h, sig, g, u, F);
      linear(net, blk(l, "ffn_down"), tmp, h, 1, F, D, none);
      for (let i = 0; i < D; i++) x[i]! += tmp[i]!;
    }
    rmsNorm(xn, rstd, x, net.params.get("output_norm.weight")!, 1, D, c.normEps);
    const logits = new Float32Array(c.vocabSize);
    linear(net, "output.weight", logits, xn, 1, D, c.vocabSize, none);
    this.length = pos + 1;
    this.lastLogits = logits;
    return logits;
  }
}
