/**
 * The architect's and evolution's settings: the `evolution` object of the coordinator's config file
 * (coordinator/config.ts reads it; docs/evolution.md documents each key). Defaults suit a home fleet
 * whose demand changes over hours: one-hour windows, a few changes per hour at most.
 */
import { z } from "zod";

const HOUR = 3600_000;

export const OperatorSchema = z.enum(["sampling", "fewshot", "adapter", "distilled"]);
export const DecisionKindSchema = z.enum(["spawn", "retire", "wake", "distil"]);

export const EvolutionSettingsSchema = z.strictObject({
  /** How often the architect plans. */
  intervalMs: z.number().int().min(100).max(24 * HOUR).default(60_000),
  /** Plan and publish, never act (also `colony coordinator --architect-dry-run`). */
  dryRun: z.boolean().default(false),
  /** The decision kinds the architect carries out; others are reported as held back. distil hands a skill to the collective mind (docs/mind.md). */
  kinds: z.array(DecisionKindSchema).max(4).default(["spawn", "retire", "wake", "distil"]),
  /** The window of wins, demand and dominance. */
  windowMs: z.number().int().min(1000).default(HOUR),
  /** Trials in a niche before an agent is judged there (dominance, parenthood). */
  minTrials: z.number().int().min(1).default(20),
  /** How much better (success, 0..1) a dominating agent must be. */
  margin: z.number().min(0).max(1).default(0.05),
  /** Windows an agent must stay dominated before it retires. */
  dominatedWindows: z.number().min(0).max(1000).default(1),
  /** An agent that won nothing this long (and is the best at nothing) retires. */
  idleRetireMs: z.number().int().min(1000).default(24 * HOUR),
  /** Tasks per window per serving agent that call for a child. */
  spawnDemandPerAgent: z.number().min(1).default(30),
  /** Success a parent needs in the niche. */
  spawnMinSuccess: z.number().min(0).max(1).default(0.7),
  maxChildrenPerParent: z.number().int().min(0).max(64).default(2),
  /** Living agents in the whole fleet (nodes also refuse beyond their own maxAgents). */
  fleetMaxAgents: z.number().int().min(1).max(100_000).default(64),
  spawnsPerHour: z.number().int().min(0).default(4),
  retiresPerHour: z.number().int().min(0).default(4),
  wakesPerHour: z.number().int().min(0).default(6),
  /** Variation operators the architect may use (fewshot is opt-in: it confuses tiny models). */
  operators: z.array(OperatorSchema).min(1).max(4).default(["sampling", "adapter", "distilled"]),
  /** A node that refused a spawn is not asked again for that parent within this time. */
  refusalCooldownMs: z.number().int().min(0).default(HOUR),
  keepWarmRatio: z.number().min(1).default(2),
  /** Tasks of a skill seen before its daily pattern is trusted. */
  keepWarmMinTasks: z.number().int().min(0).default(100),
});
export type EvolutionSettings = z.infer<typeof EvolutionSettingsSchema>;
