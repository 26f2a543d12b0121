/**
 * The hyperparameters of a `general.architecture = "llama"` model, read and checked the way
 * llama.cpp reads them (llama-model.cpp `llama_model_base::load_hparams` and
 * models/llama.cpp `load_arch_hparams` in the llama.cpp that node-llama-cpp 3.22.1 bundles).
 * Every `llama.*` key llama.cpp may read is either checked here or refused as unchecked: a key
 * the gate does not know could change what llama.cpp builds (e.g. `llama.expert_group_count`
 * makes it assert), so "unknown" is not "harmless".
 *
 * Ranges cite the check they mirror. GGML_ASSERT failures abort the whole process; the others
 * would be clean llama.cpp errors, refused here so the gate and llama.cpp agree.
 */
import type { GgufHeader } from "./header.ts";
import { boolKey, f32Key, inRange, invalid, strKey, u32Key, unchecked } from "./model-keys.ts";

/** llama-hparams.h: `LLAMA_MAX_LAYERS` (GGML_ASSERT n_layer <= it) and `LLAMA_MAX_EXPERTS`. */
export const LLAMA_MAX_LAYERS = 512;
export const LLAMA_MAX_EXPERTS = 1024;
/** Upper bound for sizes the gate accepts; tensors must match them, so real bounds come from the file size. */
const MAX_SIZE = 1 << 24;

export interface LlamaHparams {
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  /** n_embd / n_head: key, value and rotary dimension (llama requires all three equal). */
  headDim: number;
  nVocab: number;
  /** 0 for a dense model. */
  nExpert: number;
  nExpertUsed: number;
}

const P = "llama.";
// Every llama.* key the gate reads below; any other is refused as unchecked.
const KNOWN = new Set([
  "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
  "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
  "attention.layer_norm_rms_epsilon", "expert_count", "expert_used_count",
  "rope.dimension_count", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor", "rope.scale_linear",
  "rope.scaling.attn_factor", "rope.scaling.original_context_length", "rope.scaling.finetuned",
].map((k) => P + k));

// llama_rope_scaling_type_from_string: any other name is UNSPECIFIED and GGML_ASSERTs. "longrope"
// adds per-layer factor tensors the gate does not model.
const ROPE_SCALING = new Set(["none", "linear", "yarn"]);

function u32(h: GgufHeader, key: string): number | undefined {
  return u32Key(h, P + key);
}

function size(h: GgufHeader, key: string, lo = 1, hi = MAX_SIZE): number {
  return inRange(P + key, u32Key(h, P + key, true), lo, hi);
}

function checkRope(h: GgufHeader, headDim: number): void {
  const nRot = u32(h, "rope.dimension_count");
  // load_hparams throws "invalid n_rot" for llama unless it equals the key length.
  if (nRot !== undefined && nRot !== headDim) throw invalid(`llama.rope.dimension_count ${nRot} must equal the head dimension ${headDim}`);
  const base = f32Key(h, P + "rope.freq_base");
  if (base !== undefined && !(base > 0)) throw invalid(`llama.rope.freq_base is ${base}`);
  const scaling = strKey(h, P + "rope.scaling.type");
  if (scaling === "longrope") throw unchecked("llama.rope.scaling.type longrope: its factor tensors are not modelled by the gate");
  if (scaling !== undefined && !ROPE_SCALING.has(scaling)) throw invalid(`llama.rope.scaling.type ${JSON.stringify(scaling)} is not one llama.cpp knows (none, linear, yarn)`);
  for (const k of ["rope.scaling.factor", "rope.scale_linear", "rope.scaling.attn_factor"]) {
    const v = f32Key(h, P + k);
    if (v !== undefined && v < 0) throw invalid(`llama.${k} is ${v}`);
  }
  u32(h, "rope.scaling.original_context_length");
  boolKey(h, P + "rope.scaling.finetuned");
}

/** load_hparams' expert asserts: used <= count <= LLAMA_MAX_EXPERTS; used > 0 iff count > 0. */
function experts(h: GgufHeader): { nExpert: number; nExpertUsed: number } {
  const nExpert = inRange(P + "expert_count", u32(h, "expert_count") ?? 0, 0, LLAMA_MAX_EXPERTS);
  const nExpertUsed = u32(h, "expert_used_count") ?? 0;
  if (nExpert === 0 && nExpertUsed !== 0) throw invalid(`llama.expert_used_count is ${nExpertUsed} but the model has no experts (llama.expert_count 0)`);
  if (nExpert > 0) inRange(P + "expert_used_count", nExpertUsed, 1, nExpert, `llama.expert_count is ${nExpert}`);
  return { nExpert, nExpertUsed };
}

/** Reads and checks the llama hyperparameters; `nVocab` is the tokenizer's vocabulary size. */
export function readLlamaHparams(h: GgufHeader, nVocab: number): LlamaHparams {
  for (const key of h.metadata.keys()) {
    if (key.startsWith(P) && !KNOWN.has(key)) throw unchecked(`${key} is a llama key the model gate does not model`);
  }
  const nCtxTrain = size(h, "context_length");
  const nEmbd = size(h, "embedding_length");
  // Scalars only: per-layer arrays (head counts, feed-forward lengths) are refused by u32Key.
  const nLayer = size(h, "block_count", 1, LLAMA_MAX_LAYERS);
  const nFf = size(h, "feed_forward_length");
  const nHead = size(h, "attention.head_count");
  const nHeadKv = u32(h, "attention.head_count_kv") ?? nHead;
  inRange(P + "attention.head_count_kv", nHeadKv, 1, MAX_SIZE);
  if (nEmbd % nHead !== 0) throw invalid(`llama.embedding_length ${nEmbd} is not a multiple of the head count ${nHead}`);
  // Grouped-query attention broadcasts K and V over the heads: ggml asserts the ratio is whole.
  if (nHead % nHeadKv !== 0) throw invalid(`llama.attention.head_count ${nHead} is not a multiple of head_count_kv ${nHeadKv}`);
  const headDim = nEmbd / nHead;
  // RoPE rotates pairs of dimensions.
  if (headDim % 2 !== 0) throw invalid(`the head dimension ${headDim} (embedding_length / head_count) is odd`);
  // The llama graph asserts key length == value length == rotary dimensions.
  for (const k of ["attention.key_length", "attention.value_length"]) {
    const v = u32(h, k);
    if (v !== undefined && v !== headDim) throw invalid(`llama.${k} ${v} must equal the head dimension ${headDim}`);
  }
  const eps = f32Key(h, P + "attention.layer_norm_rms_epsilon", true)!;
  if (!(eps > 0)) throw invalid(`llama.attention.layer_norm_rms_epsilon is ${eps}, must be positive`);
  checkRope(h, headDim);
  const declared = u32(h, "vocab_size");
  if (declared !== undefined && declared !== nVocab) throw invalid(`llama.vocab_size ${declared} disagrees with ${nVocab} tokens`);
  return { nCtxTrain, nEmbd, nLayer, nFf, nHead, nHeadKv, headDim, nVocab, ...experts(h) };
}
