/**
 * The genome: everything that makes an agent what it is, shared by the node (which hosts it), the
 * coordinator (which keeps records about it) and, next, evolution (which varies it) and the
 * collective mind (which gives it a new model). Validated where it enters: an agents file, a seed
 * manifest, later a spawn command.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { IdSchema, SkillSchema } from "./protocol/primitives.ts";
import { stableJson } from "./stable-json.ts";

/** An accuracy claim: one figure for every skill, or one per skill (skills not listed claim nothing). */
export const AccuracyClaimSchema = z.union([z.number().min(0).max(1), z.record(SkillSchema, z.number().min(0).max(1))]);

export const SamplingSchema = z.strictObject({
  /** 0 = greedy (deterministic). */
  temperature: z.number().min(0).max(5).default(0),
  topK: z.number().int().min(0).max(1000).optional(),
  topP: z.number().min(0).max(1).optional(),
  seed: z.number().int().min(0).optional(),
});

export const GenomeSchema = z.strictObject({
  id: IdSchema,
  parent: IdSchema.optional(),
  /**
   * Local GGUF path (relative to the agents file) or an `hf:` URI; `#sha256=<hex>` pins its content
   * (node/llama/model-ref.ts), and lets a node that already holds that content use it under any path.
   */
  model: z.string().min(1).max(512),
  /** A LoRA adapter GGUF on `model` (same reference forms), applied when the agent's context is made. */
  adapter: z.string().min(1).max(512).optional(),
  kind: z.enum(["completion", "chat"]).default("completion"),
  /** `{prompt}` is replaced by the task's prompt. */
  promptTemplate: z.string().max(8192).refine((t) => t.includes("{prompt}"), "must contain {prompt}").default("{prompt}"),
  /** For chat agents. */
  systemPrompt: z.string().max(8192).optional(),
  sampling: SamplingSchema.default({ temperature: 0 }),
  skills: z.array(SkillSchema).max(64).default([]),
  /** Context size; default: the model's training context, capped at 2048. */
  contextSize: z.number().int().min(16).max(131072).optional(),
  /**
   * What the agent claims before it has a record: a number for every skill or `{skill: accuracy}`
   * (a seed model's held-out figures). Sent as the bid's `accuracy`; the coordinator caps what a
   * claim may add (docs/scoring.md). Default 0.5.
   */
  accuracyPrior: AccuracyClaimSchema.default(0.5),
});
export type Genome = z.infer<typeof GenomeSchema>;

/** The claim for one skill (a task without a skill: the lowest claim of any skill). */
export function claimFor(genome: Pick<Genome, "accuracyPrior">, skill: string | undefined): number {
  const c = genome.accuracyPrior;
  if (typeof c === "number") return c;
  if (skill !== undefined) return c[skill] ?? 0.5;
  const all = Object.values(c);
  return all.length ? Math.min(...all) : 0.5;
}

/**
 * The genome's identity for records: sha256 of its content without `id` and `parent` (two agents
 * with the same genome are the same kind of agent, whatever they are called). Today `model` is the
 * model's reference as written (path or URI); once models are signed it becomes a content hash.
 */
export function genomeHash(genome: Genome): string {
  const { id: _id, parent: _parent, ...content } = genome;
  return createHash("sha256").update(stableJson(content)).digest("hex");
}
