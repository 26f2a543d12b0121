/**
 * Raw logits from the real llama.cpp (node-llama-cpp) for a token sequence: the reference our forward
 * pass is tested against, and the teacher signal for logit distillation.
 *
 * Settings that matter for exact agreement (measured, see docs/model.md): F32 K/V cache (the default F16
 * cache rounds keys and values, ~1e-2 off) and flash attention off. Threads are always explicit: the
 * library default of 4 threads on a 2-core machine is up to 90x slower.
 */
import type { ControlledEvaluateInputItem, Llama, LlamaModel as CppModel, Token } from "node-llama-cpp";

export interface CppLogitsOptions {
  /** llama.cpp threads. Default 1 (tiny models run fastest on one thread). */
  threads?: number;
  /** Context size; default: the sequence length + 1 rounded up to 64 (at least 64). */
  contextSize?: number;
  /** LoRA adapters applied for this evaluation. */
  lora?: Array<{ filePath: string; scale?: number }>;
}

/** One Llama per process (it takes ~0.7 s to create): callers pass theirs in. */
export async function openLlama(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  return getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
}

/** Logits [T, vocab] for `tokens` (row t = prediction after tokens[0..t]) from a loaded llama.cpp model. */
export async function llamaCppLogits(model: CppModel, tokens: readonly number[], opts: CppLogitsOptions = {}): Promise<Float32Array> {
  // One slot more than the tokens: a context exactly full makes node-llama-cpp shift it (drop and
  // re-decode the first half), and the last position's logits were 0.36 off (bench/trainer.ts).
  const contextSize = opts.contextSize ?? Math.max(64, Math.ceil((tokens.length + 1) / 64) * 64);
  const ctx = await model.createContext({
    contextSize,
    batchSize: Math.max(tokens.length, 1),
    threads: opts.threads ?? 1,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(opts.lora ? { lora: { adapters: opts.lora } } : {}),
  });
  try {
    const seq = ctx.getSequence();
    const input: ControlledEvaluateInputItem[] = tokens.map((t) => [t as Token, { generateNext: { logits: true } }]);
    const res = await seq.controlledEvaluate(input);
    // The logits map covers the whole vocabulary, so its size is the vocabulary size.
    const V = res[0]?.next.logits?.size ?? 0;
    const out = new Float32Array(tokens.length * V);
    res.forEach((r, t) => {
      const m = r?.next.logits;
      if (!m) throw new Error(`llama.cpp returned no logits at position ${t}`);
      for (const [tok, v] of m) out[t * V + tok] = v;
    });
    return out;
  } finally {
    await ctx.dispose();
  }
}
