/**
 * The node's check of a genome's LoRA adapter (genome.adapter): the hardened GGUF reader, then the
 * adapter gate (gguf/lora-check.ts) against the base model the agent loads. Like a model, what
 * llama.cpp opens is the verified private copy (verified-models.ts), never the path given. Every
 * refusal is ADAPTER_INVALID; the message carries the GGUF code.
 */
import { stat } from "node:fs/promises";
import { ColonyError } from "../../common/errors.ts";
import { checkLoraAdapter, type LoraCheck } from "../../gguf/lora-check.ts";
import { readGgufHeaderFromFile } from "../../gguf/reader.ts";
import { NodeErrors } from "../errors.ts";
import type { ModelFacts } from "./model-file.ts";

function refused(name: string, err: unknown): ColonyError {
  const inner = err instanceof ColonyError ? `${err.code}: ` : "";
  return new ColonyError(NodeErrors.ADAPTER_INVALID, `adapter ${name} is refused: ${inner}${(err as Error).message}`, { file: name }, { cause: err });
}

/** The structural check run on the copy (the store's gate): a readable GGUF whose general.type is "adapter". */
export async function verifyAdapterFile(file: string, shownAs: string): Promise<ModelFacts> {
  try {
    const { size } = await stat(file);
    const h = await readGgufHeaderFromFile(file);
    if (h.metadata.get("general.type")?.value !== "adapter") throw new Error("general.type is not \"adapter\"");
    return { file: shownAs, sizeMB: size / 2 ** 20 };
  } catch (err) {
    throw refused(shownAs, err);
  }
}

/** Checks the verified adapter copy against the verified base model copy (both immutable, 0400). */
export async function checkAdapterFits(adapterCopy: string, baseCopy: string, shownAs: string): Promise<LoraCheck> {
  try {
    const [adapter, base] = await Promise.all([readGgufHeaderFromFile(adapterCopy), readGgufHeaderFromFile(baseCopy)]);
    return checkLoraAdapter(adapter, base);
  } catch (err) {
    throw refused(shownAs, err);
  }
}
