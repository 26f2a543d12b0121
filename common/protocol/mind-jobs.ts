/**
 * Distillation jobs on the wire (docs/mind.md, "Distillation jobs"). Only coordinator-role principals
 * may use `colony/v1/mind/` (broker ACL), so an operator asks with a coordinator credential
 * (`colony distil --data-dir DIR` on the coordinator's host).
 *
 * - `mind/distil` (QoS 1): start a job (the asker picks its `jobId`) or cancel one.
 * - `mind/jobs` (retained, QoS 1): the newest jobs with their state, progress, gate report and
 *   the signed model and spawned child of a job that passed. The asker follows its `jobId` there; a
 *   refused request shows up as a job in state `error` with the code, so there is no reply topic.
 */
import { z } from "zod";
import { GateReportSchema } from "../gate-report.ts";
import { IdSchema, Sha256Schema, SkillSchema, WireErrorSchema } from "./primitives.ts";

export const DistilStartSchema = z.strictObject({
  jobId: IdSchema,
  /** The skills the child must serve (the union of what its parents serve, or a part of it). */
  skills: z.array(SkillSchema).min(1).max(16),
  /** Parent agents; `nodeId` is needed only when two nodes host agents with the same id. */
  parents: z.array(z.strictObject({ agentId: IdSchema, nodeId: IdSchema.optional() })).min(1).max(8),
  /** "full": a new model warm-started from the strongest parent (default); "lora": an adapter on that parent's model (small to push; the base stays shared). */
  mode: z.enum(["full", "lora"]).optional(),
  /** Optimizer steps (default: the coordinator's `mind.steps`). */
  steps: z.number().int().min(1).max(1_000_000).optional(),
  /** Verified sampling: candidates per prompt drawn from each parent at a temperature, kept when they pass the check. */
  sampling: z.strictObject({ candidates: z.number().int().min(1).max(64), temperature: z.number().gt(0).max(5), prompts: z.number().int().min(0).max(100_000) }).optional(),
  /** Held-out instances per skill for the gate, and the largest drop allowed against the best parent. */
  gatePerSkill: z.number().int().min(1).max(100_000).optional(),
  margin: z.number().min(0).max(1).optional(),
  /** Spawn the child when it passes the gate (default true); false: sign and store it only. */
  spawn: z.boolean().optional(),
  reason: z.string().max(512).optional(),
});
export type DistilStart = z.infer<typeof DistilStartSchema>;

export const DistilCancelSchema = z.strictObject({ jobId: IdSchema, cancel: z.literal(true) });

export const DistilRequestSchema = z.union([DistilCancelSchema, DistilStartSchema]);
export type DistilRequest = z.infer<typeof DistilRequestSchema>;

export const MindJobStateSchema = z.enum(["queued", "running", "passed", "failed", "error", "cancelled"]);
export type MindJobState = z.infer<typeof MindJobStateSchema>;

export const MindJobSchema = z.strictObject({
  jobId: IdSchema,
  state: MindJobStateSchema,
  /** Who asked: the architect (a `distil` decision) or an operator (`colony distil`). */
  by: z.enum(["architect", "operator"]),
  skills: z.array(SkillSchema).max(16),
  /** `nodeId` once the job found the parent among the living agents. */
  parents: z.array(z.strictObject({ agentId: IdSchema, nodeId: IdSchema.optional() })).max(8),
  reason: z.string().max(1024),
  createdAt: z.number().int().min(0),
  updatedAt: z.number().int().min(0),
  progress: z
    .strictObject({
      phase: z.enum(["prepare", "curate", "sample", "train", "export", "gate", "sign", "spawn"]),
      step: z.number().int().min(0),
      total: z.number().int().min(0),
      loss: z.number().nullable(),
      tokensPerSecond: z.number().min(0),
    })
    .optional(),
  /** Training pairs per skill the job curated. */
  counts: z.record(z.string(), z.number().int().min(0)).optional(),
  gate: GateReportSchema.optional(),
  /** The trainer node the job was placed on (docs/mind.md, "Trainer nodes"); absent: the coordinator's host. */
  trainer: IdSchema.optional(),
  /** The signed model of a child that passed. */
  model: z.strictObject({ sha256: Sha256Schema, name: IdSchema, lineage: IdSchema, version: z.number().int().min(1) }).optional(),
  /** The child agent spawned with it, and the node's answer. */
  child: z.strictObject({ agentId: IdSchema, nodeId: IdSchema, status: z.string().max(32) }).optional(),
  error: WireErrorSchema.optional(),
});
export type MindJob = z.infer<typeof MindJobSchema>;

/** Retained on `mind/jobs`: the newest jobs first. */
export const MindJobsSnapshotSchema = z.strictObject({ at: z.number().int().min(0), jobs: z.array(MindJobSchema).max(32) });
export type MindJobsSnapshot = z.infer<typeof MindJobsSnapshotSchema>;
