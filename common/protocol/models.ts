/**
 * The coordinator's model catalog (docs/models.md): retained on `colony/v1/models/catalog`, the
 * signed manifests of the models its store holds, so a node (or `colony models list`) sees what it
 * could fetch and checks each manifest itself (common/model-manifest.ts). Only the coordinator
 * publishes it; nodes may subscribe.
 */
import { z } from "zod";
import { KeyIdSchema, SignedManifestSchema } from "../model-manifest.ts";
import { IdSchema, Sha256Schema, SkillSchema, WireErrorSchema } from "./primitives.ts";

/**
 * Most manifests one catalog carries. A manifest with a full gate report is ~1-3 KiB and a payload
 * must stay under MAX_PAYLOAD_BYTES (64 KiB): the coordinator keeps the newest version of every
 * lineage first, then newer versions before older, and counts the rest in `omitted`.
 */
export const MAX_CATALOG_MODELS = 256;

export const ModelCatalogSchema = z.strictObject({
  at: z.number(),
  /** The fleet model key's id (the public key itself comes with node credentials). */
  keyId: KeyIdSchema,
  models: z.array(SignedManifestSchema).max(MAX_CATALOG_MODELS),
  /** Manifests the store holds that did not fit in this message (ask the coordinator host: `colony models list --data-dir`). */
  omitted: z.number().int().min(0),
});
export type ModelCatalog = z.infer<typeof ModelCatalogSchema>;

/**
 * Model transfer over MQTT (docs/protocol.md, "Model transfer"): a node asks for byte ranges of a
 * model the coordinator's store holds, by sha256, on its own `model-fetch` topic; the coordinator
 * answers each with one binary frame on the node's `model-chunk` topic (model-frame.ts); the node
 * says what it made of the model on `model-report`. No port besides the broker's.
 */

/** The largest range one fetch may ask for: 1 MiB (aedes and mqtt.js set no packet limit below MQTT's 256 MB). */
export const MAX_MODEL_CHUNK = 1 << 20;
/** Offsets and totals are byte counts below 2^53 (JavaScript's safe integers). */
const ByteCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Node -> coordinator, `nodes/{nodeId}/model-fetch` (QoS 1). */
export const ModelFetchSchema = z.strictObject({
  nodeId: IdSchema,
  /** Echoed in the answering frame; the node matches answers to its requests by it. */
  requestId: IdSchema,
  sha256: Sha256Schema,
  offset: ByteCount,
  length: z.number().int().min(0).max(MAX_MODEL_CHUNK),
  /** Also send the signed manifest in the answer's header (the first request of a transfer). */
  manifest: z.boolean().optional(),
});
export type ModelFetch = z.infer<typeof ModelFetchSchema>;

/**
 * The JSON header of a `model-chunk` frame. `signed` is the store's signed manifest as it is (the
 * node verifies it: common/model-manifest.ts), kept opaque here so a manifest of a later version
 * still reaches the verifier. `error` (and no bytes): the request was refused.
 */
export const ModelChunkHeaderSchema = z.strictObject({
  requestId: IdSchema,
  sha256: Sha256Schema,
  offset: ByteCount,
  length: z.number().int().min(0).max(MAX_MODEL_CHUNK),
  /** The model's size in bytes. */
  total: ByteCount,
  /** sha256 of this frame's bytes (the empty string's for an error frame). */
  chunkSha256: Sha256Schema,
  signed: z.unknown().optional(),
  error: WireErrorSchema.optional(),
});
export type ModelChunkHeader = z.infer<typeof ModelChunkHeaderSchema>;

/** Node -> coordinator, `nodes/{nodeId}/model-report` (QoS 1): the outcome of one model's transfer. */
export const ModelReportSchema = z.strictObject({
  nodeId: IdSchema,
  sha256: Sha256Schema,
  ok: z.boolean(),
  /** A refusal's stable code (MODEL_HASH_MISMATCH, MODEL_SIGNATURE_INVALID, MODEL_ROLLBACK, ...). */
  code: z.string().max(64).optional(),
  message: z.string().max(4096).optional(),
  /** Bytes fetched over MQTT for this model (0 when it was already on the node). */
  fetchedBytes: ByteCount.optional(),
  at: z.number(),
});
export type ModelReport = z.infer<typeof ModelReportSchema>;

/** A transfer's state as its node reports it: bytes coming in, the whole file checked, then stored or refused. */
export const ModelTransferStateSchema = z.enum(["fetching", "verifying", "done", "failed"]);
export type ModelTransferState = z.infer<typeof ModelTransferStateSchema>;

/**
 * Node -> coordinator, `nodes/{nodeId}/model-progress`: one transfer's progress, throttled by the
 * node (at most every `MODEL_PROGRESS_INTERVAL_MS` or `MODEL_PROGRESS_STEP` of the model, plus each
 * change of state). QoS 0 while fetching (the next one supersedes it), QoS 1 for verifying, done and
 * failed. `seq` grows by one per message of a transfer, so a reader drops one that arrives late.
 */
export const ModelProgressSchema = z.strictObject({
  nodeId: IdSchema,
  sha256: Sha256Schema,
  /** One transfer: a node's `ensure` of a model; a later push of the same model is another transfer. */
  transferId: IdSchema,
  seq: z.number().int().min(0),
  state: ModelTransferStateSchema,
  /** Bytes of the model the node holds (a resumed transfer starts at what its part file kept). */
  bytes: ByteCount,
  /** The model's size; 0 while the manifest is not yet verified (a refusal before it). */
  total: ByteCount,
  /** `failed`: the refusal's stable code (MODEL_HASH_MISMATCH, MODEL_SIGNATURE_INVALID, ...). */
  code: z.string().max(64).optional(),
  message: z.string().max(1024).optional(),
  at: z.number(),
});
export type ModelProgress = z.infer<typeof ModelProgressSchema>;
/** Progress is published at most this often while bytes come in (ms)... */
export const MODEL_PROGRESS_INTERVAL_MS = 250;
/** ...unless this share of the model arrived since the last one. */
export const MODEL_PROGRESS_STEP = 0.05;

/** Most rows `models/rollouts` carries (~250 bytes each: well under MAX_PAYLOAD_BYTES). */
export const MAX_ROLLOUTS = 128;

/**
 * One model on one node, as the coordinator's rollout table keeps it (coordinator/models/rollouts.ts):
 * `pending` from a push until the node's first progress, then the node's states. `requestId`: the
 * `colony models push` that asked for it (absent for a fetch a spawn started).
 */
export const RolloutSchema = z.strictObject({
  sha256: Sha256Schema,
  nodeId: IdSchema,
  state: z.enum(["pending", "fetching", "verifying", "done", "failed"]),
  bytes: ByteCount,
  total: ByteCount,
  requestId: IdSchema.optional(),
  code: z.string().max(64).optional(),
  message: z.string().max(300).optional(),
  startedAt: z.number(),
  updatedAt: z.number(),
});
export type Rollout = z.infer<typeof RolloutSchema>;

/** Coordinator -> anyone allowed (observers too), retained on `models/rollouts`: the newest rollouts, per model and node. */
export const ModelRolloutsSchema = z.strictObject({
  at: z.number(),
  rollouts: z.array(RolloutSchema).max(MAX_ROLLOUTS),
  /** Rows dropped to stay under MAX_ROLLOUTS (the oldest finished first). */
  omitted: z.number().int().min(0),
});
export type ModelRollouts = z.infer<typeof ModelRolloutsSchema>;

/**
 * `colony models push` (a coordinator credential) -> coordinator, `models/push` (QoS 1): roll a model
 * out to nodes. Either a model already in the store (`sha256`), or a file on the coordinator's host
 * that the coordinator first adds to its store (signing it; `name` and `skills` then required).
 * `nodes` defaults to every online node. Each node is sent a `fetch` command (lifecycle.ts).
 */
export const ModelPushRequestSchema = z
  .strictObject({
    requestId: IdSchema,
    sha256: Sha256Schema.optional(),
    file: z.string().min(1).max(4096).optional(),
    name: IdSchema.optional(),
    lineage: IdSchema.optional(),
    skills: z.array(SkillSchema).max(64).optional(),
    nodes: z.array(IdSchema).max(1000).optional(),
  })
  .refine((r) => (r.sha256 === undefined) !== (r.file === undefined), "give exactly one of sha256 and file")
  .refine((r) => r.file === undefined || (r.name !== undefined && r.skills !== undefined), "a file needs a name and skills");
export type ModelPushRequest = z.infer<typeof ModelPushRequestSchema>;

/** Coordinator -> the asker, `models/push/replies/{requestId}` (QoS 1): each node's answer to its fetch. */
export const ModelPushReplySchema = z.strictObject({
  requestId: IdSchema,
  sha256: Sha256Schema.optional(),
  version: z.number().int().min(1).optional(),
  results: z.array(z.strictObject({ nodeId: IdSchema, status: z.string().max(32), error: WireErrorSchema.optional() })).max(1000),
  error: WireErrorSchema.optional(),
});
export type ModelPushReply = z.infer<typeof ModelPushReplySchema>;
