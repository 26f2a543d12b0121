/**
 * Loads a GGUF llama model written by exportModelGguf (F32 or F16 tensors) back into a LlamaModel and
 * its Tokenizer, through the hardened gguf/ reader; anything that is not a Colony llama model is
 * rejected with MODEL_GGUF_INVALID.
 */
import { ColonyError } from "../../common/errors.ts";
import { readGgufFile } from "../../gguf/reader.ts";
import { LlamaModel, tensorShapes } from "../model.ts";
import { Tokenizer } from "../tokenizer.ts";
import type { LlamaConfig } from "./config.ts";
import { ModelErrors } from "./errors.ts";

export interface ParsedGguf {
  metadata: Map<string, unknown>;
  tensors: Map<string, { dims: number[]; type: number; data: Float32Array }>;
}

function fail(message: string): ColonyError {
  return new ColonyError(ModelErrors.MODEL_GGUF_INVALID, message);
}

/**
 * Reads a GGUF file through the hardened gguf/ reader (limits, layout and type checks) and flattens it
 * to plain metadata values and tensors by name. Any reader error becomes MODEL_GGUF_INVALID, with the
 * reader's GGUF_* code in the message and as the cause.
 */
export async function readModelFile(path: string): Promise<ParsedGguf> {
  let file: Awaited<ReturnType<typeof readGgufFile>>;
  try {
    file = await readGgufFile(path);
  } catch (err) {
    const code = err instanceof ColonyError ? err.code : "IO";
    throw new ColonyError(ModelErrors.MODEL_GGUF_INVALID, `${path}: ${code}: ${(err as Error).message}`, { path, cause: code }, { cause: err });
  }
  const metadata = new Map<string, unknown>();
  for (const [k, v] of file.metadata) metadata.set(k, v.value);
  const tensors = new Map<string, { dims: number[]; type: number; data: Float32Array }>();
  for (const t of file.tensors) tensors.set(t.name, { dims: t.dims, type: t.type, data: t.data });
  return { metadata, tensors };
}

/** Reads a Colony llama GGUF file into a model (weights as F32) and its tokenizer. */
export async function loadModelGguf(path: string): Promise<{ model: LlamaModel; tokenizer: Tokenizer; metadata: Map<string, unknown> }> {
  const { metadata, tensors } = await readModelFile(path);
  const config = configFromMetadata((k) => metadata.get(k));
  const tokenizer = Tokenizer.fromGgufMetadata(Object.fromEntries(metadata));
  const params = new Map<string, Float32Array>();
  for (const [name, [rows, cols]] of tensorShapes(config)) {
    const t = tensors.get(name);
    if (!t) throw fail(`tensor ${name} missing`);
    const want = rows === 1 ? [cols] : [cols, rows];
    if (t.dims.join(",") !== want.join(",")) throw fail(`tensor ${name} has dims [${t.dims}], expected [${want}]`);
    params.set(name, t.data);
  }
  return { model: new LlamaModel(config, params), tokenizer, metadata };
}

/** LlamaConfig from GGUF metadata given as plain values (shared by the loader and adapters). */
export function configFromMetadata(get: (key: string) => unknown): LlamaConfig {
  const num = (k: string): number => {
    const v = get(k);
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    throw new ColonyError(ModelErrors.MODEL_GGUF_INVALID, `metadata ${k} missing or not a number`);
  };
  if (get("general.architecture") !== "llama") {
    throw new ColonyError(ModelErrors.MODEL_GGUF_INVALID, `general.architecture is ${String(get("general.architecture"))}, expected llama`);
  }
  const dim = num("llama.embedding_length");
  const tokens = get("tokenizer.ggml.tokens");
  const vocab = get("llama.vocab_size") !== undefined ? num("llama.vocab_size") : Array.isArray(tokens) ? tokens.length : NaN;
  return {
    vocabSize: vocab,
    dim,
    nLayers: num("llama.block_count"),
    nHeads: num("llama.attention.head_count"),
    nKvHeads: get("llama.attention.head_count_kv") !== undefined ? num("llama.attention.head_count_kv") : num("llama.attention.head_count"),
    ffnDim: num("llama.feed_forward_length"),
    contextLength: num("llama.context_length"),
    normEps: num("llama.attention.layer_norm_rms_epsilon"),
    ropeTheta: get("llama.rope.freq_base") !== undefined ? num("llama.rope.freq_base") : 10000,
  };
}
