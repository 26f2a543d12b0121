/**
 * The wire contract of Colony, protocol v1: every MQTT topic and one zod schema per message family.
 * docs/protocol.md documents each of them with an example; keep the two in step.
 *
 * MQTT 3.1.1 only (aedes has no MQTT 5): correlation ids and reply topics live in the payload.
 * Every message is validated once, where it crosses MQTT (`decode`); inside, code trusts the type.
 * Objects are strict: unknown fields are rejected, so a typo in a submitter's payload is an error
 * with a code instead of a silently ignored option.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = 1;
export const ROOT = "colony/v1";
/** Payloads larger than this are dropped before JSON.parse (a prompt of ~48k characters fits). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

// Ids appear inside topics, so they must not contain MQTT separators or wildcards.
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const IdSchema = z.string().regex(ID_RE, "must be 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit");
const SkillSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be 1-64 characters of [a-z0-9_-]");
/** A topic a result may be copied to: no wildcards, no `$` system topics, at most 256 bytes. */
const ReplyTopicSchema = z
  .string()
  .min(1)
  .max(256)
  .refine((t) => !/[+#\u0000]/.test(t) && !t.startsWith("$"), "must be a plain topic without wildcards or a leading $");

export const topics = {
  submit: `${ROOT}/tasks/submit`,
  taskEvents: (taskId: string) => `${ROOT}/tasks/${taskId}/events`,
  taskResult: (taskId: string) => `${ROOT}/tasks/${taskId}/result`,
  taskFeedback: (taskId: string) => `${ROOT}/tasks/${taskId}/feedback`,
  /** Retained coordinator presence (`online` with broker info, or `offline` by last will). */
  coordinatorStatus: `${ROOT}/coordinator/status`,
  /** Retained fleet snapshot for `colony status` (nodes, agents, open auctions, counters); ~1/s. Added in v1, optional to read. */
  coordinatorStats: `${ROOT}/coordinator/stats`,
  /** Coordinator -> all nodes: a task is up for auction. */
  announce: `${ROOT}/market/announce`,
  /** Node-owned topics: a node may publish only under its own `nodes/{nodeId}/`. */
  nodeStatus: (nodeId: string) => `${ROOT}/nodes/${nodeId}/status`,
  nodeHeartbeat: (nodeId: string) => `${ROOT}/nodes/${nodeId}/heartbeat`,
  nodeBid: (nodeId: string) => `${ROOT}/nodes/${nodeId}/bid`,
  nodeAck: (nodeId: string) => `${ROOT}/nodes/${nodeId}/ack`,
  nodeProgress: (nodeId: string) => `${ROOT}/nodes/${nodeId}/progress`,
  nodeDone: (nodeId: string) => `${ROOT}/nodes/${nodeId}/done`,
  /** Coordinator -> one node. */
  nodeAward: (nodeId: string) => `${ROOT}/nodes/${nodeId}/award`,
  nodeCancel: (nodeId: string) => `${ROOT}/nodes/${nodeId}/cancel`,
  /** Coordinator -> the node that ran a task: the task's verdict (check or submitter feedback), for the node's hot cache. */
  nodeVerdict: (nodeId: string) => `${ROOT}/nodes/${nodeId}/verdict`,
  /** Subscription patterns. */
  allNodeStatus: `${ROOT}/nodes/+/status`,
  allNodeHeartbeats: `${ROOT}/nodes/+/heartbeat`,
  allBids: `${ROOT}/nodes/+/bid`,
  allAcks: `${ROOT}/nodes/+/ack`,
  allProgress: `${ROOT}/nodes/+/progress`,
  allDone: `${ROOT}/nodes/+/done`,
  allFeedback: `${ROOT}/tasks/+/feedback`,
} as const;

/** Splits `colony/v1/nodes/{nodeId}/{kind}`; returns undefined for any other topic. */
export function parseNodeTopic(topic: string): { nodeId: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "nodes") return undefined;
  return { nodeId: parts[3]!, kind: parts[4]! };
}

/** Splits `colony/v1/tasks/{taskId}/{kind}`; returns undefined for any other topic. */
export function parseTaskTopic(topic: string): { taskId: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "tasks") return undefined;
  return { taskId: parts[3]!, kind: parts[4]! };
}

// ---------------------------------------------------------------------------------------------
// Submitter surface

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

export const SubmitSchema = z.strictObject({
  /** Chosen by the submitter (so it can subscribe first) or by the coordinator. */
  id: IdSchema.optional(),
  prompt: z.string().min(1).max(48 * 1024),
  skill: SkillSchema.optional(),
  maxTokens: z.number().int().min(1).max(8192).optional(),
  /** Time budget from acceptance to result, in ms. */
  deadlineMs: z.number().int().min(100).max(24 * 3600 * 1000).optional(),
  minAccuracy: z.number().min(0).max(1).optional(),
  check: CheckSchema.optional(),
  replyTo: ReplyTopicSchema.optional(),
  weights: WeightsSchema.optional(),
});
export type Submit = z.infer<typeof SubmitSchema>;

export const FeedbackSchema = z.strictObject({
  success: z.boolean(),
  score: z.number().min(0).max(1).optional(),
});
export type Feedback = z.infer<typeof FeedbackSchema>;

export const WireErrorSchema = z.strictObject({ code: z.string().max(64), message: z.string().max(4096) });
export type WireError = z.infer<typeof WireErrorSchema>;

export const BidEstimateSchema = z.strictObject({
  /** Expected ms from award to result: queue + wake (if asleep) + prompt + generation. */
  latencyMs: z.number().min(0).max(1e9),
  /** Expected energy in joules (the profile's power model x time). */
  energyJ: z.number().min(0).max(1e9),
  /** The agent's own, self-reported expected accuracy in [0,1]; the coordinator calibrates it. */
  accuracy: z.number().min(0).max(1),
  /** Wake cost included in latencyMs, 0 if awake. */
  wakeMs: z.number().min(0).max(1e9).optional(),
  queueMs: z.number().min(0).max(1e9).optional(),
});

export const DeviceStateSchema = z.strictObject({
  cpuLoad: z.number().min(0).max(100).optional(),
  freeMemMB: z.number().min(0).optional(),
  batteryPercent: z.number().min(0).max(100).optional(),
  charging: z.boolean().optional(),
  temperatureC: z.number().min(-50).max(200).optional(),
});

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
  timings: z.strictObject({ acceptedAt: z.number(), finishedAt: z.number(), totalMs: z.number(), generateMs: z.number().optional() }),
  cost: z.strictObject({ energyJ: z.number().optional(), tokens: z.number().int().optional() }).optional(),
});
export type Result = z.infer<typeof ResultSchema>;

// ---------------------------------------------------------------------------------------------
// Fleet surface (coordinator <-> node daemons)

export const AgentInfoSchema = z.strictObject({
  agentId: IdSchema,
  skills: z.array(SkillSchema).max(64),
  model: z.string().max(512),
  state: z.enum(["awake", "asleep", "busy", "loading"]),
  parent: IdSchema.optional(),
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
  agents: z.array(z.strictObject({ agentId: IdSchema, state: AgentInfoSchema.shape.state })).max(256),
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
  nodes: z.array(z.strictObject({ nodeId: z.string(), online: z.boolean(), deviceClass: z.string().optional(), slots: z.number().optional(), lastSeen: z.number(), busy: z.number().optional(), agents: z.array(z.strictObject({ agentId: z.string(), skills: z.array(z.string()), model: z.string(), state: z.string() })) })),
  agents: z.array(z.strictObject({ agentId: z.string(), skill: z.string(), successes: z.number(), failures: z.number(), excludedUntil: z.number().optional(), consecutiveFailures: z.number().optional() })),
  openAuctions: z.array(z.strictObject({ taskId: z.string(), auctionId: z.string(), attempt: z.number(), bids: z.number(), expected: z.number(), closesAt: z.number() })),
  runningTasks: z.array(z.strictObject({ taskId: z.string(), nodeId: z.string(), agentId: z.string(), phase: z.string() })),
  counters: z.record(z.string(), z.number()),
});
export type CoordinatorStats = z.infer<typeof CoordinatorStatsSchema>;

export const AnnounceSchema = z.strictObject({
  auctionId: IdSchema,
  taskId: IdSchema,
  attempt: z.number().int().min(1),
  prompt: z.string().max(48 * 1024),
  skill: SkillSchema.optional(),
  maxTokens: z.number().int().min(1),
  /** Absolute epoch ms by which the result is due. */
  deadlineAt: z.number(),
  minAccuracy: z.number().min(0).max(1).optional(),
  /** Epoch ms after which bids are ignored. */
  closesAt: z.number(),
  /** Nodes that must not bid (sitting out a penalty); the coordinator also ignores their bids. */
  excludedAgents: z.array(IdSchema).max(1024).optional(),
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
    reason: z.enum(["no-skill", "memory", "battery", "thermal", "queue-full", "deadline", "excluded", "other"]),
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
  maxTokens: z.number().int().min(1),
  deadlineAt: z.number(),
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
  timings: z.strictObject({ queueMs: z.number().min(0), wakeMs: z.number().min(0), promptMs: z.number().min(0), generateMs: z.number().min(0), tokens: z.number().int().min(0) }).partial().optional(),
  cost: z.strictObject({ energyJ: z.number().min(0) }).partial().optional(),
});
export type Done = z.infer<typeof DoneSchema>;

/** Payload of `nodes/{nodeId}/verdict` (additive, v1): how a task this node ran was judged. */
export const VerdictSchema = z.strictObject({ taskId: IdSchema, agentId: IdSchema, success: z.boolean(), score: z.number().min(0).max(1).optional() });
export type Verdict = z.infer<typeof VerdictSchema>;

export const CancelSchema = z.strictObject({ auctionId: IdSchema, taskId: IdSchema, reason: z.string().max(512) });
export type Cancel = z.infer<typeof CancelSchema>;

// ---------------------------------------------------------------------------------------------
// Decoding at the boundary

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; code: "PAYLOAD_TOO_LARGE" | "PAYLOAD_NOT_JSON" | "PAYLOAD_INVALID"; message: string };

/**
 * The single place where bytes from MQTT become typed messages. Returns a result instead of
 * throwing so callers on hot paths count and log the drop without a try/catch.
 */
export function decode<S extends z.ZodType>(schema: S, payload: Buffer | Uint8Array | string): DecodeResult<z.infer<S>> {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, code: "PAYLOAD_TOO_LARGE", message: `payload of ${size} bytes exceeds ${MAX_PAYLOAD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === "string" ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch (err) {
    return { ok: false, code: "PAYLOAD_NOT_JSON", message: `payload is not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return { ok: false, code: "PAYLOAD_INVALID", message: first.join("; ") };
  }
  return { ok: true, value: parsed.data };
}

export function encode(value: unknown): string {
  return JSON.stringify(value);
}
