/**
 * The llama forward and backward passes over a packed batch: the rows of all sequences are stacked
 * into one [N, dim] matrix so every linear layer is ONE big matmul (what trainer/kernels.ts is fast at),
 * while RoPE positions and causal attention restart at each sequence's first row.
 *
 * LoRA plugs in at the linear layers: a weight with an adapter computes x W^T + s (x A^T) B^T.
 * Gradients are written only for the tensors present in the `grads` map, so a frozen base model
 * (LoRA training) skips every weight-gradient matmul.
 */
import { matmulDyTX, matmulDyW, matmulXWt } from "../kernels.ts";
import { attention, attentionBackward, rmsNorm, rmsNormBackward, rope, swiglu, swigluBackward } from "./ops.ts";
import type { LlamaConfig } from "./config.ts";

export interface LoraAdapter {
  /** [rank, in] row-major (GGUF ne [in, rank]). */
  a: Float32Array;
  /** [out, rank] row-major (GGUF ne [rank, out]). */
  b: Float32Array;
  rank: number;
  /** alpha / rank (times the user scale llama.cpp applies at load time, 1 here). */
  scale: number;
}

export interface Net {
  config: LlamaConfig;
  params: Map<string, Float32Array>;
  adapters?: Map<string, LoraAdapter> | undefined;
  ropeCos: Float32Array;
  ropeSin: Float32Array;
}

interface LayerCache {
  xIn: Float32Array;
  rstd1: Float32Array;
  xn1: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  probs: Float32Array[];
  att: Float32Array;
  xMid: Float32Array;
  rstd2: Float32Array;
  xn2: Float32Array;
  g: Float32Array;
  u: Float32Array;
  h: Float32Array;
  /** sigmoid(g), kept for the SwiGLU backward pass. */
  sig: Float32Array;
  /** x A^T of each adapted linear, by weight name. */
  loraTmp: Map<string, Float32Array>;
}

export interface ForwardCache {
  N: number;
  starts: number[];
  lengths: number[];
  tokens: Int32Array;
  layers: LayerCache[];
  xFinal: Float32Array;
  rstdF: Float32Array;
  xnF: Float32Array;
  logits: Float32Array;
  /** x A^T of the output projection when it carries an adapter. */
  outLoraTmp: Map<string, Float32Array>;
}

export const blk = (l: number, name: string): string => `blk.${l}.${name}.weight`;

export function linear(net: Net, name: string, y: Float32Array, x: Float32Array, N: number, inDim: number, outDim: number, loraTmp: Map<string, Float32Array>): void {
  matmulXWt(y, x, net.params.get(name)!, N, inDim, outDim);
  const ad = net.adapters?.get(name);
  if (!ad) return;
  const tmp = new Float32Array(N * ad.rank);
  matmulXWt(tmp, x, ad.a, N, inDim, ad.rank);
  loraTmp.set(name, tmp);
  const delta = new Float32Array(N * outDim);
  matmulXWt(delta, tmp, ad.b, N, ad.rank, outDim);
  const s = ad.scale;
  for (let i = 0; i < delta.length; i++) y[i]! += s * delta[i]!;
}

function linearBackward(
  net: Net, name: string, dx: Float32Array, dy: Float32Array, x: Float32Array, N: number, inDim: number, outDim: number,
  grads: Map<string, Float32Array>, loraTmp: Map<string, Float32Array>,
): void {
  matmulDyW(dx, dy, net.params.get(name)!, N, inDim, outDim);
  const dw = grads.get(name);
  if (dw) matmulDyTX(dw, dy, x, N, inDim, outDim);
  const ad = net.adapters?.get(name);
  if (!ad) return;
  const r = ad.rank;
  const s = ad.scale;
  const tmp = loraTmp.get(name)!;
  // d(tmp) = s * dy B ; dB += s * dy^T tmp ; dA += d(tmp)^T x ; dx += d(tmp) A
  const dtmp = new Float32Array(N * r);
  matmulDyW(dtmp, dy, ad.b, N, r, outDim);
  for (let i = 0; i < dtmp.length; i++) dtmp[i]! *= s;
  const db = grads.get(name + ".lora_b");
  if (db) {
    const stmp = new Float32Array(tmp.length);
    for (let i = 0; i < tmp.length; i++) stmp[i] = s * tmp[i]!;
    matmulDyTX(db, dy, stmp, N, r, outDim);
  }
  const da = grads.get(name + ".lora_a");
  if (da) matmulDyTX(da, dtmp, x, N, inDim, r);
  matmulDyW(dx, dtmp, ad.a, N, inDim, r);
}

/** Runs the model over the packed sequences; the cache holds every activation the backward pass needs. */
export function forward(net: Net, seqs: readonly (readonly number[])[]): ForwardCache {
  const c = net.config;
  const D = c.dim;
  const hd = D / c.nHeads;
  const qDim = c.nHeads * hd;
  const kvDim = c.nKvHeads * hd;
  const F = c.ffnDim;
  const starts: number[] = [];
  const lengths: number[] = [];
  let N = 0;
  for (const s of seqs) {
    starts.push(N);
    lengths.push(s.length);
    N += s.length;
  }
  const tokens = new Int32Array(N);
  let x = new Float32Array(N * D);
  const emb = net.params.get("token_embd.weight")!;
  for (let si = 0; si < seqs.length; si++) {
    const s = seqs[si]!;
    for (let t = 0; t < s.length; t++) {
      const row = starts[si]! + t;
      tokens[row] = s[t]!;
      x.set(emb.subarray(s[t]! * D, (s[t]! + 1) * D), row * D);
    }
  }
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: hd };
  const layers: LayerCache[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const loraTmp = new Map<string, Float32Array>();
    const xIn = x;
    const rstd1 = new Float32Array(N);
    const xn1 = new Float32Array(N * D);
    rmsNorm(xn1, rstd1, xIn, net.params.get(blk(l, "attn_norm"))!, N, D, c.normEps);
    const q = new Float32Array(N * qDim);
    const k = new Float32Array(N * kvDim);
    const v = new Float32Array(N * kvDim);
    linear(net, blk(l, "attn_q"), q, xn1, N, D, qDim, loraTmp);
    linear(net, blk(l, "attn_k"), k, xn1, N, D, kvDim, loraTmp);
    linear(net, blk(l, "attn_v"), v, xn1, N, D, kvDim, loraTmp);
    rope(q, starts, lengths, c.nHeads, hd, net.ropeCos, net.ropeSin, false);
    rope(k, starts, lengths, c.nKvHeads, hd, net.ropeCos, net.ropeSin, false);
    const att = new Float32Array(N * qDim);
    const probs: Float32Array[] = [];
    for (let si = 0; si < starts.length; si++) {
      const T = lengths[si]!;
      const p = new Float32Array(c.nHeads * T * T);
      attention(att, p, q, k, v, starts[si]!, T, shape);
      probs.push(p);
    }
    const xMid = new Float32Array(N * D);
    linear(net, blk(l, "attn_output"), xMid, att, N, qDim, D, loraTmp);
    for (let i = 0; i < xMid.length; i++) xMid[i]! += xIn[i]!;
    const rstd2 = new Float32Array(N);
    const xn2 = new Float32Array(N * D);
    rmsNorm(xn2, rstd2, xMid, net.params.get(blk(l, "ffn_norm"))!, N, D, c.normEps);
    const g = new Float32Array(N * F);
    const u = new Float32Array(N * F);
    linear(net, blk(l, "ffn_gate"), g, xn2, N, D, F, loraTmp);
    linear(net, blk(l, "ffn_up"), u, xn2, N, D, F, loraTmp);
    const h = new Float32Array(N * F);
    const sig = new Float32Array(N * F);
    swiglu(h, sig, g, u, N * F);
    const xOut = new Float32Array(N * D);
    linear(net, blk(l, "ffn_down"), xOut, h, N, F, D, loraTmp);
    for (let i = 0; i < xOut.length; i++) xOut[i]! += xMid[i]!;
    layers.push({ xIn, rstd1, xn1, q, k, v, probs, att, xMid, rstd2, xn2, g, u, h, sig, loraTmp });
    x = xOut;
  }
  const rstdF = new Float32Array(N);
  const xnF = new Float32Array(N * D);
  rmsNorm(xnF, rstdF, x, net.params.get("output_norm.weight")!, N, D, c.normEps);
  const logits = new Float32Array(N * c.vocabSize);
  const lt = new Map<string, Float32Array>();
  linear(net, "output.weight", logits, xnF, N, D, c.vocabSize, lt);
  return { N, starts, lengths, tokens, layers, xFinal: x, rstdF, xnF, logits, outLoraTmp: lt };
}

/** Backpropagates dlogits [N, vocab] through the cached forward pass, accumulating into `grads`. */
export function backward(net: Net, cache: ForwardCache, dlogits: Float32Array, grads: Map<string, Float32Array>): void {
  const c = net.config;
  const D = c.dim;
  const hd = D / c.nHeads;
  const qDim = c.nHeads * hd;
  const kvDim = c.nKvHeads * hd;
  const F = c.ffnDim;
  const { N, starts, lengths } = cache;
  const shape = { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: hd };

  const dxnF = new Float32Array(N * D);
  linearBackward(net, "output.weight", dxnF, dlogits, cache.xnF, N, D, c.vocabSize, grads, cache.outLoraTmp);
  let dx = new Float32Array(N * D);
  rmsNormBackward(dx, grads.get("output_norm.weight"), dxnF, cache.xFinal, net.params.get("output_norm.weight")!, cache.rstdF, N, D);

  for (let l = c.nLayers - 1; l >= 0; l--) {
    const L = cache.layers[l]!;
    // FFN block: x_out = x_mid + down(swiglu(gate(xn2), up(xn2)))
    const dh = new Float32Array(N * F);
    linearBackward(net, blk(l, "ffn_down"), dh, dx, L.h, N, F, D, grads, L.loraTmp);
    const dg = new Float32Array(N * F);
    const du = new Float32Array(N * F);
    swigluBackward(dg, du, dh, L.g, L.u, L.sig, N * F);
    const dxn2 = new Float32Array(N * D);
    linearBackward(net, blk(l, "ffn_gate"), dxn2, dg, L.xn2, N, D, F, grads, L.loraTmp);
    linearBackward(net, blk(l, "ffn_up"), dxn2, du, L.xn2, N, D, F, grads, L.loraTmp);
    const dxMid = dx; // the residual passes dx through unchanged; add the norm branch in place
    rmsNormBackward(dxMid, grads.get(blk(l, "ffn_norm")), dxn2, L.xMid, net.params.get(blk(l, "ffn_norm"))!, L.rstd2, N, D);

    // Attention block: x_mid = x_in + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1)))
    const datt = new Float32Array(N * qDim);
    linearBackward(net, blk(l, "attn_output"), datt, dxMid, L.att, N, qDim, D, grads, L.loraTmp);
    const dq = new Float32Array(N * qDim);
    const dk = new Float32Array(N * kvDim);
    const dv = new Float32Array(N * kvDim);
    for (let si = 0; si < starts.length; si++) {
      attentionBackward(dq, dk, dv, datt, L.probs[si]!, L.q, L.k, L.v, starts[si]!, lengths[si]!, shape);
    }
    rope(dq, starts, lengths, c.nHeads, hd, net.ropeCos, net.ropeSin, true);
    rope(dk, starts, lengths, c.nKvHeads, hd, net.ropeCos, net.ropeSin, true);
    const dxn1 = new Float32Array(N * D);
    linearBackward(net, blk(l, "attn_q"), dxn1, dq, L.xn1, N, D, qDim, grads, L.loraTmp);
    linearBackward(net, blk(l, "attn_k"), dxn1, dk, L.xn1, N, D, kvDim, grads, L.loraTmp);
    linearBackward(net, blk(l, "attn_v"), dxn1, dv, L.xn1, N, D, kvDim, grads, L.loraTmp);
    rmsNormBackward(dxMid, grads.get(blk(l, "attn_norm")), dxn1, L.xIn, net.params.get(blk(l, "attn_norm"))!, L.rstd1, N, D);
    dx = dxMid;
  }
  const demb = grads.get("token_embd.weight");
  if (demb) {
    for (let t = 0; t < N; t++) {
      const o = cache.tokens[t]! * D;
      for (let i = 0; i < D; i++) demb[o + i]! += dx[t * D + i]!;
    }
  }
}
