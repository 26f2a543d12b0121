/**
 * Writes a LlamaModel + Tokenizer as a GGUF file llama.cpp loads as a "llama" model (all tensors F32,
 * or F16 on request), and reads such a file back into a model and tokenizer.
 *
 * Tensors are copied as they are: our params are row-major [out, in], which is what ggml stores for a
 * tensor with ne = [in, out]. Metadata keys follow llama.cpp's llama loader (docs/model.md lists them).
 */
import { ColonyError } from "../common/errors.ts";
import { meta } from "../gguf/meta.ts";
import { GgmlType, type GgufTensor, type GgufValue } from "../gguf/types.ts";
import { encodeGguf, writeGgufFile } from "../gguf/writer.ts";
import { ModelErrors } from "./llama/errors.ts";
import { LlamaModel, tensorShapes } from "./model.ts";
import { Tokenizer } from "./tokenizer.ts";

export interface ExportOptions {
  /** general.name. Default "colony-llama". */
  name?: string;
  /** Tensor storage: "f32" (default, exact) or "f16" (half the size; norms stay F32 as llama.cpp expects). */
  dtype?: "f32" | "f16";
  /** tokenizer.ggml.add_bos_token. Default true. */
  addBos?: boolean;
  /** Extra metadata (e.g. colony.* provenance keys), added last. */
  extraMetadata?: Array<[string, GgufValue]>;
}

/** GGUF ne order of a row-major [rows, cols] tensor (1-D for norm vectors). */
function ggmlDims(rows: number, cols: number): number[] {
  return rows === 1 ? [cols] : [cols, rows];
}

export function modelGgufMetadata(model: LlamaModel, tokenizer: Tokenizer, opts: ExportOptions = {}): Array<[string, GgufValue]> {
  const c = model.config;
  if (tokenizer.vocabSize !== c.vocabSize) {
    throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `tokenizer has ${tokenizer.vocabSize} tokens, the model ${c.vocabSize}`);
  }
  const tok = tokenizer.toGgufMetadata(opts.addBos === undefined ? {} : { addBos: opts.addBos });
  const f16 = opts.dtype === "f16";
  const m: Array<[string, GgufValue]> = [
    ["general.architecture", meta.str("llama")],
    ["general.name", meta.str(opts.name ?? "colony-llama")],
    // llama_ftype: 0 = ALL_F32, 1 = MOSTLY_F16
    ["general.file_type", meta.u32(f16 ? 1 : 0)],
    ["general.alignment", meta.u32(32)],
    ["llama.context_length", meta.u32(c.contextLength)],
    ["llama.embedding_length", meta.u32(c.dim)],
    ["llama.block_count", meta.u32(c.nLayers)],
    ["llama.feed_forward_length", meta.u32(c.ffnDim)],
    ["llama.attention.head_count", meta.u32(c.nHeads)],
    ["llama.attention.head_count_kv", meta.u32(c.nKvHeads)],
    ["llama.rope.dimension_count", meta.u32(c.dim / c.nHeads)],
    ["llama.attention.layer_norm_rms_epsilon", meta.f32(c.normEps)],
    ["llama.rope.freq_base", meta.f32(c.ropeTheta)],
    ["llama.vocab_size", meta.u32(c.vocabSize)],
    ["tokenizer.ggml.model", meta.str(tok["tokenizer.ggml.model"])],
    ["tokenizer.ggml.tokens", meta.strs(tok["tokenizer.ggml.tokens"])],
    ["tokenizer.ggml.scores", meta.f32s(tok["tokenizer.ggml.scores"])],
    ["tokenizer.ggml.token_type", meta.i32s(tok["tokenizer.ggml.token_type"])],
    ["tokenizer.ggml.bos_token_id", meta.u32(tok["tokenizer.ggml.bos_token_id"])],
    ["tokenizer.ggml.eos_token_id", meta.u32(tok["tokenizer.ggml.eos_token_id"])],
    ["tokenizer.ggml.unknown_token_id", meta.u32(tok["tokenizer.ggml.unknown_token_id"])],
    ["tokenizer.ggml.add_bos_token", meta.bool(tok["tokenizer.ggml.add_bos_token"])],
    ["tokenizer.ggml.add_eos_token", meta.bool(tok["tokenizer.ggml.add_eos_token"])],
    ["tokenizer.ggml.add_space_prefix", meta.bool(tok["tokenizer.ggml.add_space_prefix"])],
  ];
  return [...m, ...(opts.extraMetadata ?? [])];
}

export function modelGgufTensors(model: LlamaModel, opts: ExportOptions = {}): GgufTensor[] {
  const out: GgufTensor[] = [];
  for (const [name, [rows, cols]] of tensorShapes(model.config)) {
    const type = opts.dtype === "f16" && rows > 1 ? GgmlType.F16 : GgmlType.F32;
    out.push({ name, dims: ggmlDims(rows, cols), type, data: model.params.get(name)! });
  }
  return out;
}

/** The GGUF bytes of the model (for hashing or signing before writing). */
export function encodeModelGguf(model: LlamaModel, tokenizer: Tokenizer, opts: ExportOptions = {}): Buffer {
  return encodeGguf({ metadata: modelGgufMetadata(model, tokenizer, opts), tensors: modelGgufTensors(model, opts) });
}

export async function exportModelGguf(model: LlamaModel, tokenizer: Tokenizer, path: string, opts: ExportOptions = {}): Promise<void> {
  await writeGgufFile(path, { metadata: modelGgufMetadata(model, tokenizer, opts), tensors: modelGgufTensors(model, opts) });
}

/** Reads back what exportModelGguf wrote (F32 or F16 tensors) into a model and its tokenizer. */
export { configFromMetadata, loadModelGguf } from "./llama/gguf-load.ts";
