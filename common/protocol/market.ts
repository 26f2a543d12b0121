/**
 * The market surface between the coordinator and node daemons: announce, bid, award, ack,
 * progress, done, cancel and verdict. Times named `...At` are epoch ms on the COORDINATOR's clock;
 * `sentAt` is that clock when the message left, so a node converts them to its own clock
 * (`at - sentAt + receivedAt`) and a node whose clock is off by minutes still meets every window
 * (docs/protocol.md, "Clocks").
 */
import { z } from "zod";
import { DeviceStateSchema, EnergySourceSchema, IdSchema, MAX_TOKENS_LIMIT, NicheSchema, SkillSchema, WireErrorSchema } from "./primitives.ts";

export const BidEstimateSchema = z.strictObject({
  /** Expected ms from award to result: queue + wake (if asleep) + prompt + generation. */
  latencyMs: z.number().min(0).max(1e9),
  /** Expected energy in joules (the profile's power model x time at the model's thread count). */
  energyJ: z.number().min(0).max(1e9),
  /**
   * The agent's CLAIM for the skill, in [0,1]: its genome's stated accuracy (e.g. a seed model's
   * held-out figure), never a record of verdicts. The coordinator owns the track record and lets a
   * claim add at most a capped prior (docs/scoring.md).
   */
  accuracy: z.number().min(0).max(1),
  /** Wake cost included in latencyMs, 0 if awake. */
  wakeMs: z.number().min(0).max(1e9).optional(),
  queueMs: z.number().min(0).max(1e9).optional(),
});

export const AnnounceSchema = z.strictObject({
  auctionId: IdSchema,
  taskId: IdSchema,
  attempt: z.number().int().min(1),
  prompt: z.string().max(48 * 1024),
  skill: SkillSchema.optional(),
  /**
   * Only for a task without a skill: the niche the coordinator inferred from its prompt. A node
   * picks among its agents with their records for it (docs/scoring.md, "Tasks without a skill").
   */
  niche: NicheSchema.optional(),
  /** Resolved once, when the task was accepted (the submit's value or the coordinator's default). */
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  /** When the result is due (coordinator clock). */
  deadlineAt: z.number(),
  minAccuracy: z.number().min(0).max(1).optional(),
  /** After this, bids are ignored (coordinator clock). */
  closesAt: z.number(),
  /** The coordinator's clock when this announce was sent. */
  sentAt: z.number(),
  /**
   * Agents that must not bid (sitting out a penalty, or already failed this task), each named with
   * its node: two nodes may host agents of the same id. The coordinator also ignores their bids.
   */
  excludedAgents: z.array(z.strictObject({ nodeId: IdSchema, agentId: IdSchema })).max(1024).optional(),
});
export type Announce = z.infer<typeof AnnounceSchema>;

export const BidSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("bid"),
    auctionId: IdSchema,
    taskId: IdSchema,
    nodeId: IdSchema,
    agentId: IdSchema,
    estimate: BidEstimateSchema,
    device: DeviceStateSchema.optional(),
  }),
  z.strictObject({
    type: z.literal("decline"),
    auctionId: IdSchema,
    taskId: IdSchema,
    nodeId: IdSchema,
    /** `context`: the prompt does not fit the context of any agent that has the skill. */
    reason: z.enum(["no-skill", "memory", "battery", "thermal", "queue-full", "deadline", "excluded", "context", "other"]),
    detail: z.string().max(512).optional(),
  }),
]);
export type Bid = z.infer<typeof BidSchema>;

export const AwardSchema = z.strictObject({
  auctionId: IdSchema,
  taskId: IdSchema,
  attempt: z.number().int().min(1),
  agentId: IdSchema,
  prompt: z.string().max(48 * 1024),
  skill: SkillSchema.optional(),
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  /** Coordinator clock, like the announce's. */
  deadlineAt: z.number(),
  sentAt: z.number(),
  /** The node must ack within this many ms or the award is withdrawn. */
  ackWithinMs: z.number().int().min(1),
});
export type Award = z.infer<typeof AwardSchema>;

export const AckSchema = z.strictObject({ auctionId: IdSchema, taskId: IdSchema, nodeId: IdSchema, agentId: IdSchema, accepted: z.boolean(), reason: z.string().max(512).optional() });
export type Ack = z.infer<typeof AckSchema>;

export const ProgressSchema = z.strictObject({ auctionId: IdSchema, taskId: IdSchema, nodeId: IdSchema, tokens: z.number().int().min(0), text: z.string().max(65536) });
export type Progress = z.infer<typeof ProgressSchema>;

export const DoneSchema = z.strictObject({
  auctionId: IdSchema,
  taskId: IdSchema,
  nodeId: IdSchema,
  agentId: IdSchema,
  status: z.enum(["ok", "error"]),
  output: z.string().max(1024 * 1024).optional(),
  error: WireErrorSchema.optional(),
  /**
   * The node's own split of its time (ms): queued, waking the agent, prompt evaluation, generation;
   * `nodeMs` is all of it, from the award's arrival to this message leaving.
   */
  timings: z.strictObject({ queueMs: z.number().min(0), wakeMs: z.number().min(0), promptMs: z.number().min(0), generateMs: z.number().min(0), tokens: z.number().int().min(0), nodeMs: z.number().min(0) }).partial().optional(),
  cost: z.strictObject({ energyJ: z.number().min(0), energySource: EnergySourceSchema }).partial().optional(),
});
export type Done = z.infer<typeof DoneSchema>;

/** An agent's record for one skill as the coordinator (its one owner) holds it. */
// Not integers: an untrusted submitter's verdict counts a fraction of an observation (docs/scoring.md).
export const RecordSchema = z.strictObject({ successes: z.number().min(0).max(1e12), failures: z.number().min(0).max(1e12) });

/**
 * Payload of `nodes/{nodeId}/verdict`: how an attempt this node ran was judged (`source`: the
 * task's check, plain delivery, the submitter's feedback, or a failure), with the agent's record
 * for the skill after it. The node files it in its hot cache and picks among its own agents with
 * that record; it never keeps a record of its own.
 */
export const VerdictSchema = z.strictObject({
  taskId: IdSchema,
  agentId: IdSchema,
  success: z.boolean(),
  score: z.number().min(0).max(1).optional(),
  source: z.enum(["check", "delivery", "feedback", "failure"]).optional(),
  skill: SkillSchema.optional(),
  /** For a task without a skill: its niche, the key `record` is kept under (never with `skill`). */
  niche: NicheSchema.optional(),
  record: RecordSchema.optional(),
});
export type Verdict = z.infer<typeof VerdictSchema>;

export const CancelSchema = z.strictObject({ auctionId: IdSchema, taskId: IdSchema, reason: z.string().max(512) });
export type Cancel = z.infer<typeof CancelSchema>;
