/**
 * The model gate: model-level checks that run after the structural reader and before llama.cpp
 * loads a file. A file can be perfectly valid GGUF and still abort the whole process inside
 * llama.cpp (GGML_ASSERT, uncaught C++ exceptions), and a node daemon hosts llama.cpp
 * in-process, so the gate refuses such files instead of crashing the daemon (docs/gguf.md,
 * "Model checks").
 *
 * It is an allowlist: it accepts only what it fully models, a `general.architecture = "llama"`
 * model with an SPM vocabulary (the models Colony trains and the common llama GGUFs), checked
 * the way the llama.cpp that node-llama-cpp bundles reads it: vocabulary (vocab-check.ts), every
 * `llama.*` hyperparameter (llama-hparams.ts), the exact tensor set with shapes and types
 * (llama-tensors.ts). Anything else is GGUF_MODEL_UNCHECKED; a caller may accept such files after
 * the basic checks (`checkModel(h, { allowUnchecked: true })`), at its own risk.
 * test/model/model-gate-fuzz.test.ts loads what the gate accepts from mutated files in llama.cpp.
 */
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";
import type { GgufHeader } from "./header.ts";
import { readLlamaHparams } from "./llama-hparams.ts";
import { checkLlamaTensors } from "./llama-tensors.ts";
import { invalid, strKey, u32Key, unchecked } from "./model-keys.ts";
import { checkSpmVocabulary, checkVocabulary } from "./vocab-check.ts";

// Key families llama.cpp reads that the gate does not model: adapter.* belongs to LoRA files,
// xielu.* to another architecture.
const UNMODELLED_PREFIXES = ["adapter.", "xielu."];

/**
 * split.* makes llama.cpp open further files next to this one, and a split.count of the wrong
 * type aborts it in gguf.cpp (found by test/model/model-gate-fuzz.test.ts). The node loads one
 * verified file, so split models are refused outright, even when unchecked models are allowed.
 */
function checkNotSplit(h: GgufHeader): void {
  const key = [...h.metadata.keys()].find((k) => k.startsWith("split."));
  if (key) throw invalid(`${key}: split models are not supported (the node loads one verified file)`);
}

function architecture(h: GgufHeader): string {
  const arch = strKey(h, "general.architecture", true)!;
  if (arch === "") throw invalid("general.architecture is empty");
  return arch;
}

/**
 * The strict gate: throws GGUF_MODEL_INVALID for a fault llama.cpp would refuse or crash on, and
 * GGUF_MODEL_UNCHECKED for a file outside what the gate models; returns when the file is fully
 * checked. Metadata outside `general.`, `llama.`, `tokenizer.` and the families above is never
 * read by llama.cpp for a llama model (llama-arch.cpp, LLM_KV_NAMES), so it is left alone.
 */
export function checkLlamaModel(h: GgufHeader): void {
  const arch = architecture(h);
  // The general.* keys llama.cpp reads, with the type it reads them as (a wrong one fails the load).
  strKey(h, "general.name");
  u32Key(h, "general.file_type");
  const type = strKey(h, "general.type");
  if (type !== undefined && type !== "model") throw unchecked(`general.type is ${JSON.stringify(type)}: the model gate checks models, not ${type} files`);
  if (arch !== "llama") throw unchecked(`general.architecture ${JSON.stringify(arch)}: the model gate checks llama models only`);
  checkNotSplit(h);
  const family = [...h.metadata.keys()].find((k) => UNMODELLED_PREFIXES.some((p) => k.startsWith(p)));
  if (family) throw unchecked(`${family}: adapter and other architectures' keys are not modelled by the gate`);
  const nVocab = checkSpmVocabulary(h, checkVocabulary(h));
  checkLlamaTensors(h, readLlamaHparams(h, nVocab));
}

export interface ModelCheck {
  architecture: string;
  /** "full": the strict gate passed; "basic": only the vocabulary checks ran (allowUnchecked). */
  coverage: "full" | "basic";
  /** Why the strict gate did not cover the file (coverage "basic"). */
  uncheckedReason?: string;
}

export interface ModelCheckOptions {
  /**
   * Accept a file the strict gate does not model (another architecture or tokenizer, an adapter,
   * an unmodelled key or tensor type) after the vocabulary checks that hold for every tokenizer.
   * Such a file may still abort llama.cpp. Default false.
   */
  allowUnchecked?: boolean;
}

/** The gate as the node and `colony gguf check` use it. */
export function checkModel(h: GgufHeader, opts: ModelCheckOptions = {}): ModelCheck {
  try {
    checkLlamaModel(h);
    return { architecture: architecture(h), coverage: "full" };
  } catch (err) {
    if (!(err instanceof ColonyError) || err.code !== GgufErrors.GGUF_MODEL_UNCHECKED || !opts.allowUnchecked) throw err;
    const arch = architecture(h);
    checkNotSplit(h);
    checkVocabulary(h);
    return { architecture: arch, coverage: "basic", uncheckedReason: err.message };
  }
}
