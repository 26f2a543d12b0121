import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ColonyError } from "../common/errors.ts";
import { Rng } from "../common/random.ts";
import { encodePairs, readJsonlFile } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { loadModelGguf } from "./gguf-export.ts";
import { summarize, trainForJob, type JobContext, type TrainJob, type TrainSummary } from "./job.ts";
import { exportLoraGguf, LoraModel } from "./lora.ts";

/**
 * `colony train --lora-base BASE.gguf`: trains a LoRA adapter on a frozen base model and writes the
 * adapter GGUF (apply it with node-llama-cpp `createContext({ lora: { adapters: [{ filePath }] } })`).
 * The data is tokenized with the base model's vocabulary; the shape flags do not apply. Adapters go
 * on every adaptable weight: a small base needs the extra capacity more than it needs the savings.
 */
export async function runLoraJob(job: TrainJob, threads: number, ctx: JobContext): Promise<TrainSummary> {
  if (!Number.isInteger(job.loraRank) || job.loraRank < 1) {
    throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, `--lora-rank must be an integer >= 1, got ${job.loraRank}`);
  }
  const baseFile = job.loraBase!;
  const { model: base, tokenizer } = await loadModelGguf(baseFile);
  const pairs = readJsonlFile(job.data);
  const examples = encodePairs(pairs, tokenizer, base.config.contextLength);
  const lora = LoraModel.create(base, { rank: job.loraRank, targets: "all" }, new Rng(job.seed));
  // The checkpoint identity includes the base file's hash: an adapter resumed on another base is nonsense.
  const baseSha256 = createHash("sha256").update(readFileSync(baseFile)).digest("hex");
  ctx.log.info({ examples: examples.length, adapterParams: lora.parameterCount, rank: job.loraRank, threads }, "training LoRA adapter");
  // Decay would pull the random A towards 0 and shrink the adapter for no gain on a tiny dataset.
  const config = { ...base.config, lora: { rank: job.loraRank, alpha: lora.alpha, targets: "all", baseSha256 } };
  const r = await trainForJob(lora, examples, job, ctx, { weightDecay: 0, config });
  await exportLoraGguf(lora, base, job.out, { name: job.name ?? "colony-lora" });
  return summarize(job, "lora", lora.parameterCount, r);
}
