/** The fleet surface: node presence and heartbeats, coordinator presence and its stats snapshot. */
import { z } from "zod";
import { GenomeSchema } from "../genome.ts";
import { DeviceStateSchema, IdSchema, Sha256Schema, SkillSchema } from "./primitives.ts";
import { PROTOCOL_VERSION } from "./topics.ts";
import { TrainerCapabilitySchema } from "./training.ts";

export const AgentStateSchema = z.enum(["awake", "asleep", "busy", "loading"]);

export const AgentInfoSchema = z.strictObject({
  agentId: IdSchema,
  skills: z.array(SkillSchema).max(64),
  model: z.string().max(512),
  state: AgentStateSchema,
  parent: IdSchema.optional(),
  /** sha256 of the agent's genome (common/genome.ts): what its records are about. */
  genome: Sha256Schema.optional(),
  /**
   * The whole genome, so the coordinator can vary it (evolution). Sent while the status fits the
   * payload limit; an agent without it can be retired but not be a parent.
   */
  spec: GenomeSchema.optional(),
  /** Generation in its lineage (0: from the node's agents file). */
  generation: z.number().int().min(0).optional(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

export const NodeStatusSchema = z.discriminatedUnion("state", [
  z.strictObject({
    state: z.literal("online"),
    nodeId: IdSchema,
    protocol: z.literal(PROTOCOL_VERSION),
    deviceClass: z.string().max(64),
    /** Concurrency slots of the node. */
    slots: z.number().int().min(1).max(1024),
    agents: z.array(AgentInfoSchema).max(256),
    models: z.array(z.string().max(512)).max(256),
    /** Present when the node offers to train distillation jobs (common/protocol/training.ts). */
    trainer: TrainerCapabilitySchema.optional(),
    at: z.number(),
  }),
  z.strictObject({ state: z.literal("offline"), nodeId: IdSchema, at: z.number().optional() }),
]);
export type NodeStatus = z.infer<typeof NodeStatusSchema>;

export const HeartbeatSchema = z.strictObject({
  nodeId: IdSchema,
  at: z.number(),
  busy: z.number().int().min(0),
  queued: z.number().int().min(0),
  agents: z.array(z.strictObject({ agentId: IdSchema, state: AgentStateSchema })).max(256),
  device: DeviceStateSchema.optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export const CoordinatorStatusSchema = z.discriminatedUnion("state", [
  z.strictObject({ state: z.literal("online"), protocol: z.literal(PROTOCOL_VERSION), fleetId: z.string().max(128), startedAt: z.number() }),
  z.strictObject({ state: z.literal("offline") }),
]);
export type CoordinatorStatus = z.infer<typeof CoordinatorStatusSchema>;

/** Payload of `coordinator/stats` (retained). Loose on purpose: it is for people and dashboards. */
export const CoordinatorStatsSchema = z.strictObject({
  at: z.number(),
  startedAt: z.number(),
  fleetId: z.string(),
  nodes: z.array(z.strictObject({ nodeId: z.string(), online: z.boolean(), deviceClass: z.string().optional(), slots: z.number().optional(), trainerGflops: z.number().optional(), lastSeen: z.number(), busy: z.number().optional(), agents: z.array(z.strictObject({ agentId: z.string(), skills: z.array(z.string()), model: z.string(), state: z.string() })) })),
  /** Track records per skill, under the agent id its node registers now (or the record's key, for an agent no longer registered). */
  agents: z.array(z.strictObject({ agentId: z.string(), nodeId: z.string().optional(), skill: z.string(), successes: z.number(), failures: z.number(), excludedUntil: z.number().optional(), consecutiveFailures: z.number().optional() })),
  openAuctions: z.array(z.strictObject({ taskId: z.string(), auctionId: z.string(), attempt: z.number(), bids: z.number(), expected: z.number(), closesAt: z.number() })),
  runningTasks: z.array(z.strictObject({ taskId: z.string(), nodeId: z.string(), agentId: z.string(), phase: z.string() })),
  counters: z.record(z.string(), z.number()),
});
export type CoordinatorStats = z.infer<typeof CoordinatorStatsSchema>;
