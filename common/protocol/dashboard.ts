/**
 * The dashboard feed (coordinator/dashboard/feed.ts; docs/operations.md, "Dashboard"): what the
 * coordinator publishes for the read-only observer role about the market and the fleet. Sanitized on
 * purpose: no prompt and no output unless the coordinator runs with `dashboardShowPrompts`, no
 * submitter's topic; node device readings are copied from the heartbeats the coordinator received,
 * so the observer never needs to read a node's own topics.
 */
import { z } from "zod";
import { BidEstimateSchema } from "./market.ts";
import { DeviceStateSchema } from "./primitives.ts";

const Text = z.string().max(48 * 1024);
/** Scored bids an `awarded` event lists at most. */
export const MAX_RANKED = 32;

/** One market event, as the dashboard shows it. `at`: coordinator clock, ms. */
export const DashboardEventSchema = z.discriminatedUnion("kind", [
  /** A task was accepted: its first auction opens. */
  z.strictObject({ kind: z.literal("opened"), taskId: z.string(), skill: z.string(), at: z.number(), prompt: Text.optional() }),
  /** An auction closed with a winner. `bids`: how many bids the auction got; `score`: the winner's. */
  z.strictObject({
    kind: z.literal("awarded"), taskId: z.string(), skill: z.string(), attempt: z.number().int(), auctionId: z.string(), nodeId: z.string(), agentId: z.string(),
    estimate: BidEstimateSchema, score: z.number(), bids: z.number().int(), at: z.number(),
    /** Every scored bid, best first (the first `MAX_RANKED`): ineligible ones say why (`deadline`, `min-accuracy`). */
    ranked: z.array(z.strictObject({
      nodeId: z.string(), agentId: z.string(), estimate: BidEstimateSchema, score: z.number(), eligible: z.boolean(), reason: z.string().optional(), accuracyMean: z.number(),
    })).max(MAX_RANKED).optional(),
  }),
  /** An attempt failed through the agent's fault; the market retries while attempts are left. */
  z.strictObject({ kind: z.literal("failed"), taskId: z.string(), skill: z.string(), attempt: z.number().int(), nodeId: z.string(), agentId: z.string(), outcome: z.string(), code: z.string(), message: z.string().max(1024), at: z.number() }),
  /** The task's final result. */
  z.strictObject({
    kind: z.literal("finished"), taskId: z.string(), skill: z.string(), status: z.enum(["ok", "error"]), code: z.string().optional(), attempts: z.number().int(),
    nodeId: z.string().optional(), agentId: z.string().optional(), success: z.boolean().optional(), verdictSource: z.string().optional(),
    totalMs: z.number(), energyJ: z.number().optional(), tokens: z.number().optional(), at: z.number(), output: Text.optional(),
  }),
  /** The submitter's feedback replaced the verdict of the delivering attempt. */
  z.strictObject({ kind: z.literal("feedback"), taskId: z.string(), nodeId: z.string(), agentId: z.string(), success: z.boolean(), at: z.number() }),
]);
export type DashboardEvent = z.infer<typeof DashboardEventSchema>;

/** Retained: the newest events, oldest first, so a page that opens late starts with some history. */
export const DashboardRecentSchema = z.strictObject({ at: z.number(), events: z.array(DashboardEventSchema).max(500) });
export type DashboardRecent = z.infer<typeof DashboardRecentSchema>;

/** Retained: every node as the coordinator's registry sees it, with what the market counted since start. */
export const DashboardFleetSchema = z.strictObject({
  at: z.number(),
  nodes: z.array(z.strictObject({
    nodeId: z.string(),
    online: z.boolean(),
    lastSeen: z.number(),
    deviceClass: z.string().optional(),
    slots: z.number().optional(),
    busy: z.number().optional(),
    queued: z.number().optional(),
    device: DeviceStateSchema.optional(),
    /** Joules and tasks delivered `ok` since the coordinator started. */
    energyJ: z.number(),
    tasksDone: z.number().int(),
    agents: z.array(z.strictObject({
      agentId: z.string(),
      state: z.string(),
      skills: z.array(z.string()),
      model: z.string(),
      generation: z.number().int().optional(),
      /** Awards won, successes and joules since the coordinator started. */
      wins: z.number().int(),
      successes: z.number().int(),
      energyJ: z.number(),
      /** The accuracy the agent claimed in its last winning bid (its genome's calibrated prior), per skill. */
      claimed: z.record(z.string(), z.number()),
    })),
  })),
});
export type DashboardFleet = z.infer<typeof DashboardFleetSchema>;
