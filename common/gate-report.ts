/**
 * The distillation gate's report (issue 10): how a distilled child did against each of its parents
 * on a held-out set it was never trained on. Written by the gate (coordinator/mind/), carried in the
 * child's signed model manifest (common/model-manifest.ts), shown by `colony models list`.
 *
 * An accuracy is `ok / n` with a 95% Wilson interval [lo, hi] (wilson() below), so a reader sees how
 * much a 1-point difference on 200 instances is worth.
 */
import { z } from "zod";
import { IdSchema, SkillSchema } from "./protocol/primitives.ts";

export const AccuracySchema = z.strictObject({
  ok: z.number().int().min(0),
  n: z.number().int().min(0),
  /** ok / n (0 when n = 0). */
  acc: z.number().min(0).max(1),
  /** 95% Wilson score interval. */
  lo: z.number().min(0).max(1),
  hi: z.number().min(0).max(1),
});
export type Accuracy = z.infer<typeof AccuracySchema>;

export const GateSkillSchema = z.strictObject({
  skill: SkillSchema,
  child: AccuracySchema,
  /** Every parent on this skill (also parents that do not claim it: the union is what the child must serve). */
  parents: z.array(z.strictObject({ agentId: IdSchema, accuracy: AccuracySchema })).max(16),
  /** The best parent's accuracy on this skill. */
  best: z.number().min(0).max(1),
});

export const GateReportSchema = z.strictObject({
  /** Where the held-out instances came from: fresh generator instances, or a reserved slice of verified experiences. */
  heldOut: z.strictObject({ source: z.enum(["generator", "experiences"]), perSkill: z.number().int().min(1), seed: z.string().max(128) }),
  /** Largest drop (in accuracy, 0.01 = 1 point) allowed on any skill against its best parent. */
  margin: z.number().min(0).max(1),
  skills: z.array(GateSkillSchema).min(1).max(64),
  /** The child's accuracy over the union of skills against the best parent's over the same instances. */
  union: z.strictObject({ child: z.number().min(0).max(1), bestParent: z.number().min(0).max(1) }),
  passed: z.boolean(),
  /** Plain words: why it passed or each reason it failed. */
  reasons: z.array(z.string().max(512)).max(64),
});
export type GateReport = z.infer<typeof GateReportSchema>;

/** 95% Wilson score interval for ok successes out of n. */
export function wilson(ok: number, n: number, z95 = 1.959963984540054): Accuracy {
  if (n === 0) return { ok: 0, n: 0, acc: 0, lo: 0, hi: 1 };
  const p = ok / n;
  const z2 = z95 * z95;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { ok, n, acc: p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}
