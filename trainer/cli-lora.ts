import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { Rng } from "../common/random.ts";
import { summarize, trainFromCommand, type TrainCommandInput, type TrainSummary } from "./cli-run.ts";
import { encodePairs, readJsonlFile } from "./dataset.ts";
import { TrainErrors } from "./errors.ts";
import { loadModelGguf } from "./gguf-export.ts";
import { exportLoraGguf, LoraModel } from "./lora.ts";

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
  // Decay would pull the random A towards 0 and shrink the adapter for no gain on a tiny dataset.
  const config = { ...base.config, lora: { rank: input.loraRank, alpha: lora.alpha, targets: "all", baseSha256 } };
  const r = await trainFromCommand(lora, examples, input, log, { weightDecay: 0, config });
  await exportLoraGguf(lora, base, input.out, { name: input.name ?? "colony-lora" });
  return summarize(input, "lora", lora.parameterCount, r);
}
