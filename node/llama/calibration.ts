/**
 * Measures what a model costs on this device: cold load (model + context), prompt tokens/s and
 * generation tokens/s, at the thread count that generates fastest. Stored in LevelDB keyed by model
 * file (path, size, mtime) and the node's maximum thread count, so a restart reuses it and a new
 * file is measured again.
 */
import { stat } from "node:fs/promises";
import os from "node:os";
import type { Level } from "level";
import type { Logger } from "../../common/logger.ts";
import type { Agent } from "../agents/agent.ts";
import type { Calibration } from "../cost-model.ts";
import type { LlamaRuntime } from "./llama-runtime.ts";

// A prompt of ordinary characters (every char-level seed tokenizer has them) long enough that
// prompt evaluation is measurable on tiny models.
const PROMPT = "the quick brown fox jumps over the lazy dog 0123456789 ".repeat(4).trim();
const GEN_TOKENS = 48;

export class CalibrationStore {
  private readonly db;
  private readonly cache = new Map<string, Calibration>();

  constructor(db: Level<string, unknown>) {
    this.db = db.sublevel<string, Calibration>("cal", { valueEncoding: "json" });
  }

  static async keyFor(file: string, threads: number): Promise<string> {
    const s = await stat(file);
    return `${file}|${s.size}|${Math.round(s.mtimeMs)}|${threads}`;
  }

  async load(file: string, threads: number): Promise<Calibration | undefined> {
    const key = await CalibrationStore.keyFor(file, threads);
    const v = await this.db.get(key);
    if (v) this.cache.set(file, v);
    return v;
  }

  /** Synchronous read for the bid path. */
  get(file: string): Calibration | undefined {
    return this.cache.get(file);
  }

  async put(file: string, threads: number, c: Calibration): Promise<void> {
    this.cache.set(file, c);
    await this.db.put(await CalibrationStore.keyFor(file, threads), c);
  }
}

/**
 * Calibrates at 1 thread and at the runtime's maximum and keeps the faster generation: its thread
 * count becomes the model's (the store is the one source the runtime and the cost model read).
 * Measured here: a 0.6 MB seed model made 1600 tok/s with 1 thread and 6-12 tok/s with 2 threads
 * on 2 busy cores (threads spin-wait on each other); bigger models gain from more threads on idle
 * cores.
 */
export async function calibrateBest(agent: Agent, runtime: LlamaRuntime, logger: Logger): Promise<Calibration> {
  const candidates = [...new Set([1, runtime.threads])];
  let best: Calibration | undefined;
  const tried: Array<{ threads: number; genTokensPerS: number }> = [];
  for (const t of candidates) {
    const c = await calibrate(agent, t, logger);
    tried.push({ threads: t, genTokensPerS: Math.round(c.genTokensPerS * 10) / 10 });
    if (!best || c.genTokensPerS > best.genTokensPerS) best = { ...c, loadMs: Math.min(c.loadMs, best?.loadMs ?? Infinity) };
  }
  // One line per model: the measurement it keeps, and what each thread count made.
  logger.info({ agentId: agent.id, model: agent.modelFile, ...best!, tried, host: os.hostname() }, "calibrated");
  return best!;
}

/**
 * One measurement through an asleep agent of the model, with `threads` threads: wake (timed =
 * load + context), evaluate a prompt and generate up to GEN_TOKENS tokens greedily
 * (Agent.measure), sleep. Resident size is the RSS the wake added (a floor: mmap'd weights count
 * once touched).
 */
export async function calibrate(agent: Agent, threads: number, logger: Logger): Promise<Calibration> {
  const wasAwake = agent.state !== "asleep";
  if (wasAwake) await agent.sleep();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  await agent.wake({ threads });
  const loadMs = performance.now() - t0;
  const residentMB = Math.max(0, (process.memoryUsage().rss - rss0) / 2 ** 20);
  try {
    // Seed models have 32-token contexts: the prompt takes up to half of it, generation the rest.
    const ctx = agent.contextSize;
    let prompt = PROMPT;
    while (prompt.length > 4 && agent.tokenize(prompt) > ctx / 2) prompt = prompt.slice(0, Math.floor(prompt.length * 0.75)).trim();
    const m = await agent.measure(prompt, Math.max(2, Math.min(GEN_TOKENS, Math.floor(ctx / 2) - 1)));
    const c: Calibration = {
      loadMs,
      promptTokensPerS: m.promptTokens / Math.max(0.001, m.promptMs / 1000),
      genTokensPerS: m.genTokens / (m.genMs / 1000),
      threads,
      charsPerToken: prompt.length / Math.max(1, m.promptTokens),
      residentMB,
      at: Date.now(),
    };
    logger.debug({ agentId: agent.id, model: agent.modelFile, ...c }, "calibration run");
    return c;
  } finally {
    // Asleep again, whatever it was: the next wake uses the model's calibrated thread count.
    await agent.sleep();
  }
}
