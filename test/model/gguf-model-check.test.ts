import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { getLlama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { checkLlamaModel, checkModel } from "../../gguf/llama-check.ts";
import { meta } from "../../gguf/meta.ts";
import { readGgufHeader } from "../../gguf/reader.ts";
import { encodeGguf } from "../../gguf/writer.ts";
import { GgmlType, GgufValueType, type GgufTensor } from "../../gguf/types.ts";
import { tinyLlama, tokensOf as tokens, withMeta as setMeta } from "../fixtures/gguf-fixtures.ts";

type Model = ReturnType<typeof tinyLlama>;

function check(m: Model): void {
  checkLlamaModel(readGgufHeader(encodeGguf(m)));
}

test("the valid fixture passes the check and really loads and runs in llama.cpp", async () => {
  const m = tinyLlama();
  check(m);
  const dir = await mkdtemp(path.join(tmpdir(), "colony-gguf-model-"));
  try {
    const file = path.join(dir, "tiny.gguf");
    await writeFile(file, encodeGguf(m));
    const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
    const model = await llama.loadModel({ modelPath: file });
    const ctx = await model.createContext({ contextSize: 32, threads: 1 });
    const seq = ctx.getSequence();
    const out = await seq.evaluate(model.tokenize("add 1 2 =")).next();
    assert.equal(typeof out.value, "number");
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("faults that abort llama.cpp, or that it refuses, are refused with GGUF_MODEL_INVALID", () => {
  const base = tinyLlama();
  const withTokens = (f: (t: string[]) => void): Model => {
    const t = [...tokens(base)];
    f(t);
    return setMeta(base, "tokenizer.ggml.tokens", meta.strs(t));
  };
  const withoutTensor = (name: string): Model => ({ ...base, tensors: base.tensors.filter((t) => t.name !== name) });
  const reshaped = (name: string, dims: number[]): Model => ({
    ...base,
    tensors: base.tensors.map((t): GgufTensor => (t.name === name ? { ...t, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) } : t)),
  });
  const cases: Array<[string, Model]> = [
    // The three crash classes found by fuzzing (GGML_ASSERT abort / uncaught std::out_of_range).
    ["duplicate token", withTokens((t) => (t[280] = t[281]!))],
    ["damaged byte token", withTokens((t) => (t[3 + 0x31] = "<8x31>"))],
    ["missing head_count", setMeta(base, "llama.attention.head_count", undefined)],
    // Related faults.
    // Byte token <0x41> renamed and typed as a normal token: no type-6 check fires, the SPM one must.
    ["missing SPM byte token", setMeta(withTokens((t) => (t[3 + 0x41] = "A?")), "tokenizer.ggml.token_type", meta.i32s(tokens(base).map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i === 3 + 0x41 ? 1 : i < 259 ? 6 : 1))))],
    ["scores too short", setMeta(base, "tokenizer.ggml.scores", meta.f32s([0, 0]))],
    ["token types too long", setMeta(base, "tokenizer.ggml.token_type", meta.i32s(new Array(tokens(base).length + 1).fill(1)))],
    ["token type 9", setMeta(base, "tokenizer.ggml.token_type", meta.i32s(tokens(base).map((_, i) => (i === 280 ? 9 : i < 3 ? 3 : i < 259 ? 6 : 1))))],
    ["tokens not strings", setMeta(base, "tokenizer.ggml.tokens", meta.i32s([1, 2, 3]))],
    ["empty vocabulary", setMeta(base, "tokenizer.ggml.tokens", meta.strs([]))],
    ["eos id outside vocabulary", setMeta(base, "tokenizer.ggml.eos_token_id", meta.u32(100000))],
    ["vocab_size disagrees", setMeta(base, "llama.vocab_size", meta.u32(5))],
    ["no architecture", setMeta(base, "general.architecture", undefined)],
    ["head_count 0", setMeta(base, "llama.attention.head_count", meta.u32(0))],
    ["block_count as string", setMeta(base, "llama.block_count", meta.str("1"))],
    ["embedding not a multiple of heads", setMeta(base, "llama.attention.head_count", meta.u32(3))],
    ["kv heads do not divide heads", setMeta(base, "llama.attention.head_count_kv", meta.u32(3))],
    ["rope dims too large", setMeta(base, "llama.rope.dimension_count", meta.u32(64))],
    ["no rms epsilon", setMeta(base, "llama.attention.layer_norm_rms_epsilon", undefined)],
    ["block_count larger than the tensors", setMeta(base, "llama.block_count", meta.u32(2))],
    ["missing ffn_down", withoutTensor("blk.0.ffn_down.weight")],
    ["missing embedding", withoutTensor("token_embd.weight")],
    ["misshapen attn_k", reshaped("blk.0.attn_k.weight", [16, 16])],
    ["output with wrong vocab", { ...base, tensors: [...base.tensors, { name: "output.weight", dims: [16, 7], type: GgmlType.F32, data: new Float32Array(112) }] }],
  ];
  const messages: string[] = [];
  for (const [what, m] of cases) {
    assert.throws(
      () => check(m),
      (e: unknown) => {
        if (!(e instanceof ColonyError) || e.code !== "GGUF_MODEL_INVALID") return false;
        messages.push(`${what}: ${e.message}`);
        return true;
      },
      what,
    );
  }
  // Each case must fail for its own reason, not for an incidental one.
  const expected = [/duplicate/, /byte token 52 is "<8x31>"/, /missing llama.attention.head_count/, /lacks the byte token <0x41>/, /scores has 2/, /token_type has 298/,
    /type 9/, /array of STRING/, /empty/, /eos_token_id 100000/, /vocab_size 5/, /general.architecture/, /head_count is 0/, /block_count must be UINT32/,
    /not a multiple of the head count 3/, /not a multiple of head_count_kv 3/, /rope.dimension_count 64/, /rms_epsilon/, /missing tensor blk.1./,
    /missing tensor blk.0.ffn_down/, /missing tensor token_embd/, /attn_k.weight has dims \[16, 16\]/, /output.weight has dims \[16, 7\]/];
  assert.equal(messages.length, expected.length);
  messages.forEach((msg, i) => assert.match(msg, expected[i]!));
});

test("adapters and other architectures are GGUF_MODEL_UNCHECKED by default; with allowUnchecked they get the vocabulary checks only", () => {
  const adapter: Model = {
    metadata: [
      ["general.architecture", meta.str("llama")],
      ["general.type", meta.str("adapter")],
      ["adapter.type", meta.str("lora")],
      ["adapter.lora.alpha", meta.f32(16)],
    ],
    tensors: [{ name: "blk.0.attn_q.weight.lora_a", dims: [16, 4], type: GgmlType.F32, data: new Float32Array(64) }],
  };
  const qwen: Model = { metadata: [["general.architecture", meta.str("qwen2")]], tensors: [] };
  const isUnchecked = (e: unknown) => e instanceof ColonyError && e.code === "GGUF_MODEL_UNCHECKED";
  assert.throws(() => check(adapter), isUnchecked);
  assert.throws(() => check(qwen), isUnchecked);
  const lenient = (m: Model) => checkModel(readGgufHeader(encodeGguf(m)), { allowUnchecked: true });
  assert.deepEqual(lenient(adapter), { architecture: "llama", coverage: "basic", uncheckedReason: 'general.type is "adapter": the model gate checks models, not adapter files' });
  assert.equal(lenient(qwen).coverage, "basic");
  // The vocabulary checks still run: a duplicate token aborts llama.cpp whatever the architecture.
  const dup = setMeta(adapter, "tokenizer.ggml.tokens", meta.arr(GgufValueType.STRING, ["a", "a"]));
  assert.throws(() => lenient(dup), (e: unknown) => e instanceof ColonyError && e.code === "GGUF_MODEL_INVALID");
  assert.deepEqual(checkModel(readGgufHeader(encodeGguf(tinyLlama()))), { architecture: "llama", coverage: "full" });
});
