/**
 * One agent: a genome (model, prompt template, sampling, skills) and a life cycle
 * asleep -> loading -> awake <-> busy -> asleep. Asleep means its context is disposed and its share
 * of the model released (the runtime disposes the model when no awake agent uses it).
 */
import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { claimFor, genomeHash, type Genome } from "../../common/genome.ts";
import { generationBudget } from "../cost-model.ts";
import { NodeErrors } from "../errors.ts";
import type { LlamaRuntime, ModelFacts } from "../llama/llama-runtime.ts";

export type { Genome };

/** Context size when neither the genome nor the model says (and the cap on a model's own). */
const DEFAULT_CONTEXT = 2048;


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

/** How an agent came to be on this node, beyond its genome. */
export interface AgentOrigin {
  /** Generation in its lineage: 0 for the agents file, the spawn command's lineage tag otherwise. */
  generation?: number | undefined;
  /** The genome's LoRA adapter, resolved to a local file (and its pin), applied at every wake. */
  adapter?: { file: string; sha256?: string | undefined } | undefined;
}

export class Agent {
  state: AgentState = "asleep";
  readonly generation: number;
  private readonly adapter: AgentOrigin["adapter"];
  /** Epoch ms of the last task end or wake (LRU for sleeping). */
  lastUsed = 0;
  /** sha256 of the genome: what the coordinator's records are about. */
  readonly genomeHash: string;
  private loaded: LlamaModel | undefined;
  private context: LlamaContext | undefined;
  private sequence: LlamaContextSequence | undefined;
  private transition: Promise<void> | undefined;
  /** One task at a time per agent (one sequence): the tail of the queue of tasks waiting for it. */
  private turn: Promise<void> = Promise.resolve();

  /** `model` is the verified local file of genome.model. */
  constructor(readonly genome: Genome, readonly model: ModelFacts, private readonly runtime: LlamaRuntime, private readonly now: () => number = Date.now, origin: AgentOrigin = {}) {
    this.genomeHash = genomeHash(genome);
    this.generation = origin.generation ?? 0;
    this.adapter = origin.adapter;
  }

  get id(): string {
    return this.genome.id;
  }

  get modelFile(): string {
    return this.model.file;
  }

  /** The local file of the genome's adapter, if it has one. */
  get adapterFile(): string | undefined {
    return this.adapter?.file;
  }

  /** Tokens of this agent's context, known before it wakes: the genome's, else the model's training context (capped). */
  get contextSize(): number {
    return this.genome.contextSize ?? Math.min(DEFAULT_CONTEXT, this.model.trainContext ?? DEFAULT_CONTEXT);
  }

  /** The accuracy the agent claims for a skill (its genome's), sent in bids; never a record. */
  claim(skill: string | undefined): number {
    return claimFor(this.genome, skill);
  }

  /** The prompt as this agent's model sees it (the genome's template around the task's prompt). */
  render(prompt: string): string {
    return this.genome.promptTemplate.replaceAll("{prompt}", prompt);
  }

  /** Threads this agent's context runs with: its model's calibrated count (one source: the calibration store). */
  get threads(): number {
    return this.runtime.threadsFor(this.modelFile);
  }

  /**
   * Runs `fn` when every task given to this agent before it has finished: an agent has one sequence,
   * so a second award for a busy agent waits its turn (no polling).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.turn;
    let release!: () => void;
    this.turn = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Loads (or shares) the model and creates this agent's context. Idempotent. `threads` overrides the model's (calibration measures both). */
  wake(opts: { threads?: number } = {}): Promise<void> {
    if (this.state === "awake" || this.state === "busy") return Promise.resolve();
    this.transition ??= (async () => {
      this.state = "loading";
      try {
        this.loaded = await this.runtime.acquire(this.modelFile);
        try {
          const lora = await this.loraOption();
          this.context = await this.loaded.createContext({
            contextSize: this.contextSize,
            threads: opts.threads ?? this.threads,
            sequences: 1,
            ...lora,
          });
        } catch (err) {
          await this.runtime.release(this.modelFile);
          this.loaded = undefined;
          if (err instanceof ColonyError) throw err;
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

  /**
   * The adapter's verified copy, checked again against the model at every wake (either file may
   * have changed since the spawn); node-llama-cpp keeps it in the model's memory until the model is disposed.
   */
  private async loraOption(): Promise<{ lora?: { adapters: { filePath: string; scale: number }[] } }> {
    if (!this.adapter) return {};
    const base = await this.runtime.verify(this.modelFile);
    const v = await this.runtime.verifyAdapter(this.adapter.file, this.adapter.sha256, base);
    return { lora: { adapters: [{ filePath: v.verifiedFile, scale: 1 }] } };
  }

  /** Frees the context and this agent's share of the model. Not while busy. */
  async sleep(): Promise<void> {
    if (this.transition) await this.transition.catch(() => {});
    if (this.state !== "awake") return;
    this.state = "asleep";
    const ctx = this.context;
    this.context = undefined;
    this.sequence = undefined;
    this.loaded = undefined;
    await ctx?.dispose();
    await this.runtime.release(this.modelFile);
  }

  /** Tokens of `text` with this agent's model (awake only); used by calibration. */
  tokenize(text: string): number {
    if (!this.loaded) throw new ColonyError(NodeErrors.MODEL_LOAD_FAILED, `agent ${this.id} is asleep`);
    return this.loaded.tokenize(text).length;
  }

  /**
   * Raw speed on this agent's context for calibration: evaluates `prompt` then greedily generates
   * `genTokens` tokens, ignoring EOS (a tiny model that answers in two tokens would otherwise
   * measure only per-call overhead).
   */
  async measure(prompt: string, genTokens: number): Promise<{ promptTokens: number; promptMs: number; genTokens: number; genMs: number }> {
    if (!this.sequence || !this.loaded || this.state !== "awake") throw new ColonyError(NodeErrors.GENERATION_FAILED, `agent ${this.id} is not awake`);
    this.state = "busy";
    try {
      await this.sequence.clearHistory();
      const tokens = this.loaded.tokenize(prompt);
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
    const text = this.render(prompt);
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
      // Tiny models have tiny contexts (the seed models: 32 tokens): never ask past the end of it,
      // and refuse a prompt that leaves no room (it used to return "ok" with an empty output).
      // The agent's own limit (the genome's, or the model's training context), which its bids price:
      // llama.cpp may pad the context it allocates beyond it.
      const promptTokens = this.tokenize(text);
      const contextSize = this.contextSize;
      if (promptTokens + 1 >= contextSize) throw new ColonyError(NodeErrors.PROMPT_EXCEEDS_CONTEXT, `the prompt is ${promptTokens} tokens; agent ${this.id}'s context holds ${contextSize}`);
      const maxTokens = generationBudget(opts.maxTokens, promptTokens, contextSize);
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
