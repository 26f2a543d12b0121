// The model gate's rules (gguf/llama-check.ts and the files it uses), one fault at a time: each
// file must be refused with the right code and for its own reason, not an incidental one. The
// first cases abort llama.cpp (GGML_ASSERT) yet passed the gate before it became an allowlist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { checkLlamaModel, checkModel } from "../../gguf/llama-check.ts";
import { meta } from "../../gguf/meta.ts";
import { readGgufHeader, type GgufHeader } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { GgmlType, GgufValueType, type GgufTensor } from "../../gguf/types.ts";
import { tinyLlama, tokensOf, withMeta } from "../fixtures/gguf-fixtures.ts";
import { makeMoe } from "../fixtures/gguf-model-mutations.ts";

type Model = ReturnType<typeof tinyLlama>;
const base = tinyLlama();
const moe = tinyLlama();
makeMoe(moe, 2, 1);

const header = (m: Model): GgufHeader => readGgufHeader(encodeGguf(m));
const withTokens = (edit: (t: string[]) => void): Model => {
  const t = [...tokensOf(base)];
  edit(t);
  return withMeta(base, "tokenizer.ggml.tokens", meta.strs(t));
};
const withTensor = (m: Model, t: GgufTensor): Model => ({ ...m, tensors: [...m.tensors, t] });
const f32 = (name: string, dims: number[]): GgufTensor => ({ name, dims, type: GgmlType.F32, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });
/** The header of `m` with one tensor's ggml type replaced (the writer only writes F32 and F16). */
const retyped = (m: Model, name: string, type: number, typeName: string): GgufHeader => {
  const h = header(m);
  h.tensorInfos = h.tensorInfos.map((t) => (t.name === name ? { ...t, type, typeName } : t));
  return h;
};

const INVALID = "GGUF_MODEL_INVALID";
const UNCHECKED = "GGUF_MODEL_UNCHECKED";
const cases: Array<[string, Model | GgufHeader, string, RegExp]> = [
  ["expert_used_count without experts (the issue's file)", withMeta(base, "llama.expert_used_count", meta.u32(1)), INVALID, /expert_used_count is 1 but the model has no experts/],
  ["more experts used than exist", withMeta(moe, "llama.expert_used_count", meta.u32(3)), INVALID, /expert_used_count is 3, must be 1..2/],
  ["experts but none used", withMeta(moe, "llama.expert_used_count", meta.u32(0)), INVALID, /expert_used_count is 0, must be 1..2/],
  ["expert_count over LLAMA_MAX_EXPERTS", withMeta(moe, "llama.expert_count", meta.u32(1025)), INVALID, /expert_count is 1025, must be 0..1024/],
  ["expert counts with dense tensors", withMeta(withMeta(base, "llama.expert_count", meta.u32(2)), "llama.expert_used_count", meta.u32(1)), INVALID, /unexpected tensor blk.0.ffn_gate.weight/],
  ["expert tensors without expert counts", withMeta(withMeta(moe, "llama.expert_count", undefined), "llama.expert_used_count", undefined), INVALID, /unexpected tensor blk.0.ffn_gate_inp.weight/],
  ["block_count over LLAMA_MAX_LAYERS", withMeta(base, "llama.block_count", meta.u32(513)), INVALID, /block_count is 513, must be 1..512/],
  ["unknown rope scaling type", withMeta(base, "llama.rope.scaling.type", meta.str("bogus")), INVALID, /rope.scaling.type "bogus"/],
  ["F16 norm weight", { ...base, tensors: base.tensors.map((t) => (t.name === "blk.0.attn_norm.weight" ? { ...t, type: GgmlType.F16 } : t)) }, INVALID, /attn_norm.weight is F16; 1-D tensors must be F32/],
  ["split model", withMeta(base, "split.count", meta.u16(1)), INVALID, /split models are not supported/],
  ["empty token", withTokens((t) => (t[280] = "")), INVALID, /token 280 is empty/],
  ["NUL in a token", withTokens((t) => (t[280] = "a\u0000b")), INVALID, /token 280 contains a NUL/],
  ["NaN score", withMeta(base, "tokenizer.ggml.scores", meta.f32s(tokensOf(base).map((_, i) => (i === 5 ? NaN : 0)))), INVALID, /token 5 has score NaN/],
  ["key length not the head dimension", withMeta(base, "llama.attention.key_length", meta.u32(4)), INVALID, /key_length 4 must equal the head dimension 8/],
  ["odd head dimension", withMeta(base, "llama.attention.head_count", meta.u32(16)), INVALID, /head dimension 1 .* is odd/],
  ["per-layer head counts", withMeta(base, "llama.attention.head_count", meta.arr(GgufValueType.UINT32, [2])), INVALID, /head_count must be UINT32 .* is an array of UINT32/],
  ["rope.dimension_count below the head dimension", withMeta(base, "llama.rope.dimension_count", meta.u32(4)), INVALID, /rope.dimension_count 4 must equal the head dimension 8/],
  ["rope.freq_base 0", withMeta(base, "llama.rope.freq_base", meta.f32(0)), INVALID, /rope.freq_base is 0/],
  ["rms epsilon NaN", withMeta(base, "llama.attention.layer_norm_rms_epsilon", meta.f32(NaN)), INVALID, /layer_norm_rms_epsilon is NaN/],
  ["general.name not a string", withMeta(base, "general.name", meta.bool(true)), INVALID, /general.name must be STRING/],
  ["special id of the wrong type", withMeta(base, "tokenizer.ggml.padding_token_id", meta.i32(0)), INVALID, /padding_token_id must be UINT32/],
  ["extra tensor", withTensor(base, f32("blk.0.extra.weight", [16])), INVALID, /unexpected tensor blk.0.extra.weight/],
  ["integer weight type", retyped(base, "blk.0.attn_q.weight", 26, "I32"), INVALID, /attn_q.weight is I32, not a weight type/],
  ["expert_group_count", withMeta(moe, "llama.expert_group_count", meta.u32(1)), UNCHECKED, /llama.expert_group_count is a llama key the model gate does not model/],
  ["tokenizer model none", withMeta(base, "tokenizer.ggml.model", meta.str("none")), UNCHECKED, /tokenizer.ggml.model "none"/],
  ["BPE merges", withMeta(base, "tokenizer.ggml.merges", meta.strs(["a b"])), UNCHECKED, /tokenizer.ggml.merges is a tokenizer key/],
  ["longrope scaling", withMeta(base, "llama.rope.scaling.type", meta.str("longrope")), UNCHECKED, /longrope/],
  ["i-quant weight", retyped(base, "blk.0.attn_q.weight", 20, "IQ4_NL"), UNCHECKED, /IQ4_NL, a type the model gate does not model/],
];

test("the model gate refuses each fault with its code and for its own reason", () => {
  for (const [what, m, code, re] of cases) {
    const h = "tensorInfos" in m ? m : header(m);
    assert.throws(() => checkLlamaModel(h), (e: unknown) => {
      assert.ok(e instanceof ColonyError, `${what}: ${String(e)}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    }, what);
  }
});

test("the model gate accepts a mixture of experts, optional tensors and every weight type it models", () => {
  assert.deepEqual(checkModel(header(moe)), { architecture: "llama", coverage: "full" });
  const optional = [f32("output.weight", [16, tokensOf(base).length]), f32("rope_freqs.weight", [4]), f32("blk.0.attn_q.bias", [16]), f32("blk.0.ffn_down.bias", [16])];
  checkLlamaModel(header({ ...base, tensors: [...base.tensors, ...optional] }));
  const scaled = withMeta(withMeta(base, "llama.rope.scaling.type", meta.str("yarn")), "llama.rope.scaling.factor", meta.f32(4));
  checkLlamaModel(header(withMeta(scaled, "llama.attention.key_length", meta.u32(8))));
  for (const [type, name] of [[1, "F16"], [30, "BF16"], [8, "Q8_0"], [12, "Q4_K"], [14, "Q6_K"]] as const) {
    checkLlamaModel(retyped(base, "blk.0.attn_q.weight", type, name));
  }
});

test("allowUnchecked admits what the gate does not model, never what it knows to be broken", () => {
  const unmodelled = withMeta(moe, "llama.expert_group_count", meta.u32(1));
  const r = checkModel(header(unmodelled), { allowUnchecked: true });
  assert.equal(r.coverage, "basic");
  assert.match(r.uncheckedReason ?? "", /expert_group_count/);
  for (const broken of [withMeta(base, "llama.expert_used_count", meta.u32(1)), withMeta(base, "split.count", meta.u16(1))]) {
    assert.throws(() => checkModel(header(broken), { allowUnchecked: true }), (e: unknown) => e instanceof ColonyError && e.code === INVALID);
  }
});
