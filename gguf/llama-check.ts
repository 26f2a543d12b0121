/**
 * Model-level checks that run after the structural reader and before llama.cpp loads a file.
 * A file can be perfectly valid GGUF and still abort the whole process inside llama.cpp: fuzzing
 * a Colony model (docs/gguf.md, "llama.cpp crashes") found GGML_ASSERT aborts on duplicate
 * vocabulary entries and on a missing attention.head_count, and an uncaught std::out_of_range
 * when a byte token such as <0x31> was damaged. A node daemon hosts llama.cpp in-process, so these
 * are refused here, with GGUF_MODEL_INVALID, instead of crashing the daemon.
 *
 * Checked for every model: architecture key; tokenizer arrays (strings, unique, same lengths,
 * token types 0..6, special token ids inside the vocabulary; for SPM vocabularies all 256 byte
 * tokens well-formed). For `general.architecture = "llama"`: required hyperparameters present,
 * integer and sane, and every tensor llama.cpp expects present with the expected shape.
 */
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";
import type { GgufHeader } from "./header.ts";
import { GgufValueType, type GgufTensorInfo, type GgufValue } from "./types.ts";

function bad(message: string): ColonyError {
  return new ColonyError(GgufErrors.GGUF_MODEL_INVALID, message);
}

const INT_TYPES = new Set([GgufValueType.UINT8, GgufValueType.INT8, GgufValueType.UINT16, GgufValueType.INT16, GgufValueType.UINT32, GgufValueType.INT32, GgufValueType.UINT64, GgufValueType.INT64]);

function intValue(v: GgufValue | undefined, key: string, required: boolean): number | undefined {
  if (!v) {
    if (required) throw bad(`missing ${key}`);
    return undefined;
  }
  if (!INT_TYPES.has(v.type)) throw bad(`${key} must be an integer`);
  const n = Number(v.value);
  if (!Number.isSafeInteger(n)) throw bad(`${key} is out of range`);
  return n;
}

function arrayOf(h: GgufHeader, key: string, itemTypes: GgufValueType[]): unknown[] | undefined {
  const v = h.metadata.get(key);
  if (!v) return undefined;
  if (v.type !== GgufValueType.ARRAY || !itemTypes.includes(v.itemType)) throw bad(`${key} must be an array of ${itemTypes.map((t) => GgufValueType[t]).join(" or ")}`);
  return v.value;
}

const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;
const TOKEN_TYPE_BYTE = 6;

function checkTokenizer(h: GgufHeader): number | undefined {
  const tokens = arrayOf(h, "tokenizer.ggml.tokens", [GgufValueType.STRING]) as string[] | undefined;
  if (!tokens) return undefined;
  const n = tokens.length;
  if (n === 0) throw bad("tokenizer.ggml.tokens is empty");
  // llama.cpp asserts id_to_token.size() == token_to_id.size(): a duplicate aborts the process.
  const seen = new Set<string>();
  for (const t of tokens) {
    if (seen.has(t)) throw bad(`tokenizer.ggml.tokens has a duplicate entry ${JSON.stringify(t)}`);
    seen.add(t);
  }
  const scores = arrayOf(h, "tokenizer.ggml.scores", [GgufValueType.FLOAT32]);
  if (scores && scores.length !== n) throw bad(`tokenizer.ggml.scores has ${scores.length} entries for ${n} tokens`);
  const types = arrayOf(h, "tokenizer.ggml.token_type", [GgufValueType.INT32]) as number[] | undefined;
  if (types && types.length !== n) throw bad(`tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
  if (types) {
    types.forEach((t, i) => {
      if (t < 0 || t > 6) throw bad(`token ${i} has type ${t} (0..6 allowed)`);
      // llama.cpp parses byte tokens' hex text and throws (uncaught) when it is not <0xXX>.
      if (t === TOKEN_TYPE_BYTE && !BYTE_TOKEN.test(tokens[i]!)) throw bad(`byte token ${i} is ${JSON.stringify(tokens[i])}, not <0xXX>`);
    });
  }
  for (const key of ["bos", "eos", "unknown", "padding", "separator", "eot", "eom"]) {
    const id = intValue(h.metadata.get(`tokenizer.ggml.${key}_token_id`), `tokenizer.ggml.${key}_token_id`, false);
    if (id !== undefined && (id < 0 || id >= n)) throw bad(`tokenizer.ggml.${key}_token_id ${id} is outside the ${n}-token vocabulary`);
  }
  const model = h.metadata.get("tokenizer.ggml.model");
  if (model && model.type !== GgufValueType.STRING) throw bad("tokenizer.ggml.model must be a string");
  if (model?.value === "llama") {
    // SPM byte fallback looks up "<0xXX>" with map::at(): a missing byte token throws std::out_of_range.
    for (let b = 0; b < 256; b++) {
      const name = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      if (!seen.has(name)) throw bad(`SPM vocabulary lacks the byte token ${name}`);
    }
  }
  const declared = intValue(h.metadata.get("llama.vocab_size"), "llama.vocab_size", false);
  if (declared !== undefined && declared !== n) throw bad(`llama.vocab_size ${declared} disagrees with ${n} tokens`);
  return n;
}

function expectTensor(byName: Map<string, GgufTensorInfo>, name: string, dims: number[], optional = false): void {
  const t = byName.get(name);
  if (!t) {
    if (optional) return;
    throw bad(`missing tensor ${name}`);
  }
  if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
    throw bad(`tensor ${name} has dims [${t.dims.join(", ")}], expected [${dims.join(", ")}]`);
  }
}

function checkLlama(h: GgufHeader, nVocab: number | undefined): void {
  const get = (k: string, required = true) => intValue(h.metadata.get(`llama.${k}`), `llama.${k}`, required);
  const nCtx = get("context_length")!;
  const nEmbd = get("embedding_length")!;
  const nLayer = get("block_count")!;
  const nFf = get("feed_forward_length")!;
  const nHead = get("attention.head_count")!;
  const nHeadKv = get("attention.head_count_kv", false) ?? nHead;
  // Zero or absurd hyperparameters make llama.cpp assert (ne[dim] >= 1) instead of failing cleanly.
  for (const [k, v] of Object.entries({ context_length: nCtx, embedding_length: nEmbd, block_count: nLayer, feed_forward_length: nFf, "attention.head_count": nHead, "attention.head_count_kv": nHeadKv })) {
    if (v < 1 || v > 1 << 24) throw bad(`llama.${k} is ${v}`);
  }
  if (nEmbd % nHead !== 0) throw bad(`llama.embedding_length ${nEmbd} is not a multiple of the head count ${nHead}`);
  if (nHead % nHeadKv !== 0) throw bad(`llama.attention.head_count ${nHead} is not a multiple of head_count_kv ${nHeadKv}`);
  const headDim = nEmbd / nHead;
  const rope = get("rope.dimension_count", false);
  if (rope !== undefined && (rope < 1 || rope > headDim)) throw bad(`llama.rope.dimension_count ${rope} must be 1..${headDim}`);
  const eps = h.metadata.get("llama.attention.layer_norm_rms_epsilon");
  if (!eps || eps.type !== GgufValueType.FLOAT32 || !((eps.value as number) > 0)) throw bad("llama.attention.layer_norm_rms_epsilon must be a positive FLOAT32");

  const byName = new Map(h.tensorInfos.map((t) => [t.name, t]));
  const embd = byName.get("token_embd.weight");
  if (!embd) throw bad("missing tensor token_embd.weight");
  const vocab = nVocab ?? embd.dims[1]!;
  expectTensor(byName, "token_embd.weight", [nEmbd, vocab]);
  expectTensor(byName, "output_norm.weight", [nEmbd]);
  expectTensor(byName, "output.weight", [nEmbd, vocab], true);
  const kvDim = headDim * nHeadKv;
  for (let i = 0; i < nLayer; i++) {
    const p = `blk.${i}.`;
    expectTensor(byName, `${p}attn_norm.weight`, [nEmbd]);
    expectTensor(byName, `${p}attn_q.weight`, [nEmbd, nEmbd]);
    expectTensor(byName, `${p}attn_k.weight`, [nEmbd, kvDim]);
    expectTensor(byName, `${p}attn_v.weight`, [nEmbd, kvDim]);
    expectTensor(byName, `${p}attn_output.weight`, [nEmbd, nEmbd]);
    expectTensor(byName, `${p}ffn_norm.weight`, [nEmbd]);
    expectTensor(byName, `${p}ffn_gate.weight`, [nEmbd, nFf]);
    expectTensor(byName, `${p}ffn_up.weight`, [nEmbd, nFf]);
    expectTensor(byName, `${p}ffn_down.weight`, [nFf, nEmbd]);
  }
}

/**
 * Throws GGUF_MODEL_INVALID when a structurally valid header describes a model llama.cpp would
 * refuse or crash on. LoRA adapters (`general.type = "adapter"`) get the tokenizer checks only.
 */
export function checkLlamaModel(h: GgufHeader): void {
  const arch = h.metadata.get("general.architecture");
  if (!arch || arch.type !== GgufValueType.STRING || arch.value === "") throw bad("general.architecture must be a non-empty string");
  const nVocab = checkTokenizer(h);
  const type = h.metadata.get("general.type");
  const isAdapter = type?.type === GgufValueType.STRING && type.value === "adapter";
  if (arch.value === "llama" && !isAdapter) checkLlama(h, nVocab);
}
