/**
 * Test fixtures for the GGUF tests: a valid sample file made by the writer, and a raw byte
 * builder for hand-made malformed files (the writer refuses to make those).
 */
import { meta } from "../gguf/meta.ts";
import { encodeGguf } from "../gguf/writer.ts";
import { GgmlType, GgufValueType, type GgufTensor, type GgufValue } from "../gguf/types.ts";

export function sampleFile(): { metadata: Array<[string, GgufValue]>; tensors: GgufTensor[] } {
  return {
    metadata: [
      ["general.architecture", meta.str("llama")],
      ["general.name", meta.str("fixture ✓")],
      ["llama.block_count", meta.u32(1)],
      ["t.i64", meta.i64(-5n)],
      ["t.u64", meta.u64(1n << 40n)],
      ["t.f64", meta.f64(Math.PI)],
      ["t.bool", meta.bool(true)],
      ["t.i8", meta.i8(-3)],
      ["tokenizer.ggml.tokens", meta.strs(["<unk>", "<s>", "</s>", "a", "b", "▁"])],
      ["tokenizer.ggml.scores", meta.f32s([0, 0, 0, -1, -2, -3])],
      ["tokenizer.ggml.token_type", meta.i32s([2, 3, 3, 1, 1, 1])],
      ["t.u16s", meta.arr(GgufValueType.UINT16, [1, 65535])],
    ],
    tensors: [
      { name: "token_embd.weight", dims: [4, 6], type: GgmlType.F32, data: new Float32Array(24).map((_, i) => (i - 12) / 7) },
      { name: "output_norm.weight", dims: [4], type: GgmlType.F16, data: new Float32Array([1, 0.5, -0.25, 65504]) },
      { name: "blk.0.ffn_up.weight", dims: [4, 2, 1, 1], type: GgmlType.F32, data: new Float32Array(8).fill(0.125) },
    ],
  };
}

export function sampleBytes(): Buffer {
  return encodeGguf(sampleFile());
}

/** Little-endian byte builder for hand-made GGUF files. */
export class Raw {
  private parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  bytes(b: Uint8Array | number[]): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  str(s: string | Uint8Array): this {
    const b = typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s);
    return this.u64(b.length).bytes(b);
  }
  /** magic, version 3, counts */
  head(tensors: number | bigint, kvs: number | bigint, version = 3): this {
    return this.bytes(Buffer.from("GGUF", "latin1")).u32(version).u64(tensors).u64(kvs);
  }
  kvU32(key: string, v: number): this {
    return this.str(key).u32(GgufValueType.UINT32).u32(v);
  }
  tensorInfo(name: string, dims: Array<number | bigint>, type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  get length(): number {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }
  padTo(alignment: number): this {
    const pad = (alignment - (this.length % alignment)) % alignment;
    return this.bytes(new Uint8Array(pad));
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * A tiny but complete llama model (SPM character vocabulary with byte tokens, random weights)
 * that llama.cpp loads. Returned as editable lists so tests can break one thing at a time.
 */
export function tinyLlama(seed = 1): { metadata: Array<[string, GgufValue]>; tensors: GgufTensor[] } {
  const nEmbd = 16;
  const nHead = 2;
  const nHeadKv = 1;
  const nFf = 32;
  const nLayer = 1;
  const chars = [..."abcdefghijklmnopqrstuvwxyz0123456789="].concat("\u2581");
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const tokens = ["<unk>", "<s>", "</s>", ...bytes, ...chars];
  const types = [2, 3, 3, ...bytes.map(() => 6), ...chars.map(() => 1)];
  const scores = tokens.map((_, i) => (i < 259 ? 0 : -i));
  const nVocab = tokens.length;
  let state = seed >>> 0 || 1;
  const rand = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32 - 0.5) * 0.2;
  };
  const t = (name: string, dims: number[], fill?: number): GgufTensor => {
    const n = dims.reduce((a, b) => a * b, 1);
    return { name, dims, type: GgmlType.F32, data: new Float32Array(n).map(() => fill ?? rand()) };
  };
  const kv = (nEmbd / nHead) * nHeadKv;
  const tensors = [t("token_embd.weight", [nEmbd, nVocab])];
  for (let i = 0; i < nLayer; i++) {
    tensors.push(
      t(`blk.${i}.attn_norm.weight`, [nEmbd], 1),
      t(`blk.${i}.attn_q.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.attn_k.weight`, [nEmbd, kv]),
      t(`blk.${i}.attn_v.weight`, [nEmbd, kv]),
      t(`blk.${i}.attn_output.weight`, [nEmbd, nEmbd]),
      t(`blk.${i}.ffn_norm.weight`, [nEmbd], 1),
      t(`blk.${i}.ffn_gate.weight`, [nEmbd, nFf]),
      t(`blk.${i}.ffn_up.weight`, [nEmbd, nFf]),
      t(`blk.${i}.ffn_down.weight`, [nFf, nEmbd]),
    );
  }
  tensors.push(t("output_norm.weight", [nEmbd], 1));
  return {
    metadata: [
      ["general.architecture", meta.str("llama")],
      ["general.name", meta.str("tiny-fixture")],
      ["llama.context_length", meta.u32(32)],
      ["llama.embedding_length", meta.u32(nEmbd)],
      ["llama.block_count", meta.u32(nLayer)],
      ["llama.feed_forward_length", meta.u32(nFf)],
      ["llama.attention.head_count", meta.u32(nHead)],
      ["llama.attention.head_count_kv", meta.u32(nHeadKv)],
      ["llama.rope.dimension_count", meta.u32(nEmbd / nHead)],
      ["llama.attention.layer_norm_rms_epsilon", meta.f32(1e-5)],
      ["llama.vocab_size", meta.u32(nVocab)],
      ["tokenizer.ggml.model", meta.str("llama")],
      ["tokenizer.ggml.tokens", meta.strs(tokens)],
      ["tokenizer.ggml.scores", meta.f32s(scores)],
      ["tokenizer.ggml.token_type", meta.i32s(types)],
      ["tokenizer.ggml.bos_token_id", meta.u32(1)],
      ["tokenizer.ggml.eos_token_id", meta.u32(2)],
      ["tokenizer.ggml.unknown_token_id", meta.u32(0)],
      ["tokenizer.ggml.add_bos_token", meta.bool(true)],
      ["tokenizer.ggml.add_space_prefix", meta.bool(false)],
    ],
    tensors,
  };
}
