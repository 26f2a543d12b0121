import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel as NativeModel } from "node-llama-cpp";
import { ColonyError } from "../common/errors.ts";
import { TrainErrors } from "./errors.ts";

/**
 * A GGUF model run through llama.cpp (node-llama-cpp) for the trainer: greedy completions (the
 * teacher of sequence-level distillation, and the judge of seed-model accuracy: what the fleet
 * will actually run) and full next-token distributions (the teacher of logit-level distillation).
 *
 * The caller owns the one Llama instance of the process (facts.md: one per process, ~0.7 s to make).
 */
export interface TeacherOptions {
  /** CPU threads for llama.cpp; always explicit (the default of 4 is up to 90x slower on 2 cores). */
  threads: number;
  /** Context size; default 512. */
  contextSize?: number;
  /** A LoRA adapter GGUF applied on top of the model (scale 1); default none. */
  lora?: string;
}

/** How `sample` draws tokens instead of taking the most likely one. */
export interface SampleOptions {
  /** Softmax temperature (> 0); 1 is the model's own distribution. */
  temperature: number;
  /** llama.cpp's sampler seed: the same seed, prompt and model give the same text. */
  seed: number;
}

export class LlamaTeacher {
  private closed = false;
  private constructor(
    readonly model: NativeModel,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
    readonly vocabSize: number,
  ) {}

  static async open(llama: Llama, modelPath: string, opts: TeacherOptions): Promise<LlamaTeacher> {
    try {
      const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
      // F32 KV cache and no flash attention: logits then match an exact forward pass (facts.md).
      const context = await model.createContext({ contextSize: opts.contextSize ?? 512, threads: opts.threads, batchSize: opts.contextSize ?? 512, ...(opts.lora !== undefined ? { lora: { adapters: [{ filePath: opts.lora, scale: 1 }] } } : {}), flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" } as Parameters<NativeModel["createContext"]>[0]);
      const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer?.ggml?.tokens;
      const vocabSize = Array.isArray(tokens) ? tokens.length : 0;
      return new LlamaTeacher(model, context, context.getSequence(), vocabSize);
    } catch (err) {
      throw new ColonyError(TrainErrors.TRAIN_DISTILL_TEACHER_FAILED, `cannot run teacher ${modelPath} through llama.cpp: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  /** Prompt text -> token ids as llama.cpp sees them (BOS first when the model asks for it). */
  tokenizePrompt(prompt: string): number[] {
    const ids = this.model.tokenize(prompt) as number[];
    const bos = this.model.tokens.bos;
    return this.model.tokens.shouldPrependBosToken && bos !== null ? [bos as number, ...ids] : ids;
  }

  /** Greedy completion of `prompt` up to EOS or maxTokens; returns the text after the prompt. */
  async complete(prompt: string, maxTokens: number): Promise<string> {
    return this.completeTokens(this.tokenizePrompt(prompt), maxTokens);
  }

  /** A sampled completion (temperature > 0, seeded): how a parent proposes candidates for verified sampling. */
  async sample(prompt: string, maxTokens: number, opts: SampleOptions): Promise<string> {
    return this.completeTokens(this.tokenizePrompt(prompt), maxTokens, opts);
  }

  async completeTokens(promptIds: number[], maxTokens: number, sampling?: SampleOptions): Promise<string> {
    if (this.closed) throw new Error("LlamaTeacher used after close()");
    await this.sequence.clearHistory();
    const out: number[] = [];
    const eos = this.model.tokens.eos;
    const how = sampling ? { temperature: sampling.temperature, seed: sampling.seed } : { temperature: 0 };
    if (maxTokens > 0) {
      for await (const token of this.sequence.evaluate(promptIds as never[], how)) {
        if (token === eos || this.model.isEogToken(token)) break;
        out.push(token as number);
        if (out.length >= maxTokens) break;
      }
    }
    return this.model.detokenize(out as never[]);
  }

  /**
   * Teacher distributions for a token sequence: row t is softmax(logits) of the token after
   * tokens[0..t], as a [T, vocab] row-major Float32Array.
   */
  async nextTokenDistributions(tokens: readonly number[]): Promise<Float32Array> {
    if (this.closed) throw new Error("LlamaTeacher used after close()");
    await this.sequence.clearHistory();
    const V = this.vocabSize;
    const out = new Float32Array(tokens.length * V);
    const results = await this.sequence.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }] as never));
    for (let t = 0; t < tokens.length; t++) {
      const logits = results[t]?.next.logits;
      if (!logits) throw new ColonyError(TrainErrors.TRAIN_DISTILL_TEACHER_FAILED, `llama.cpp returned no logits at position ${t}`);
      let max = -Infinity;
      for (const v of logits.values()) if (v > max) max = v;
      let sum = 0;
      const row = out.subarray(t * V, (t + 1) * V);
      for (const [id, v] of logits) {
        if (id >= V) continue;
        const e = Math.exp(v - max);
        row[id] = e;
        sum += e;
      }
      for (let i = 0; i < V; i++) row[i]! /= sum;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.context.dispose();
    await this.model.dispose();
  }
}
