/**
 * A llama-architecture language model in TypeScript whose forward pass matches llama.cpp's "llama"
 * architecture (RMSNorm, RoPE on adjacent pairs, causal grouped-query attention, SwiGLU), with a
 * backward pass for training. Parameters are keyed by their GGUF tensor names and stored row-major
 * [out, in], exactly the bytes a GGUF F32 tensor holds, so export is a copy (trainer/gguf-export.ts).
 *
 * Public surface (used by the training loop, distillation and LoRA):
 *   LlamaModel.init(config, rng), model.params, model.forward(tokens), model.forwardBackward(batch, grads),
 *   model.generate(promptIds, maxTokens, eosId), createGrads(model), zeroGrads(grads).
 */
import { ColonyError } from "../common/errors.ts";
import type { Rng } from "../common/random.ts";
import { validateConfig, type LlamaConfig } from "./llama/config.ts";
import { ModelErrors } from "./llama/errors.ts";
import { countPositions, lossAndGrad, type BatchItem } from "./llama/loss.ts";
import { KvDecoder } from "./llama/decode.ts";
import { backward, blk, forward, type Net } from "./llama/network.ts";
import { ropeTables } from "./llama/ops.ts";

export type { BatchItem } from "./llama/loss.ts";

export interface ForwardBackwardResult {
  /** Mean loss over the counted positions (0 when none counted). */
  loss: number;
  /** Number of counted positions. */
  count: number;
}

/** Tensor names and row-major [rows, cols] shapes ([out, in] for matrices, [1, n] for norms). */
export function tensorShapes(c: LlamaConfig): Map<string, [number, number]> {
  const hd = c.dim / c.nHeads;
  const m = new Map<string, [number, number]>();
  m.set("token_embd.weight", [c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    m.set(blk(l, "attn_norm"), [1, c.dim]);
    m.set(blk(l, "attn_q"), [c.nHeads * hd, c.dim]);
    m.set(blk(l, "attn_k"), [c.nKvHeads * hd, c.dim]);
    m.set(blk(l, "attn_v"), [c.nKvHeads * hd, c.dim]);
    m.set(blk(l, "attn_output"), [c.dim, c.nHeads * hd]);
    m.set(blk(l, "ffn_norm"), [1, c.dim]);
    m.set(blk(l, "ffn_gate"), [c.ffnDim, c.dim]);
    m.set(blk(l, "ffn_up"), [c.ffnDim, c.dim]);
    m.set(blk(l, "ffn_down"), [c.dim, c.ffnDim]);
  }
  m.set("output_norm.weight", [1, c.dim]);
  m.set("output.weight", [c.vocabSize, c.dim]);
  return m;
}

export class LlamaModel {
  readonly config: LlamaConfig;
  /** The weights, by GGUF tensor name, row-major [out, in]. Mutate in place (the optimizer does). */
  readonly params: Map<string, Float32Array>;
  protected readonly net: Net;

  /** Wraps existing weights (validated: every tensor present with the right size). */
  constructor(config: LlamaConfig, params: Map<string, Float32Array>) {
    this.config = validateConfig(config);
    for (const [name, [r, c]] of tensorShapes(this.config)) {
      const t = params.get(name);
      if (!t) throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `missing tensor ${name}`);
      if (t.length !== r * c) throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `tensor ${name} has ${t.length} values, expected ${r}x${c}`);
    }
    this.params = params;
    const { cos, sin } = ropeTables(this.config.contextLength, this.config.dim / this.config.nHeads, this.config.ropeTheta);
    this.net = { config: this.config, params, ropeCos: cos, ropeSin: sin };
  }

  /**
   * A fresh model: norms at 1, matrices normal with sd 1/sqrt(fan_in) (embedding sd 1), and the two
   * projections that write into the residual stream (attn_output, ffn_down) scaled by 1/sqrt(2 nLayers)
   * so the stream's variance does not grow with depth (GPT-2 style).
   */
  static init(config: LlamaConfig, rng: Rng): LlamaModel {
    const c = validateConfig(config);
    const params = new Map<string, Float32Array>();
    for (const [name, [r, cols]] of tensorShapes(c)) {
      const t = new Float32Array(r * cols);
      if (r === 1) t.fill(1);
      else {
        let sd = name === "token_embd.weight" ? 1 : 1 / Math.sqrt(cols);
        if (name.endsWith("attn_output.weight") || name.endsWith("ffn_down.weight")) sd /= Math.sqrt(2 * c.nLayers);
        for (let i = 0; i < t.length; i++) t[i] = rng.normal(0, sd);
      }
      params.set(name, t);
    }
    return new LlamaModel(c, params);
  }

  /** Throws unless `tokens` is a non-empty sequence of valid ids that fits the context. */
  protected checkTokens(tokens: readonly number[], what = "tokens"): void {
    if (!Array.isArray(tokens) || tokens.length === 0) throw new ColonyError(ModelErrors.MODEL_TOKEN_INVALID, `${what}: empty token sequence`);
    if (tokens.length > this.config.contextLength) {
      throw new ColonyError(ModelErrors.MODEL_SEQUENCE_TOO_LONG, `${what}: ${tokens.length} tokens exceed the context length ${this.config.contextLength}`);
    }
    const V = this.config.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new ColonyError(ModelErrors.MODEL_TOKEN_INVALID, `${what}: token id ${t} outside [0, ${V})`);
    }
  }

  /** Logits [T, vocab] (row t predicts the token after tokens[0..t]). */
  forward(tokens: number[]): Float32Array {
    this.checkTokens(tokens);
    return forward(this.net, [tokens]).logits;
  }

  /** Logits of several independent sequences in one packed pass: one [T_i, vocab] array each. */
  forwardMany(seqs: number[][]): Float32Array[] {
    seqs.forEach((s, i) => this.checkTokens(s, `sequence ${i}`));
    const cache = forward(this.net, seqs);
    const V = this.config.vocabSize;
    return cache.starts.map((st, i) => cache.logits.slice(st * V, (st + cache.lengths[i]!) * V));
  }

  /**
   * Adds d(mean loss)/d(param) to `grads` for every tensor present in it (see trainer/llama/loss.ts for
   * the loss) and returns the mean loss and the number of counted positions. All items run as one packed
   * batch. Call zeroGrads() between optimizer steps; calling twice accumulates.
   */
  forwardBackward(batch: BatchItem[], grads: Map<string, Float32Array>): ForwardBackwardResult {
    if (!Array.isArray(batch) || batch.length === 0) throw new ColonyError(ModelErrors.MODEL_BATCH_INVALID, "empty batch");
    batch.forEach((item, i) => this.checkTokens(item.tokens, `item ${i}`));
    for (const [name, g] of grads) {
      const p = this.gradTarget(name);
      if (!p || p.length !== g.length) throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `gradient ${name} matches no parameter of this model`);
    }
    const V = this.config.vocabSize;
    const count = countPositions(batch, V);
    if (count === 0) return { loss: 0, count: 0 };
    const cache = forward(this.net, batch.map((b) => b.tokens));
    const dlogits = new Float32Array(cache.logits.length);
    const total = lossAndGrad(cache.logits, dlogits, batch, cache.starts, V, 1 / count);
    backward(this.net, cache, dlogits, grads);
    return { loss: total / count, count };
  }

  /** The tensor a gradient named `name` belongs to (overridden by LoRA, whose gradients are adapters). */
  protected gradTarget(name: string): Float32Array | undefined {
    return this.params.get(name);
  }

  /**
   * Greedy decoding: appends the arg-max token until `maxTokens` new tokens, `eosId`, or the context is
   * full. KV-cached (trainer/llama/decode.ts): the prompt runs once, then one row per new token.
   * Returns only the new tokens (eos included when produced).
   */
  generate(promptIds: number[], maxTokens: number, eosId?: number): number[] {
    this.checkTokens(promptIds, "prompt");
    const dec = new KvDecoder(this.net, promptIds);
    const out: number[] = [];
    const V = this.config.vocabSize;
    let logits = dec.lastLogits;
    while (out.length < maxTokens) {
      let best = 0;
      for (let j = 1; j < V; j++) if (logits[j]! > logits[best]!) best = j;
      out.push(best);
      if (best === eosId || dec.length >= this.config.contextLength) break;
      logits = dec.step(best);
    }
    return out;
  }

  /** A KV-cached decoder primed with `promptIds`, for callers that sample their own way. */
  decoder(promptIds: number[]): KvDecoder {
    this.checkTokens(promptIds, "prompt");
    return new KvDecoder(this.net, promptIds);
  }

  /** Number of trainable values. */
  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.length;
    return n;
  }
}

/** A zeroed gradient buffer for every parameter of `model` (LoRA models: their adapter tensors). */
export function createGrads(model: { params: Map<string, Float32Array> }): Map<string, Float32Array> {
  const g = new Map<string, Float32Array>();
  for (const [name, t] of model.params) g.set(name, new Float32Array(t.length));
  return g;
}

export function zeroGrads(grads: Map<string, Float32Array>): void {
  for (const g of grads.values()) g.fill(0);
}
