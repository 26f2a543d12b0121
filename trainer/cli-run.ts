import { availableParallelism } from "node:os";
import { ColonyError } from "../common/errors.ts";
import { createLogger, type Logger } from "../common/logger.ts";
import { Rng } from "../common/random.ts";
import { encodePairs, readJsonlFile } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { kernelInfo, setKernelThreads } from "./kernels.ts";
import { exportModelGguf } from "./gguf-export.ts";
import { LlamaModel, type LlamaConfig } from "./model.ts";
import { validateShape, type ShapeRequest } from "./shape.ts";
import { Tokenizer } from "./tokenizer.ts";
import { train, type Trainable, type TrainExample, type TrainOptions, type TrainResult } from "./train.ts";

/** Everything `colony train` was asked for, already parsed into numbers (cli/commands/train.ts). */
export interface TrainCommandInput {
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

export async function runTrainCommand(input: TrainCommandInput): Promise<TrainSummary> {
  const log = createLogger({ level: process.env.COLONY_LOG_LEVEL ?? "info", name: "train" });
  if (input.threads !== undefined && (!Number.isInteger(input.threads) || input.threads < 1)) {
    throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, `--threads must be >= 1, got ${input.threads}`);
  }
  const threads = input.threads ?? availableParallelism();
  setKernelThreads(threads);
  if (input.loraBase !== undefined) {
    const { runLoraTraining } = await import("./cli-lora.ts");
    return runLoraTraining(input, threads, log);
  }
  // Check the shape before reading data: an impossible shape should fail in milliseconds.
  validateShape(input.shape);
  const pairs = readJsonlFile(input.data);
  const tokenizer = Tokenizer.fromTexts(pairs.flatMap((p) => [p.prompt, p.completion]));
  const s = input.shape;
  const config: LlamaConfig = { vocabSize: tokenizer.vocabSize, dim: s.dim, nLayers: s.layers, nHeads: s.heads, nKvHeads: s.kvHeads, ffnDim: s.ffn, contextLength: s.context, normEps: 1e-5, ropeTheta: 10000 };
  const examples = encodePairs(pairs, tokenizer, config.contextLength);
  const model = LlamaModel.init(config, new Rng(input.seed));
  log.info({ examples: examples.length, params: model.parameterCount, vocab: tokenizer.vocabSize, kernels: kernelInfo() }, "training");
  const r = await trainFromCommand(model, examples, input, log, { config: { ...config } });
  await exportModelGguf(model, tokenizer, input.out, { name: input.name ?? "colony-trained" });
  return summarize(input, "full", model.parameterCount, r);
}

/**
 * Runs `train` with the command's options. Ctrl-C (or SIGTERM) stops after the current step and
 * leaves a checkpoint to --resume from, reported as TRAIN_INTERRUPTED.
 */
export async function trainFromCommand(
  model: Trainable,
  examples: readonly TrainExample[],
  input: TrainCommandInput,
  log: Logger,
  extra: Pick<TrainOptions, "config" | "weightDecay">,
): Promise<TrainResult> {
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let r: TrainResult;
  try {
    r = await train(model, examples, {
      signal: abort.signal,
      steps: input.steps,
      batchSize: input.batch,
      lr: input.lr,
      ...(input.warmup !== undefined ? { warmupSteps: input.warmup } : {}),
      seed: input.seed,
      ...extra,
      checkpointPath: input.checkpoint,
      checkpointEvery: input.checkpointEvery,
      ...(input.resume !== undefined ? { resumeFrom: input.resume } : {}),
      forceProgress: input.progress,
      log,
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (abort.signal.aborted) {
    throw new ColonyError(TrainErrors.TRAIN_INTERRUPTED, `interrupted at step ${r.step} of ${input.steps}; checkpoint saved to ${input.checkpoint} (continue with --resume ${input.checkpoint})`);
  }
  return r;
}

export function summarize(input: TrainCommandInput, mode: TrainSummary["mode"], params: number, r: TrainResult): TrainSummary {
  return {
    out: input.out,
    mode,
    params,
    steps: r.step,
    finalLoss: r.losses.at(-1) ?? null,
    seconds: Number(r.seconds.toFixed(3)),
    tokensPerSecond: r.seconds > 0 ? Math.round(r.tokens / r.seconds) : 0,
    checkpoint: input.checkpoint,
  };
}
