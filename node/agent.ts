/**
 * One agent: a genome (model, prompt template, sampling, skills) and a life cycle
 * asleep -> loading -> awake <-> busy -> asleep. Asleep means its context is disposed and its share
 * of the model released (the runtime disposes the model when no awake agent uses it).
 */
import { z } from "zod";
import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { IdSchema } from "../common/protocol.ts";
import { ColonyError } from "../common/errors.ts";
import type { LlamaRuntime } from "./llama-runtime.ts";
import { NodeErrors } from "./errors.ts";

export const GenomeSchema = z.strictObject({
  id: IdSchema,
  parent: IdSchema.optional(),
  /** Local GGUF path (relative to the agents file) or an `hf:` URI. */
  model: z.string().min(1).max(512),
  kind: z.enum(["completion", "chat"]).default("completion"),
  /** `{prompt}` is replaced by the task's prompt. */
  promptTemplate: z.string().max(8192).refine((t) => t.includes("{prompt}"), "must contain {prompt}").default("{prompt}"),
  /** For chat agents. */
  systemPrompt: z.string().max(8192).optional(),
  sampling: z
    .strictObject({
      /** 0 = greedy (deterministic). */
      temperature: z.number().min(0).max(5).default(0),
      topK: z.number().int().min(0).max(1000).optional(),
      topP: z.number().min(0).max(1).optional(),
      seed: z.number().int().min(0).optional(),
    })
    .default({ temperature: 0 }),
  skills: z.array(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/)).max(64).default([]),
  /** Context size; default: the model's training context, capped at 2048. */
  contextSize: z.number().int().min(16).max(131072).optional(),
  /** Expected accuracy before the agent has a track record. Default 0.5. */
  accuracyPrior: z.number().min(0).max(1).default(0.5),
});
export type Genome = z.infer<typeof GenomeSchema>;

export type AgentState = "awake" | "asleep" | "busy" | "loading";

export interface GenerateOptions {
  maxTokens: number;
  signal?: AbortSignal | undefined;
  /** Called with each new piece of text. */
  onText?: ((text: string, tokens: number) => void) | undefined;
}

export interface GenerateResult {
  text: string;
  tokens: number;
  /** Time to the first generated token (prompt evaluation). */
  promptMs: number;
  generateMs: number;
  stopReason: string;
}

export class Agent {
  state: AgentState = "asleep";
  /** Epoch ms of the last task end or wake (LRU for sleeping). */
  lastUsed = 0;
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  private sequence: LlamaContextSequence | undefined;
  private transition: Promise<void> | undefined;

  /** `modelFile` is the resolved local path of genome.model. */
  constructor(readonly genome: Genome, readonly modelFile: string, private readonly runtime: LlamaRuntime, private readonly now: () => number = Date.now) {}

  get id(): string {
    return this.genome.id;
  }

  /** Loads (or shares) the model and creates this agent's context. Idempotent. */
  wake(): Promise<void> {
    if (this.state === "awake" || this.state === "busy") return Promise.resolve();
    this.transition ??= (async () => {
      this.state = "loading";
      try {
        this.model = await this.runtime.acquire(this.modelFile);
        try {
          this.context = await this.model.createContext({
            contextSize: this.genome.contextSize ?? Math.min(2048, this.model.trainContextSize),
            threads: this.runtime.threadsFor(this.modelFile),
            sequences: 1,
          });
        } catch (err) {
          await this.runtime.release(this.modelFile);
          this.model = undefined;
          throw new ColonyError(NodeErrors.MODEL_LOAD_FAILED, `cannot create a context for agent ${this.id}: ${(err as Error).message}`, undefined, { cause: err });
        }
        this.sequence = this.context.getSequence();
        this.state = "awake";
        this.lastUsed = this.now();
      } catch (err) {
        this.state = "asleep";
        throw err;
      } finally {
        this.transition = undefined;
      }
    })();
    return this.transition;
  }

  /** Frees the context and this agent's share of the model. Not while busy. */
  async sleep(): Promise<void> {
    if (this.transition) await this.transition.catch(() => {});
    if (this.state !== "awake") return;
    this.state = "asleep";
    const ctx = this.context;
    this.context = undefined;
    this.sequence = undefined;
    this.model = undefined;
    await ctx?.dispose();
    await this.runtime.release(this.modelFile);
  }

  /** Tokens the context holds (awake only). */
  get contextSize(): number {
    return this.context?.contextSize ?? 0;
  }

  /** Tokens of `text` with this agent's model (awake only); used by calibration. */
  tokenize(text: string): number {
    if (!this.model) throw new ColonyError(NodeErrors.MODEL_LOAD_FAILED, `agent ${this.id} is asleep`);
    return this.model.tokenize(text).length;
  }

  /**
   * Raw speed on this agent's context for calibration: evaluates `prompt` then greedily generates
   * `genTokens` tokens, ignoring EOS (a tiny model that answers in two tokens would otherwise
   * measure only per-call overhead).
   */
  async measure(prompt: string, genTokens: number): Promise<{ promptTokens: number; promptMs: number; genTokens: number; genMs: number }> {
    if (!this.sequence || !this.model || this.state !== "awake") throw new ColonyError(NodeErrors.GENERATION_FAILED, `agent ${this.id} is not awake`);
    this.state = "busy";
    try {
      await this.sequence.clearHistory();
      const tokens = this.model.tokenize(prompt);
      const t0 = performance.now();
      let t1 = 0;
      let n = 0;
      for await (const _ of this.sequence.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
        if (n === 0) t1 = performance.now();
        if (++n >= genTokens + 1) break;
      }
      const t2 = performance.now();
      await this.sequence.clearHistory();
      return { promptTokens: tokens.length, promptMs: t1 - t0, genTokens: Math.max(1, n - 1), genMs: Math.max(0.001, t2 - t1) };
    } finally {
      if (this.state === "busy") this.state = "awake";
    }
  }

  async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
    await this.wake();
    if (!this.sequence || this.state !== "awake") throw new ColonyError(NodeErrors.GENERATION_FAILED, `agent ${this.id} is not awake`);
    this.state = "busy";
    const text = this.genome.promptTemplate.replaceAll("{prompt}", prompt);
    const s = this.genome.sampling;
    const sampling = { temperature: s.temperature, ...(s.topK !== undefined ? { topK: s.topK } : {}), ...(s.topP !== undefined ? { topP: s.topP } : {}), ...(s.seed !== undefined ? { seed: s.seed } : {}) };
    const start = performance.now();
    let first = 0;
    let tokens = 0;
    let out = "";
    const onToken = (t: readonly unknown[]) => {
      if (tokens === 0) first = performance.now();
      tokens += t.length;
    };
    const onTextChunk = (chunk: string) => {
      out += chunk;
      opts.onText?.(chunk, tokens);
    };
    try {
      const { LlamaCompletion, LlamaChatSession } = await import("node-llama-cpp");
      // Each task starts from an empty sequence: no state leaks between tasks or submitters.
      await this.sequence.clearHistory();
      let stopReason = "unknown";
      // Tiny models have tiny contexts (the seed models: 32 tokens): never ask past the end of it.
      const room = (this.context?.contextSize ?? 0) - this.tokenize(text) - 1;
      const maxTokens = Math.max(1, Math.min(opts.maxTokens, room));
      if (this.genome.kind === "completion") {
        const completion = new LlamaCompletion({ contextSequence: this.sequence });
        const r = await completion.generateCompletionWithMeta(text, { ...sampling, maxTokens, signal: opts.signal, stopOnAbortSignal: true, onToken, onTextChunk });
        stopReason = r.metadata.stopReason;
        out = r.response;
      } else {
        const session = new LlamaChatSession({ contextSequence: this.sequence, autoDisposeSequence: false, ...(this.genome.systemPrompt ? { systemPrompt: this.genome.systemPrompt } : {}) });
        try {
          const r = await session.promptWithMeta(text, { ...sampling, maxTokens, signal: opts.signal, stopOnAbortSignal: true, onToken, onTextChunk });
          stopReason = r.stopReason;
          out = r.responseText;
        } finally {
          session.dispose({ disposeSequence: false });
        }
      }
      const end = performance.now();
      const promptMs = (first || end) - start;
      return { text: out, tokens, promptMs, generateMs: end - (first || end), stopReason };
    } catch (err) {
      if (err instanceof ColonyError) throw err;
      throw new ColonyError(NodeErrors.GENERATION_FAILED, `agent ${this.id} failed to generate: ${(err as Error).message}`, undefined, { cause: err });
    } finally {
      if (this.state === "busy") this.state = "awake";
      this.lastUsed = this.now();
    }
  }
}
