/**
 * The collective mind's settings: the `mind` object of the coordinator's config (docs/mind.md).
 * A request (`colony distil`) may override steps, sampling and the gate for its own job.
 */
import { availableParallelism } from "node:os";
import { z } from "zod";

export const MindSettingsSchema = z.strictObject({
  /** Run distillation jobs at all (the architect's `distil` decisions and `colony distil`). */
  enabled: z.boolean().default(true),
  /**
   * CPU threads of a job's trainer and llama.cpp. Default: all cores but one, so the coordinator's
   * event loop and a local node keep a core while a job trains.
   */
  threads: z.number().int().min(1).max(256).default(Math.max(1, availableParallelism() - 1)),
  /** Optimizer steps of a job (a warm-started child; docs/distil-bench.md measures what a skill needs). */
  steps: z.number().int().min(1).max(1_000_000).default(300),
  batch: z.number().int().min(1).max(4096).default(32),
  /** Verified successes read from the cold cache per parent and skill (the newest). */
  maxExperiencesPerSkill: z.number().int().min(1).max(1_000_000).default(2000),
  /** A job whose parents have fewer verified successes than this on a skill fails before training (MIND_TOO_FEW_EXPERIENCES). */
  minExperiencesPerSkill: z.number().int().min(0).max(1_000_000).default(20),
  /** Held-out instances per skill for the gate, and the largest drop allowed against the best parent (0.01 = 1 point). */
  gatePerSkill: z.number().int().min(1).max(100_000).default(200),
  margin: z.number().min(0).max(1).default(0.01),
  /**
   * Verified sampling for skills with a machine check: each parent answers `prompts` fresh
   * training-split prompts per skill, `candidates` times at `temperature`; answers the check accepts
   * become training pairs. On by default: a few dozen verified successes in the cold cache are too
   * few to fine-tune on without forgetting (docs/mind.md); `false` turns it off.
   */
  sampling: z
    .union([z.literal(false), z.strictObject({ candidates: z.number().int().min(1).max(64), temperature: z.number().gt(0).max(5), prompts: z.number().int().min(0).max(100_000) })])
    .default({ candidates: 2, temperature: 0.7, prompts: 300 }),
  /**
   * Where jobs train (docs/mind.md, "Trainer nodes"): "best" asks the online nodes that offer the
   * `trainer` capability for a quote and gives the job to the fastest quote, this host included
   * (priced from its own measured speed); "coordinator" always trains here; "nodes" prefers the
   * fastest trainer node and trains here only when none quotes.
   */
  trainOn: z.enum(["best", "coordinator", "nodes"]).default("best"),
  /** How long trainer nodes have to quote. */
  quoteWindowMs: z.number().int().min(100).max(60_000).default(3000),
  /** A trainer node offline longer than this loses its job (the coordinator trains it instead). */
  trainerOfflineMs: z.number().int().min(1000).max(24 * 3600_000).default(120_000),
  /** Finished jobs kept in the store; the newest 20 are on the retained `mind/jobs` topic. */
  keepJobs: z.number().int().min(1).max(100_000).default(200),
});
export type MindSettings = z.infer<typeof MindSettingsSchema>;
