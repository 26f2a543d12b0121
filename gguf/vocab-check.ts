/**
 * Vocabulary checks of the model gate, after llama.cpp's vocabulary loader (llama-vocab.cpp,
 * `llama_vocab::impl::load`) and the crashes fuzzing found in it (docs/gguf.md):
 *
 * - `checkVocabulary`: what holds for every tokenizer. Token texts become `std::string`s keyed in
 *   a map and the loader asserts the map has one entry per token (GGML_ASSERT, a process abort):
 *   so no duplicates, no NUL (C strings end there: "a\0b" and "a\0c" collide) and no empty text
 *   (renamed "[EMPTY_<i>]", which can collide with a real token). Byte tokens are parsed as
 *   <0xXX> (an uncaught std::out_of_range otherwise). Scores order SPM merges: NaN breaks the
 *   priority queue's ordering.
 * - `checkSpmVocabulary`: the full check for `tokenizer.ggml.model = "llama"` (SPM), the one
 *   tokenizer the gate models; any other is GGUF_MODEL_UNCHECKED.
 */
import type { GgufHeader } from "./header.ts";
import { arrayKey, boolKey, invalid, strKey, u32Key, unchecked } from "./model-keys.ts";
import { GgufValueType } from "./types.ts";

const BYTE_TOKEN = /^<0x([0-9A-F]{2})>$/;
const TOKEN_TYPE_BYTE = 6;
// llama_token_type: 0 undefined .. 6 byte; llama.cpp maps others to "undefined", damage does.
const MAX_TOKEN_TYPE = 6;
const SPECIAL_ID = /^tokenizer\.ggml\.[a-z_]+_token_id$/;

function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

/**
 * Checks the vocabulary arrays and special token ids every llama.cpp tokenizer reads; returns the
 * vocabulary size, or undefined when the file has no `tokenizer.ggml.tokens`.
 */
export function checkVocabulary(h: GgufHeader): number | undefined {
  const tokens = arrayKey(h, "tokenizer.ggml.tokens", [GgufValueType.STRING]) as string[] | undefined;
  if (!tokens) return undefined;
  const n = tokens.length;
  if (n === 0) throw invalid("tokenizer.ggml.tokens is empty");
  // llama.cpp's token ids are int32 (llama_token).
  if (n > 0x7fffffff) throw invalid(`tokenizer.ggml.tokens has ${n} entries`);
  const seen = new Set<string>();
  tokens.forEach((t, i) => {
    if (t === "") throw invalid(`token ${i} is empty (llama.cpp renames it "[EMPTY_${i}]", which may collide)`);
    if (t.includes("\u0000")) throw invalid(`token ${i} contains a NUL byte (llama.cpp cuts it there)`);
    if (seen.has(t)) throw invalid(`tokenizer.ggml.tokens has a duplicate entry ${JSON.stringify(t)}`);
    seen.add(t);
  });
  const scores = arrayKey(h, "tokenizer.ggml.scores", [GgufValueType.FLOAT32, GgufValueType.INT32]) as number[] | undefined;
  if (scores && scores.length !== n) throw invalid(`tokenizer.ggml.scores has ${scores.length} entries for ${n} tokens`);
  scores?.forEach((s, i) => {
    if (!Number.isFinite(s)) throw invalid(`token ${i} has score ${s}`);
  });
  const types = arrayKey(h, "tokenizer.ggml.token_type", [GgufValueType.INT32]) as number[] | undefined;
  if (types && types.length !== n) throw invalid(`tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
  types?.forEach((t, i) => {
    if (t < 0 || t > MAX_TOKEN_TYPE) throw invalid(`token ${i} has type ${t} (0..${MAX_TOKEN_TYPE} allowed)`);
    if (t === TOKEN_TYPE_BYTE && !BYTE_TOKEN.test(tokens[i]!)) throw invalid(`byte token ${i} is ${JSON.stringify(tokens[i])}, not <0xXX>`);
  });
  // llama.cpp reads every special id as UINT32 (and ignores an out-of-range one; the gate refuses it).
  for (const key of h.metadata.keys()) {
    if (!SPECIAL_ID.test(key)) continue;
    const id = u32Key(h, key)!;
    if (id >= n) throw invalid(`${key} ${id} is outside the ${n}-token vocabulary`);
  }
  if (strKey(h, "tokenizer.ggml.model") === "llama") {
    // SPM byte fallback looks up "<0xXX>" with map::at(): a missing byte token throws std::out_of_range.
    for (let b = 0; b < 256; b++) {
      if (!seen.has(byteTokenName(b))) throw invalid(`SPM vocabulary lacks the byte token ${byteTokenName(b)}`);
    }
  }
  return n;
}

// The tokenizer.* keys llama.cpp reads for an SPM vocabulary, besides the *_token_id ones.
const SPM_KEYS = new Set([
  "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
  "tokenizer.ggml.token_type_count", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_sep_token",
  "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.remove_extra_whitespaces", "tokenizer.chat_template",
]);
const BOOL_KEYS = ["add_bos_token", "add_eos_token", "add_sep_token", "add_space_prefix", "remove_extra_whitespaces"];

/**
 * The full check of an SPM vocabulary (after `checkVocabulary`). With at least the 256 byte tokens,
 * the default BOS (1) and EOS (2) ids llama.cpp falls back to are inside the vocabulary, so
 * `add_bos_token`/`add_eos_token` never meet the null token its tokenizer asserts on.
 */
export function checkSpmVocabulary(h: GgufHeader, nVocab: number | undefined): number {
  const model = strKey(h, "tokenizer.ggml.model", true)!;
  if (model !== "llama") throw unchecked(`tokenizer.ggml.model "${model}": the model gate checks SPM ("llama") vocabularies only`);
  if (nVocab === undefined) throw invalid("missing tokenizer.ggml.tokens");
  for (const key of h.metadata.keys()) {
    if (!key.startsWith("tokenizer.") || SPM_KEYS.has(key) || SPECIAL_ID.test(key)) continue;
    // Named chat templates are strings node-llama-cpp may read; nothing in llama.cpp's loader.
    if (key.startsWith("tokenizer.chat_template.")) {
      strKey(h, key);
      continue;
    }
    throw unchecked(`${key} is a tokenizer key the model gate does not model`);
  }
  for (const k of BOOL_KEYS) boolKey(h, `tokenizer.ggml.${k}`);
  strKey(h, "tokenizer.ggml.pre");
  strKey(h, "tokenizer.chat_template");
  u32Key(h, "tokenizer.ggml.token_type_count");
  return nVocab;
}
