/**
 * The distillation job's contract: the spec a caller gives `startDistilJob` (validated once, at the
 * start, then frozen), the result it gets back, and the IPC messages between the job and its worker
 * process (validated where they cross the process boundary).
 */
import { z } from "zod";
import { ColonyError } from "../../common/errors.ts";
import { formatIssues } from "../../common/config.ts";
import { GateReportSchema } from "../../common/gate-report.ts";
import { IdSchema, Sha256Schema, SkillSchema } from "../../common/protocol/primitives.ts";
import { DistilErrors } from "./errors.ts";

export const ParentSchema = z.strictObject({
  agentId: IdSchema,
  /** The parent's GGUF model (a full llama model llama.cpp loads). */
  modelFile: z.string().min(1),
  /** The skills the parent claims; its experiences and samples count for these. Default: every job skill. */
  skills: z.array(SkillSchema).max(64).optional(),
  genome: Sha256Schema.optional(),
});
export type DistilParent = z.infer<typeof ParentSchema>;

export const DistilSpecSchema = z.strictObject({
  jobId: IdSchema,
  /** Holds the dataset, the checkpoint and (by default) the child; the same dir resumes the same job. */
  jobDir: z.string().min(1),
  /** JSONL of experiences as `colony experience export` writes them. */
  experiences: z.string().min(1),
  parents: z.array(ParentSchema).min(1).max(16),
  /** The skills the child must serve (built-in skill names or other experience skill keys). */
  skills: z.array(SkillSchema).min(1).max(64),
  /** "full": a new model (warm-started from the strongest parent when vocabularies agree); "lora": an adapter on that parent. Default "full". */
  mode: z.enum(["full", "lora"]).default("full"),
  /** Where the child GGUF goes. Default `<jobDir>/child.gguf`. */
  out: z.string().min(1).optional(),
  /** Optimizer steps. Default 300. */
  steps: z.number().int().min(1).max(1_000_000).default(300),
  /** Examples per step. Default 32. */
  batch: z.number().int().min(1).max(4096).default(32),
  /** Peak learning rate. Default 2e-3 (warm start), as measured in docs/distil-bench.md. */
  lr: z.number().gt(0).lt(10).default(2e-3),
  /** Seeds the data order, the curation shuffle, the sampler and a from-scratch init. Default 1. */
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
  /** CPU threads for the trainer and llama.cpp; always explicit. Default 1. */
  threads: z.number().int().min(1).max(256).default(1),
  /** Checkpoint every N steps (and on cancel and at the end). Default 25. */
  checkpointEvery: z.number().int().min(1).default(25),
  /** LoRA rank in "lora" mode. Default 8. */
  loraRank: z.number().int().min(1).max(256).default(8),
  curate: z
    .strictObject({
      /** Cap each skill at the smallest skill's count times this. Default 2. */
      balanceFactor: z.number().min(1).default(2),
      /** An explicit cap per skill instead (wins over the factor). */
      perSkillCap: z.number().int().min(1).optional(),
    })
    .default({ balanceFactor: 2 }),
  /** Verified sampling for skills with a machine check; absent = none. */
  sampling: z
    .strictObject({
      /** Candidates each parent draws per prompt. */
      candidates: z.number().int().min(1).max(64).default(4),
      /** Sampling temperature. Default 0.8. */
      temperature: z.number().gt(0).max(5).default(0.8),
      /** Fresh generator prompts per skill (training split, never a gate instance). Default 200. */
      prompts: z.number().int().min(0).max(100_000).default(200),
    })
    .optional(),
  /**
   * What the worker runs: "all" (default) curates, samples, trains, exports and gates; "train" stops
   * after the export (a trainer node: the coordinator gates); "gate" only gates the child at `out`
   * (the coordinator, on a child a trainer node uploaded), with the training figures in `trained`.
   */
  stage: z.enum(["all", "train", "gate"]).default("all"),
  /** stage "gate": what the trainer reported of its run (its dataset, pairs, steps, speed). */
  trained: z
    .strictObject({
      datasetSha256: Sha256Schema,
      counts: z.record(z.string(), z.number().int().min(0)),
      steps: z.number().int().min(0),
      seconds: z.number().min(0),
      tokensPerSecond: z.number().min(0),
    })
    .optional(),
  gate: z
    .strictObject({
      /** Held-out instances per skill. Default 200. */
      perSkill: z.number().int().min(1).max(100_000).default(200),
      /** Largest drop on any skill against its best parent. Default 0.01. */
      margin: z.number().min(0).max(1).default(0.01),
      /** Draws the held-out instances (and the reserved experience slice). Default "distil-gate". */
      seed: z.string().min(1).max(128).default("distil-gate"),
    })
    .default({ perSkill: 200, margin: 0.01, seed: "distil-gate" }),
});
export type DistilSpecInput = z.input<typeof DistilSpecSchema>;
export type DistilSpec = Readonly<z.output<typeof DistilSpecSchema>>;

/** Validates a spec (every problem listed, DISTIL_SPEC_INVALID) and freezes it. */
export function parseDistilSpec(input: unknown): DistilSpec {
  const r = DistilSpecSchema.refine((s) => s.stage !== "gate" || (s.trained !== undefined && s.out !== undefined), "stage \"gate\" needs `out` (the child) and `trained`").safeParse(input);
  if (!r.success) throw new ColonyError(DistilErrors.DISTIL_SPEC_INVALID, `invalid distillation spec: ${formatIssues(r.error).join("; ")}`);
  return Object.freeze(r.data);
}

export const CountsSchema = z.record(z.string(), z.number().int().min(0));

export const DistilResultSchema = z.strictObject({
  childFile: z.string(),
  format: z.enum(["gguf-model", "gguf-lora"]),
  /** The base model a "gguf-lora" child applies to. */
  base: z.string().optional(),
  datasetSha256: Sha256Schema,
  /** Training pairs per skill. */
  counts: CountsSchema,
  steps: z.number().int().min(0),
  seconds: z.number().min(0),
  tokensPerSecond: z.number().min(0),
  gate: GateReportSchema,
});
export type DistilResult = z.infer<typeof DistilResultSchema>;

/** What stage "train" ends with: the result less the gate, which the caller runs. */
export const TrainOutputSchema = DistilResultSchema.omit({ gate: true });
export type TrainOutput = z.infer<typeof TrainOutputSchema>;

export const DistilPhaseSchema = z.enum(["curate", "sample", "train", "export", "gate"]);
export type DistilPhase = z.infer<typeof DistilPhaseSchema>;

export const DistilProgressSchema = z.strictObject({
  phase: DistilPhaseSchema,
  step: z.number().int().min(0),
  total: z.number().int().min(0),
  loss: z.number().nullable(),
  tokensPerSecond: z.number().min(0),
});
export type DistilProgress = z.infer<typeof DistilProgressSchema>;

/** Worker -> job. */
export const WorkerMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("progress"), progress: DistilProgressSchema }),
  z.strictObject({ type: z.literal("done"), result: z.union([DistilResultSchema, TrainOutputSchema]) }),
  z.strictObject({ type: z.literal("error"), code: z.string().min(1).max(64), message: z.string().max(4096) }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessageSchema>;

/** Job -> worker. */
export const JobMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("start"), spec: z.unknown() }),
  z.strictObject({ type: z.literal("cancel") }),
]);
export type JobMessage = z.infer<typeof JobMessageSchema>;
