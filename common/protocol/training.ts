/**
 * Training on a node (docs/mind.md, "Trainer nodes"): a node whose config offers the `trainer`
 * capability advertises its measured training speed in its status, answers the coordinator's
 * `train-quote` with a price, and runs a distillation job it is awarded (`train`): it fetches the
 * parents' signed models and the job's experiences by sha256 over the model-fetch topics, trains in
 * its own worker process, uploads the child on `nodes/{nodeId}/train-upload` (binary chunk frames,
 * model-frame.ts, `requestId` = the job id) and reports on `nodes/{nodeId}/train-progress`.
 *
 * The coordinator never trusts the child: it checks the uploaded bytes against the sha256 the node
 * reports, runs the model gate before llama.cpp opens the file, and runs the held-out gate itself.
 * Commands ride the life cycle channel (lifecycle.ts): only the coordinator may publish them, and
 * each is acked. `agentId` of a training command is the job id.
 */
import { z } from "zod";
import { IdSchema, Sha256Schema, SkillSchema, WireErrorSchema } from "./primitives.ts";

const ByteCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** In a node's online status: what its trainer can do, measured on the node (trainer/throughput.ts). */
export const TrainerCapabilitySchema = z.strictObject({
  /** Training FLOP/s on a reference model (6 x parameters x tokens per second). */
  flopsPerSecond: z.number().min(0),
  /** Threads the node gives a training job. */
  threads: z.number().int().min(1).max(256),
  /** Watts the device draws while training (its profile's power at full load), for the energy in a quote. */
  watts: z.number().min(0).optional(),
  /** Node clock when the figure was measured. */
  measuredAt: z.number(),
});
export type TrainerCapability = z.infer<typeof TrainerCapabilitySchema>;

/** What a job will cost in compute, as the coordinator estimates it (coordinator/mind/trainers.ts). */
export const TrainWorkSchema = z.strictObject({
  /** Training FLOPs: 6 x parameters x tokens. */
  trainFlops: z.number().min(0),
  /** Verified sampling FLOPs: 2 x parameters x tokens generated. */
  sampleFlops: z.number().min(0),
  /** Bytes moved besides the parents' models: the experiences to fetch and the child to upload. */
  transferBytes: ByteCount,
  /** The parents' models: a node that holds one fetches nothing for it. */
  models: z.array(z.strictObject({ sha256: Sha256Schema, bytes: ByteCount })).max(16),
});
export type TrainWork = z.infer<typeof TrainWorkSchema>;

/** The node's price for a job: how long it expects to take, and the energy it expects to spend. */
export const TrainQuoteSchema = z.strictObject({
  seconds: z.number().min(0),
  energyJ: z.number().min(0).optional(),
});
export type TrainQuote = z.infer<typeof TrainQuoteSchema>;

/**
 * The job as a trainer node runs it: the distillation spec's training fields (the node fills in its
 * own paths and threads). The gate is the coordinator's and is not part of it.
 */
export const RemoteTrainSpecSchema = z.strictObject({
  skills: z.array(SkillSchema).min(1).max(16),
  mode: z.enum(["full", "lora"]),
  steps: z.number().int().min(1).max(1_000_000),
  batch: z.number().int().min(1).max(4096),
  lr: z.number().gt(0).lt(10).optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1),
  sampling: z.strictObject({ candidates: z.number().int().min(1).max(64), temperature: z.number().gt(0).max(5), prompts: z.number().int().min(0).max(100_000) }).optional(),
  /** The coordinator's gate seed and size: curation leaves the held-out prompts out, as on the coordinator. */
  gate: z.strictObject({ perSkill: z.number().int().min(1).max(100_000), margin: z.number().min(0).max(1), seed: z.string().min(1).max(128) }),
});
export type RemoteTrainSpec = z.infer<typeof RemoteTrainSpecSchema>;

export const TrainInputsSchema = z.strictObject({
  /** The job's experiences (JSONL), served by the coordinator's model server to this node only. */
  experiences: z.strictObject({ sha256: Sha256Schema, bytes: ByteCount }),
  /** Parent agents and their signed models (fetched and verified like any pushed model). */
  parents: z.array(z.strictObject({ agentId: IdSchema, sha256: Sha256Schema, skills: z.array(SkillSchema).max(64).optional() })).min(1).max(8),
});
export type TrainInputs = z.infer<typeof TrainInputsSchema>;

/** What a node reports when training has ended and the child is uploaded. */
export const TrainedSchema = z.strictObject({
  sha256: Sha256Schema,
  bytes: ByteCount,
  format: z.enum(["gguf-model", "gguf-lora"]),
  datasetSha256: Sha256Schema,
  counts: z.record(z.string(), z.number().int().min(0)),
  steps: z.number().int().min(0),
  seconds: z.number().min(0),
  tokensPerSecond: z.number().min(0),
});
export type Trained = z.infer<typeof TrainedSchema>;

export const TrainPhaseSchema = z.enum(["fetch", "curate", "sample", "train", "export", "upload"]);

/**
 * Node -> coordinator, `nodes/{nodeId}/train-progress` (QoS 0 while running, 1 for an end). `seq`
 * grows by one per message of a run, so a reader drops a late one.
 */
export const TrainProgressSchema = z.strictObject({
  nodeId: IdSchema,
  jobId: IdSchema,
  seq: z.number().int().min(0),
  state: z.enum(["running", "trained", "failed", "cancelled"]),
  progress: z
    .strictObject({ phase: TrainPhaseSchema, step: z.number().int().min(0), total: z.number().int().min(0), loss: z.number().nullable(), tokensPerSecond: z.number().min(0) })
    .optional(),
  /** `trained`: the child, uploaded before this message was sent. */
  trained: TrainedSchema.optional(),
  error: WireErrorSchema.optional(),
  at: z.number(),
});
export type TrainProgress = z.infer<typeof TrainProgressSchema>;
