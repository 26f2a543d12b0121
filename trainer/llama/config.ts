/**
 * The shape of a llama-architecture model (the GGUF `llama.*` hyperparameters) and its validation.
 * Its own module because the model (trainer/model.ts), the passes (trainer/llama/network.ts) and the
 * GGUF loader (trainer/llama/gguf-load.ts) all need it, and the model imports the passes.
 */
import { ColonyError } from "../../common/errors.ts";
import { ModelErrors } from "./errors.ts";

export interface LlamaConfig {
  vocabSize: number;
  /** Embedding width (llama.embedding_length). */
  dim: number;
  nLayers: number;
  nHeads: number;
  /** Key/value heads; nHeads must be a multiple (grouped-query attention when smaller). */
  nKvHeads: number;
  /** Hidden width of the SwiGLU feed-forward block (llama.feed_forward_length). */
  ffnDim: number;
  /** Longest sequence the model accepts (llama.context_length). */
  contextLength: number;
  /** RMSNorm epsilon (llama.attention.layer_norm_rms_epsilon), e.g. 1e-5. */
  normEps: number;
  /** RoPE base frequency (llama.rope.freq_base), e.g. 10000. */
  ropeTheta: number;
}

/** Throws MODEL_CONFIG_INVALID unless the shape is one llama.cpp can run; returns a frozen copy. */
export function validateConfig(c: LlamaConfig): LlamaConfig {
  const problems: string[] = [];
  for (const k of ["vocabSize", "dim", "nLayers", "nHeads", "nKvHeads", "ffnDim", "contextLength"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) problems.push(`${k} must be an integer >= 1 (got ${c[k]})`);
  }
  if (!(c.normEps > 0 && c.normEps < 1)) problems.push(`normEps must be in (0, 1) (got ${c.normEps})`);
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta)) problems.push(`ropeTheta must be > 0 (got ${c.ropeTheta})`);
  if (problems.length === 0) {
    if (c.dim % c.nHeads !== 0) problems.push(`dim ${c.dim} is not divisible by nHeads ${c.nHeads}`);
    else if ((c.dim / c.nHeads) % 2 !== 0) problems.push(`head size ${c.dim / c.nHeads} must be even for RoPE`);
    if (c.nHeads % c.nKvHeads !== 0) problems.push(`nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  }
  if (problems.length > 0) throw new ColonyError(ModelErrors.MODEL_CONFIG_INVALID, problems.join("; "), { problems });
  return Object.freeze({ ...c });
}
