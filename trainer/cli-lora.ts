import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { Rng } from "../common/random.ts";
import type { TrainCommandInput, TrainSummary } from "./cli-run.ts";
import { encodePairs, readJsonlFile } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { loadModelGguf } from "./gguf-export.ts";
import { exportLoraGguf, LoraModel } from "./lora.ts";
import { train } from "./train.ts";

/**
 * `colony train --lora-base BASE.gguf`: trains a LoRA adapter on a frozen base model and writes the
 * adapter GGUF (apply it with node-llama-cpp `createContext({ lora: { adapters: [{ filePath }] } })`).
 * The data is tokenized with the base model's vocabulary; the shape flags do not apply. Adapters go
 * on every adaptable weight: a small base needs the extra capacity more than it needs the savings.
 */
export async function runLoraTraining(input: TrainCommandInput, threads: number, log: Logger): Promise<TrainSummary> {
  if (!Number.isInteger(input.loraRank) || input.loraRank < 1) {
    throw new ColonyError(TrainErrors.TRAIN_OPTIONS_INVALID, `--lora-rank must be an integer >= 1, got ${input.loraRank}`);
  }
  const baseFile = input.loraBase!;
  const { model: base, tokenizer } = await loadModelGguf(baseFile);
  const pairs = readJsonlFile(input.data);
  const examples = encodePairs(pairs, tokenizer, base.config.contextLength);
  const lora = LoraModel.create(base, { rank: input.loraRank, targets: "all" }, new Rng(input.seed));
  // The checkpoint identity includes the base file's hash: an adapter resumed on another base is nonsense.
  const baseSha256 = createHash("sha256").update(readFileSync(baseFile)).digest("hex");
  log.info({ examples: examples.length, adapterParams: lora.parameterCount, rank: input.loraRank, threads }, "training LoRA adapter");
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const r = await train(lora, examples, {
    signal: abort.signal,
    steps: input.steps,
    batchSize: input.batch,
    lr: input.lr,
    ...(input.warmup !== undefined ? { warmupSteps: input.warmup } : {}),
    seed: input.seed,
    // Decay would pull the random A towards 0 and shrink the adapter for no gain on a tiny dataset.
    weightDecay: 0,
    config: { ...base.config, lora: { rank: input.loraRank, alpha: lora.alpha, targets: "all", baseSha256 } },
    checkpointPath: input.checkpoint,
    checkpointEvery: input.checkpointEvery,
    ...(input.resume !== undefined ? { resumeFrom: input.resume } : {}),
    forceProgress: input.progress,
    log,
  });
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  if (abort.signal.aborted) {
    throw new ColonyError(TrainErrors.TRAIN_INTERRUPTED, `interrupted at step ${r.step} of ${input.steps}; checkpoint saved to ${input.checkpoint} (continue with --resume ${input.checkpoint})`);
  }
  await exportLoraGguf(lora, base, input.out, { name: input.name ?? "colony-lora" });
  return {
    out: input.out,
    mode: "lora",
    params: lora.parameterCount,
    steps: r.step,
    finalLoss: r.losses.at(-1) ?? null,
    seconds: Number(r.seconds.toFixed(3)),
    tokensPerSecond: r.seconds > 0 ? Math.round(r.tokens / r.seconds) : 0,
    checkpoint: input.checkpoint,
  };
}
