import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { TrainErrors } from "./errors.ts";
import type { ShapeRequest } from "./shape.ts";
import { train, type Trainable, type TrainExample, type TrainOptions, type TrainResult } from "./train.ts";

/**
 * One training job as `colony train` describes it, already parsed into numbers (cli/commands/train.ts),
 * and the parts shared by its two kinds: a new model (trainer/run-job.ts) and a LoRA adapter
 * (trainer/job-lora.ts).
 */
export interface TrainJob {
  data: string;
  out: string;
  shape: ShapeRequest;
  steps: number;
  batch: number;
  lr: number;
  warmup: number | undefined;
  seed: number;
  threads: number | undefined;
  resume: string | undefined;
  checkpoint: string;
  checkpointEvery: number;
  loraBase: string | undefined;
  loraRank: number;
  name: string | undefined;
  progress: boolean;
}

/** What the caller gives a job: where it logs, and the signal that stops it (Ctrl-C in the CLI). */
export interface JobContext {
  log: Logger;
  signal: AbortSignal;
}

export interface TrainSummary {
  out: string;
  mode: "full" | "lora";
  params: number;
  steps: number;
  finalLoss: number | null;
  seconds: number;
  tokensPerSecond: number;
  checkpoint: string;
}

/**
 * Runs `train` with the job's options. When `ctx.signal` aborts, training stops after the current
 * step and leaves a checkpoint to resume from, reported as TRAIN_INTERRUPTED.
 */
export async function trainForJob(
  model: Trainable,
  examples: readonly TrainExample[],
  job: TrainJob,
  ctx: JobContext,
  extra: Pick<TrainOptions, "config" | "weightDecay">,
): Promise<TrainResult> {
  const r = await train(model, examples, {
    signal: ctx.signal,
    steps: job.steps,
    batchSize: job.batch,
    lr: job.lr,
    ...(job.warmup !== undefined ? { warmupSteps: job.warmup } : {}),
    seed: job.seed,
    ...extra,
    checkpointPath: job.checkpoint,
    checkpointEvery: job.checkpointEvery,
    ...(job.resume !== undefined ? { resumeFrom: job.resume } : {}),
    forceProgress: job.progress,
    log: ctx.log,
  });
  if (ctx.signal.aborted) {
    throw new ColonyError(TrainErrors.TRAIN_INTERRUPTED, `interrupted at step ${r.step} of ${job.steps}; checkpoint saved to ${job.checkpoint} (continue with --resume ${job.checkpoint})`);
  }
  return r;
}

export function summarize(job: TrainJob, mode: TrainSummary["mode"], params: number, r: TrainResult): TrainSummary {
  return {
    out: job.out,
    mode,
    params,
    steps: r.step,
    finalLoss: r.losses.at(-1) ?? null,
    seconds: Number(r.seconds.toFixed(3)),
    tokensPerSecond: r.seconds > 0 ? Math.round(r.tokens / r.seconds) : 0,
    checkpoint: job.checkpoint,
  };
}
