import { availableParallelism } from "node:os";
import { ColonyError } from "../common/errors.ts";
import { Rng } from "../common/random.ts";
import { encodePairs, readJsonlFile } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { exportModelGguf } from "./gguf-export.ts";
import { summarize, trainForJob, type JobContext, type TrainJob, type TrainSummary } from "./job.ts";
import { kernelInfo, setKernelThreads } from "./kernels.ts";
import type { LlamaConfig } from "./llama/config.ts";
import { LlamaModel } from "./model.ts";
import { validateShape } from "./shape.ts";
import { Tokenizer } from "./tokenizer.ts";

/**
 * Runs a training job: a new model of the job's shape, or with `loraBase` a LoRA adapter
 * (trainer/job-lora.ts), written as GGUF to `job.out`. `ctx.signal` stops it after the current step.
 */
export async function runTrainJob(job: TrainJob, ctx: JobContext): Promise<TrainSummary> {
  if (job.threads !== undefined && (!Number.isInteger(job.threads) || job.threads < 1)) {
    throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, `--threads must be >= 1, got ${job.threads}`);
  }
  const threads = job.threads ?? availableParallelism();
  setKernelThreads(threads);
  if (job.loraBase !== undefined) {
    const { runLoraJob } = await import("./job-lora.ts");
    return runLoraJob(job, threads, ctx);
  }
  // Check the shape before reading data: an impossible shape should fail in milliseconds.
  validateShape(job.shape);
  const pairs = readJsonlFile(job.data);
  const tokenizer = Tokenizer.fromTexts(pairs.flatMap((p) => [p.prompt, p.completion]));
  const s = job.shape;
  const config: LlamaConfig = { vocabSize: tokenizer.vocabSize, dim: s.dim, nLayers: s.layers, nHeads: s.heads, nKvHeads: s.kvHeads, ffnDim: s.ffn, contextLength: s.context, normEps: 1e-5, ropeTheta: 10000 };
  const examples = encodePairs(pairs, tokenizer, config.contextLength);
  const model = LlamaModel.init(config, new Rng(job.seed));
  ctx.log.info({ examples: examples.length, params: model.parameterCount, vocab: tokenizer.vocabSize, kernels: kernelInfo() }, "training");
  const r = await trainForJob(model, examples, job, ctx, { config: { ...config } });
  await exportModelGguf(model, tokenizer, job.out, { name: job.name ?? "colony-trained" });
  return summarize(job, "full", model.parameterCount, r);
}
