/**
 * Measures what a model costs on this device with the configured threads: cold load (model +
 * context), prompt tokens/s and generation tokens/s. Stored in LevelDB keyed by model file
 * (path, size, mtime) and thread count, so a restart reuses it and a new file is measured again.
 */
import { stat } from "node:fs/promises";
import os from "node:os";
import type { Level } from "level";
import type { Logger } from "../common/logger.ts";
import type { Agent } from "./agent.ts";
import type { Calibration } from "./cost-model.ts";

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
 * Calibrates through an asleep agent of the model: wake (timed = load + context), a greedy
 * generation of GEN_TOKENS tokens (time to first token = prompt, the rest = generation), sleep.
 * Resident size is the RSS the wake added (a floor: mmap'd weights count once touched).
 */
export async function calibrate(agent: Agent, threads: number, logger: Logger): Promise<Calibration> {
  const wasAwake = agent.state !== "asleep";
  if (wasAwake) await agent.sleep();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  await agent.wake();
  const loadMs = performance.now() - t0;
  const residentMB = Math.max(0, (process.memoryUsage().rss - rss0) / 2 ** 20);
  try {
    const promptTokens = agent.tokenize(PROMPT);
    const r = await agent.generate(PROMPT, { maxTokens: GEN_TOKENS });
    const genTokens = Math.max(1, r.tokens - 1);
    const c: Calibration = {
      loadMs,
      promptTokensPerS: promptTokens / Math.max(0.001, r.promptMs / 1000),
      genTokensPerS: r.tokens > 1 ? genTokens / Math.max(0.001, r.generateMs / 1000) : promptTokens / Math.max(0.001, r.promptMs / 1000),
      threads,
      charsPerToken: PROMPT.length / Math.max(1, promptTokens),
      residentMB,
      at: Date.now(),
    };
    logger.info({ agentId: agent.id, model: agent.modelFile, ...c, host: os.hostname() }, "calibrated");
    return c;
  } finally {
    if (!wasAwake) await agent.sleep();
  }
}
