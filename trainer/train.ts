import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { silentLogger } from "../common/logger.ts";
import { assertCheckpointMatches, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { clipGlobalNorm } from "./clip.ts";
import { BatchSampler, type Example } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { AdamW } from "./optimizer.ts";
import { ProgressBar } from "./progress.ts";
import { learningRateAt } from "./schedule.ts";

/**
 * The training loop. Everything random is derived from `seed` (weights by the caller, data order
 * by the sampler), every step is a pure function of the state before it, and the state is what a
 * checkpoint holds, so a run is reproducible bit for bit and a resumed run equals an
 * uninterrupted one.
 */

/** A training sequence, optionally with a teacher's next-token distributions (distillation). */
export interface TrainExample extends Example {
  /** [T, vocab] teacher probabilities, row-major (see trainer/llama/loss.ts). */
  softTargets?: Float32Array;
  /** Weight of the soft loss vs the hard one, 0..1. */
  softWeight?: number;
}

/** What the loop needs from a model: LlamaModel and LoraModel both fit. */
export interface Trainable {
  /** The tensors being trained (for LoRA: the adapter's A and B, not the frozen base). */
  readonly params: Map<string, Float32Array>;
  /**
   * Adds the gradient of the batch's loss (mean over masked positions of the batch) to `grads` and
   * returns that mean loss and the number of masked positions.
   */
  forwardBackward(batch: TrainExample[], grads: Map<string, Float32Array>): { loss: number; count: number };
}

export interface TrainOptions {
  steps: number;
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Default min(100, steps/10). */
  warmupSteps?: number;
  /** Default lr/10. */
  minLr?: number;
  /** Default 0.01. */
  weightDecay?: number;
  /** Global gradient-norm limit; 0 disables. Default 1. */
  clipNorm?: number;
  /** Seeds the data order (the caller seeds the weights with it too). */
  seed: number;
  /** Save a checkpoint every N steps (and at the end) when checkpointPath is set. Default 0 = only at the end. */
  checkpointEvery?: number;
  checkpointPath?: string;
  /** Resume from this checkpoint file. */
  resumeFrom?: string;
  /** Stop after this step even though `steps` is larger (used to test resume). */
  stopAfter?: number;
  /** Model config saved in checkpoints and checked on resume. */
  config: Record<string, unknown>;
  /** Draw a progress bar even when stderr is not a TTY. */
  forceProgress?: boolean;
  /** Disable the progress bar entirely (tests). Default: shown only on a TTY. */
  progress?: boolean;
  log?: Logger;
  /** When aborted, training stops after the current step and saves a checkpoint (Ctrl-C in the CLI). */
  signal?: AbortSignal;
  /** Called after each step (1-based step number). */
  onStep?: (s: { step: number; loss: number; lr: number; gradNorm: number; tokens: number }) => void;
}

export interface TrainResult {
  /** Mean loss per masked token of each step run in this call. */
  losses: number[];
  /** Step reached (== steps unless stopAfter or an abort). */
  step: number;
  /** Input tokens processed in this call (all positions, masked or not). */
  tokens: number;
  seconds: number;
}

/** The options a resume must share with the original run; anything else may change. */
function identity(o: TrainOptions): Record<string, unknown> {
  return { steps: o.steps, batchSize: o.batchSize, lr: o.lr, warmupSteps: o.warmupSteps ?? null, minLr: o.minLr ?? null, weightDecay: o.weightDecay ?? null, clipNorm: o.clipNorm ?? null, seed: o.seed };
}

export function validateTrainOptions(o: TrainOptions): void {
  const problems: string[] = [];
  const posInt = (name: string, v: number | undefined, min = 1) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) problems.push(`${name} must be an integer >= ${min}, got ${v}`);
  };
  posInt("steps", o.steps);
  posInt("batch", o.batchSize);
  posInt("warmup", o.warmupSteps, 0);
  posInt("checkpoint-every", o.checkpointEvery, 0);
  if (!(o.lr > 0 && o.lr < 10)) problems.push(`lr must be in (0, 10), got ${o.lr}`);
  if (o.clipNorm !== undefined && !(o.clipNorm >= 0)) problems.push(`clip must be >= 0, got ${o.clipNorm}`);
  if (o.weightDecay !== undefined && !(o.weightDecay >= 0 && o.weightDecay < 1)) problems.push(`weight decay must be in [0, 1), got ${o.weightDecay}`);
  if (!Number.isSafeInteger(o.seed)) problems.push(`seed must be an integer, got ${o.seed}`);
  if (problems.length) throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, problems.join("; "), { problems });
}

export function createGradBuffers(params: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of params) grads.set(name, new Float32Array(p.length));
  return grads;
}

export async function train(model: Trainable, examples: readonly TrainExample[], o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  const log = o.log ?? silentLogger;
  const warmupSteps = o.warmupSteps ?? Math.min(100, Math.floor(o.steps / 10));
  const schedule = { lr: o.lr, warmupSteps, totalSteps: o.steps, ...(o.minLr !== undefined ? { minLr: o.minLr } : {}) };
  const opt = new AdamW(model.params, { weightDecay: o.weightDecay ?? 0.01 });
  let sampler = new BatchSampler(examples as TrainExample[], o.batchSize, o.seed);
  let step = 0;

  if (o.resumeFrom) {
    const ck = loadCheckpoint(o.resumeFrom);
    assertCheckpointMatches(o.resumeFrom, ck, model.params);
    const want = JSON.stringify({ config: o.config, train: identity(o) });
    const got = JSON.stringify({ config: ck.config, train: ck.train });
    if (want !== got) {
      throw new ColonyError(TrainErrors.TRAIN_CHECKPOINT_INVALID, `checkpoint ${o.resumeFrom} was made with other settings: ${got}; this run has ${want}`);
    }
    for (const [name, p] of model.params) p.set(ck.params.get(name)!);
    opt.load({ step: ck.optimizerStep, m: ck.m, v: ck.v });
    sampler = new BatchSampler(examples as TrainExample[], o.batchSize, o.seed, ck.sampler);
    step = ck.step;
    log.info({ step, file: o.resumeFrom }, "resumed from checkpoint");
  }

  const save = (): void => {
    if (!o.checkpointPath) return;
    saveCheckpoint(o.checkpointPath, { step, optimizerStep: opt.step, config: o.config, train: identity(o), sampler: sampler.position, params: model.params, m: opt.m, v: opt.v });
    log.debug({ step, file: o.checkpointPath }, "checkpoint saved");
  };

  const grads = createGradBuffers(model.params);
  const last = Math.min(o.steps, o.stopAfter ?? o.steps);
  const bar = new ProgressBar({ totalSteps: o.steps, force: o.forceProgress === true });
  const losses: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  while (step < last && !o.signal?.aborted) {
    for (const g of grads.values()) g.fill(0);
    const batch = sampler.next();
    const { loss, count } = model.forwardBackward(batch, grads);
    const meanLoss = count > 0 ? loss : 0;
    if (!Number.isFinite(meanLoss)) {
      throw new ColonyError(TrainErrors.TRAIN_LOSS_NOT_FINITE, `loss is ${meanLoss} at step ${step + 1}; lower the learning rate (now ${o.lr})`, { step: step + 1 });
    }
    const gradNorm = clipGlobalNorm(grads, o.clipNorm ?? 1);
    const lr = learningRateAt(step, schedule);
    opt.update(model.params, grads, lr);
    step++;
    let stepTokens = 0;
    for (const ex of batch) stepTokens += ex.tokens.length;
    tokens += stepTokens;
    losses.push(meanLoss);
    if (o.progress !== false) bar.update(step, meanLoss, stepTokens);
    o.onStep?.({ step, loss: meanLoss, lr, gradNorm, tokens: stepTokens });
    if (o.checkpointEvery && step % o.checkpointEvery === 0 && step < last) save();
    // Yield after every step (microseconds, against milliseconds per step) so a SIGINT handler can run.
    await new Promise<void>((r) => setImmediate(r));
  }
  bar.done();
  save();
  const seconds = (performance.now() - t0) / 1000;
  log.info({ step, tokens, seconds, loss: losses.at(-1) }, "training finished");
  return { losses, step, tokens, seconds };
}
