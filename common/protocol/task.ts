/** The submitter surface: submit, feedback, task events and the one final result. */
import { z } from "zod";
import { EnergySourceSchema, IdSchema, MAX_TOKENS_LIMIT, ReplyTopicSchema, SkillSchema, WireErrorSchema } from "./primitives.ts";
import { BidEstimateSchema } from "./market.ts";

export const CheckSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("exact"), value: z.string().max(8192), trim: z.boolean().optional() }),
  z.strictObject({ type: z.literal("regex"), pattern: z.string().min(1).max(1024), flags: z.string().regex(/^[imsu]*$/).optional() }),
  z.strictObject({ type: z.literal("json-schema"), schema: z.record(z.string(), z.unknown()) }),
]);
export type Check = z.infer<typeof CheckSchema>;

/** Relative weights of the score terms (see docs/scoring.md); missing ones take the defaults. */
export const WeightsSchema = z.strictObject({
  accuracy: z.number().min(0).max(100).optional(),
  latency: z.number().min(0).max(100).optional(),
  energy: z.number().min(0).max(100).optional(),
});

/**
 * Objects are strict: unknown fields are rejected, so a typo in a submitter's payload is an error
 * with a code instead of a silently ignored option.
 */
export const SubmitSchema = z.strictObject({
  /** Chosen by the submitter (so it can subscribe first) or by the coordinator. */
  id: IdSchema.optional(),
  prompt: z.string().min(1).max(48 * 1024),
  skill: SkillSchema.optional(),
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).optional(),
  /** Time budget from acceptance to result, in ms. */
  deadlineMs: z.number().int().min(100).max(24 * 3600 * 1000).optional(),
  minAccuracy: z.number().min(0).max(1).optional(),
  check: CheckSchema.optional(),
  replyTo: ReplyTopicSchema.optional(),
  weights: WeightsSchema.optional(),
  /**
   * Announce only to the nodes that can bid (an agent with the task's skill), each on its own topic,
   * instead of on the market topic every node reads. Default: the coordinator's `privateAnnounces`.
   */
  private: z.boolean().optional(),
  /**
   * `false`: the task opts out of learning; none of its attempts is kept as an experience in the
   * coordinator's cold cache (docs/mind.md), so it is never exported or trained on. Default true.
   */
  learn: z.boolean().optional(),
});
export type Submit = z.infer<typeof SubmitSchema>;

export const FeedbackSchema = z.strictObject({
  success: z.boolean(),
  score: z.number().min(0).max(1).optional(),
});
export type Feedback = z.infer<typeof FeedbackSchema>;

/** `tasks/{id}/get`: `{}` (an empty payload is read as `{}`, for `mosquitto_pub -n`). */
export const TaskGetSchema = z.strictObject({});

export const AttemptSchema = z.strictObject({
  attempt: z.number().int().min(1),
  nodeId: IdSchema.optional(),
  agentId: IdSchema.optional(),
  outcome: z.string().max(64),
  error: WireErrorSchema.optional(),
});

export const TaskEventSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("accepted"), id: IdSchema, at: z.number() }),
  z.strictObject({ type: z.literal("rejected"), id: z.string().max(256), at: z.number(), error: WireErrorSchema }),
  z.strictObject({ type: z.literal("announced"), id: IdSchema, at: z.number(), attempt: z.number().int(), auctionId: IdSchema }),
  z.strictObject({
    type: z.literal("awarded"),
    id: IdSchema,
    at: z.number(),
    attempt: z.number().int(),
    auctionId: IdSchema,
    nodeId: IdSchema,
    agentId: IdSchema,
    score: z.number(),
    bid: BidEstimateSchema,
    bids: z.number().int(),
  }),
  z.strictObject({ type: z.literal("retry"), id: IdSchema, at: z.number(), attempt: z.number().int(), error: WireErrorSchema }),
  z.strictObject({ type: z.literal("progress"), id: IdSchema, at: z.number(), attempt: z.number().int(), tokens: z.number().int(), text: z.string().max(65536) }),
]);
export type TaskEvent = z.infer<typeof TaskEventSchema>;

export const ResultSchema = z.strictObject({
  id: IdSchema,
  status: z.enum(["ok", "error"]),
  output: z.string().optional(),
  error: WireErrorSchema.optional(),
  /** Verdict of the task's check, when it had one. */
  checked: z.boolean().optional(),
  agentId: IdSchema.optional(),
  nodeId: IdSchema.optional(),
  attempts: z.array(AttemptSchema),
  timings: z.strictObject({
    acceptedAt: z.number(),
    finishedAt: z.number(),
    totalMs: z.number(),
    generateMs: z.number().optional(),
    /**
     * Where the time went, in ms, for the delivering attempt (coordinator/market/phases.ts,
     * docs/protocol.md "Phases"): the coordinator's steps and the node's own split.
     */
    phases: z
      .strictObject({
        intakeMs: z.number(), announceMs: z.number(), biddingMs: z.number(), decideMs: z.number(), ackMs: z.number(), runMs: z.number(), checkMs: z.number(),
        queueMs: z.number(), wakeMs: z.number(), promptMs: z.number(), generateMs: z.number(), nodeMs: z.number(),
      })
      .partial()
      .optional(),
  }),
  /** What the delivering attempt cost, as the node measured it; `energySource` says how the joules were obtained. */
  cost: z.strictObject({ energyJ: z.number().optional(), energySource: EnergySourceSchema.optional(), tokens: z.number().int().optional() }).optional(),
});
export type Result = z.infer<typeof ResultSchema>;
