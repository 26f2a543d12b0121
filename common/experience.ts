/**
 * One experience: a finished attempt as the cold cache keeps it (coordinator/mind/experiences.ts)
 * and as `colony experience export` writes it, one JSON object per line. The distillation job reads
 * the same lines (trainer/distil/), so this schema is the contract between them.
 */
import { z } from "zod";
import { IdSchema, Sha256Schema } from "./protocol/primitives.ts";

export const ExperienceSchema = z.strictObject({
  taskId: IdSchema,
  attempt: z.number().int().min(1),
  /** The task's skill key: its skill, or for an unlabeled task the niche it was put in ("~c3"), or "*". */
  skill: z.string().min(1).max(64),
  prompt: z.string().max(48 * 1024),
  /** What the agent answered ("" for an attempt that failed before delivering). */
  output: z.string().max(256 * 1024),
  verdict: z.strictObject({
    success: z.boolean(),
    /** check: a machine check; delivery: delivered without a check; feedback: the submitter's word; failure: no output. */
    source: z.enum(["check", "delivery", "feedback", "failure"]),
  }),
  cost: z.strictObject({
    energyJ: z.number().min(0).optional(),
    tokens: z.number().int().min(0).optional(),
    promptMs: z.number().min(0).optional(),
    generateMs: z.number().min(0).optional(),
  }),
  agentId: IdSchema,
  nodeId: IdSchema,
  genome: Sha256Schema.optional(),
  /** The submitter (MQTT username): whose word a feedback verdict is. */
  submitter: z.string().max(256),
  /** A private task's experience: never sent to a trainer node (docs/mind.md, "Trainer nodes"). */
  private: z.literal(true).optional(),
  /** Coordinator clock, ms since the epoch, when the attempt finished. */
  at: z.number().int().min(0),
});
export type Experience = z.infer<typeof ExperienceSchema>;

/** A verified success: a machine check or the submitter's feedback said it was right (a bare delivery is not proof). */
export function isVerifiedSuccess(e: Pick<Experience, "verdict">): boolean {
  return e.verdict.success && (e.verdict.source === "check" || e.verdict.source === "feedback");
}
