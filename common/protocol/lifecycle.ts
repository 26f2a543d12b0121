/**
 * The life cycle surface: the coordinator commands a node to spawn, retire or keep warm one agent,
 * and the node acknowledges each command. Only the coordinator may publish a node's `command` topic
 * (coordinator/auth/acl.ts); a node publishes its `command-ack`.
 *
 * Commands are idempotent by `commandId` and by outcome: spawning an agent the node already hosts
 * with the same genome acks `exists`, retiring one it does not host acks `absent`, so the coordinator
 * re-sends a command whose ack it did not see without fear of doing it twice.
 */
import { z } from "zod";
import { GenomeSchema } from "../genome.ts";
import { IdSchema, Sha256Schema, WireErrorSchema } from "./primitives.ts";
import { RemoteTrainSpecSchema, TrainInputsSchema, TrainQuoteSchema, TrainWorkSchema } from "./training.ts";

/** Why an agent exists, as the coordinator recorded it (coordinator/evolution/lineage.ts). */
export const LineageTagSchema = z.strictObject({
  parents: z.array(IdSchema).max(8),
  generation: z.number().int().min(0).max(1_000_000),
  /** The decision that caused the birth, in plain words. */
  reason: z.string().max(500),
});
export type LineageTag = z.infer<typeof LineageTagSchema>;

const base = {
  commandId: IdSchema,
  agentId: IdSchema,
  /** The coordinator's clock when the command left (docs/protocol.md, "Clocks"). */
  sentAt: z.number(),
};

export const SpawnCommandSchema = z.strictObject({
  kind: z.literal("spawn"),
  ...base,
  /** The new agent's genome; its `id` must equal `agentId`. */
  genome: GenomeSchema,
  lineage: LineageTagSchema,
});

export const RetireCommandSchema = z.strictObject({
  kind: z.literal("retire"),
  ...base,
  reason: z.string().max(500),
});

/** Keep-warm: wake the agent now (if asleep) and do not put it to sleep before `holdMs` has passed. */
export const WakeCommandSchema = z.strictObject({
  kind: z.literal("wake"),
  ...base,
  holdMs: z.number().int().min(0).max(24 * 3600_000),
  reason: z.string().max(500),
});

/**
 * Prefetch: fetch a model from the coordinator's store (by sha256), verify it and keep it, so a
 * later spawn with `model: "colony:<sha256>"` starts at once (`colony models push`). `agentId`
 * names the agent the model is meant for, or any id (e.g. "prefetch") for a plain rollout. Acked
 * `fetched` (verified and stored now), `exists` (already held) or `refused` with the model's code.
 * Runs beside other commands: a long transfer holds up no spawn, retire or wake.
 */
export const FetchCommandSchema = z.strictObject({
  kind: z.literal("fetch"),
  ...base,
  sha256: Sha256Schema,
});

/**
 * Training (training.ts; `agentId` is the job id): `train-quote` asks a trainer node for its price
 * (acked `quoted` with the quote, or `refused`: TRAINER_OFF, TRAINER_BUSY); `train` runs the job
 * (acked `training`, or `exists` when the node already runs or finished it: it then reports again
 * and uploads the child again); `train-cancel` stops it after the current step (acked `cancelled`
 * or `absent`).
 */
export const TrainQuoteCommandSchema = z.strictObject({ kind: z.literal("train-quote"), ...base, work: TrainWorkSchema });
export const TrainCommandSchema = z.strictObject({ kind: z.literal("train"), ...base, spec: RemoteTrainSpecSchema, inputs: TrainInputsSchema });
export const TrainCancelCommandSchema = z.strictObject({ kind: z.literal("train-cancel"), ...base });

export const CommandSchema = z
  .discriminatedUnion("kind", [SpawnCommandSchema, RetireCommandSchema, WakeCommandSchema, FetchCommandSchema, TrainQuoteCommandSchema, TrainCommandSchema, TrainCancelCommandSchema])
  .refine((c) => c.kind !== "spawn" || c.genome.id === c.agentId, { message: "genome.id must equal agentId", path: ["genome", "id"] });
export type Command = z.infer<typeof CommandSchema>;
export type SpawnCommand = z.infer<typeof SpawnCommandSchema>;

/**
 * - created / retired / warmed: done now;
 * - fetched: a fetch command's model is verified and stored now;
 * - exists / absent: it was already so (a re-sent command, or a retire of an agent the node never had);
 * - quoted / training / cancelled: a training command's outcome (training.ts);
 * - refused: not done, `error.code` says why (MODEL_MISSING, POPULATION_LIMIT, MEMORY_BUDGET,
 *   DISK_BUDGET, GENOME_INVALID, AGENT_EXISTS, AGENT_BUSY, ...: docs/errors.md).
 */
export const CommandStatusSchema = z.enum(["created", "exists", "retired", "absent", "warmed", "fetched", "refused", "quoted", "training", "cancelled"]);

export const COMMAND_KINDS = ["spawn", "retire", "wake", "fetch", "train-quote", "train", "train-cancel"] as const;

export const CommandAckSchema = z.strictObject({
  commandId: IdSchema,
  nodeId: IdSchema,
  agentId: IdSchema,
  kind: z.enum(COMMAND_KINDS),
  status: CommandStatusSchema,
  /** A `train-quote`'s answer. */
  quote: TrainQuoteSchema.optional(),
  /** The agent's genome hash on the node, after a spawn. */
  genome: Sha256Schema.optional(),
  error: WireErrorSchema.optional(),
  at: z.number(),
});
export type CommandAck = z.infer<typeof CommandAckSchema>;

/** One agent's fitness in one niche (coordinator/evolution/fitness.ts has the formulas). */
export const NicheFitnessSchema = z.strictObject({
  niche: z.string().max(200),
  /** Posterior mean of success (common/accuracy.ts) over the agent's record in the niche. */
  success: z.number().min(0).max(1),
  trials: z.number().min(0),
  /** Mean joules per successful task; absent before the first success. */
  energyPerSuccessJ: z.number().min(0).optional(),
  /** Mean ms from award to result over delivered tasks. */
  latencyMs: z.number().min(0).optional(),
  /** Awards in the current window. */
  wins: z.number().int().min(0),
});
export type NicheFitness = z.infer<typeof NicheFitnessSchema>;

/** One agent's life as the coordinator keeps it (LevelDB), and as `evolution/lineage` publishes it. */
export const LifeSchema = z.strictObject({
  agentId: IdSchema,
  nodeId: IdSchema,
  genome: Sha256Schema.optional(),
  parents: z.array(IdSchema).max(8),
  generation: z.number().int().min(0),
  /** alive: registered or spawned; pending: spawn sent, no ack yet; refused: the node said no; retired. */
  state: z.enum(["alive", "pending", "refused", "retired"]),
  bornAt: z.number(),
  birth: z.string().max(500),
  diedAt: z.number().optional(),
  death: z.string().max(500).optional(),
  fitness: z.array(NicheFitnessSchema).max(256),
});
export type Life = z.infer<typeof LifeSchema>;

/** Payload of `evolution/lineage` (retained): the living agents and the most recent dead ones. */
export const LineageSnapshotSchema = z.strictObject({
  at: z.number(),
  lives: z.array(LifeSchema),
  /** Lives in the store that did not fit in this snapshot (the oldest dead). */
  omitted: z.number().int().min(0),
});
export type LineageSnapshot = z.infer<typeof LineageSnapshotSchema>;

/** A decision of the architect (coordinator/architect/policy.ts), with its reason in plain words. */
export const DecisionSchema = z.strictObject({
  kind: z.enum(["spawn", "retire", "wake", "distil"]),
  /** The agent spawned, retired or woken. */
  agentId: IdSchema,
  nodeId: IdSchema,
  parents: z.array(IdSchema).max(8).optional(),
  /** The variation operator that made a child's genome (evolution/variation.ts). */
  variation: z.string().max(100).optional(),
  niche: z.string().max(200).optional(),
  holdMs: z.number().int().min(0).optional(),
  reason: z.string().max(500),
});
export type Decision = z.infer<typeof DecisionSchema>;

/** Payload of `architect/decisions` (retained): the latest cycle's plan and what became of it. */
export const ArchitectReportSchema = z.strictObject({
  at: z.number(),
  cycle: z.number().int().min(0),
  /** true: planned only (architect.dryRun or a kind turned off), nothing sent. */
  dryRun: z.boolean(),
  decisions: z.array(DecisionSchema),
  /** Decisions the policy wanted but a budget or a switch held back, with why. */
  heldBack: z.array(z.strictObject({ decision: DecisionSchema, why: z.string().max(200) })),
});
export type ArchitectReport = z.infer<typeof ArchitectReportSchema>;
