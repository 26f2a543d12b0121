/**
 * Loads a GGUF llama model written by exportModelGguf (F32 or F16 tensors) back into a LlamaModel and
 * its Tokenizer. The parsing is deliberately narrow: it reads only what a Colony model needs and rejects
 * everything else with MODEL_GGUF_INVALID (general GGUF inspection belongs to the gguf/ toolkit).
 */
import { readFile } from "node:fs/promises";
import { ColonyError } from "../../common/errors.ts";
import { decodeHalves } from "../../gguf/f16.ts";
import { LlamaModel, tensorShapes, type LlamaConfig } from "../model.ts";
import { Tokenizer } from "../tokenizer.ts";
import { ModelErrors } from "./errors.ts";

export interface ParsedGguf {
  metadata: Map<string, unknown>;
  tensors: Map<string, { dims: number[]; type: number; data: Float32Array }>;
}

function fail(message: string): ColonyError {
  return new ColonyError(ModelErrors.MODEL_GGUF_INVALID, message);
}

/** Parses GGUF v3 bytes holding only F32/F16 tensors (what Colony writes). */
export function parseSimpleGguf(buf: Uint8Array): ParsedGguf {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  const need = (n: number): void => {
    if (p + n > buf.length) throw fail(`truncated GGUF at byte ${p}`);
  };
  const u32 = (): number => (need(4), (p += 4), view.getUint32(p - 4, true));
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail("64-bit value too large");
    return Number(v);
  };
  const str = (): string => {
    const n = u64();
    need(n);
    const s = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(p, p + n));
    p += n;
    return s;
  };
  const scalar = (t: number): unknown => {
    switch (t) {
      case 0: return (need(1), (p += 1), view.getUint8(p - 1));
      case 1: return (need(1), (p += 1), view.getInt8(p - 1));
      case 2: return (need(2), (p += 2), view.getUint16(p - 2, true));
      case 3: return (need(2), (p += 2), view.getInt16(p - 2, true));
      case 4: return u32();
      case 5: return (need(4), (p += 4), view.getInt32(p - 4, true));
      case 6: return (need(4), (p += 4), view.getFloat32(p - 4, true));
      case 7: return (need(1), (p += 1), view.getUint8(p - 1) !== 0);
      case 8: return str();
      case 10: return (need(8), (p += 8), view.getBigUint64(p - 8, true));
      case 11: return (need(8), (p += 8), view.getBigInt64(p - 8, true));
      case 12: return (need(8), (p += 8), view.getFloat64(p - 8, true));
      default: throw fail(`unknown metadata value type ${t}`);
    }
  };
  if (u32() !== 0x46554747) throw fail("not a GGUF file (bad magic)");
  const version = u32();
  if (version !== 3) throw fail(`GGUF version ${version}, expected 3`);
  const nTensors = u64();
  const nKv = u64();
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const t = u32();
    if (t === 9) {
      const it = u32();
      const n = u64();
      const arr: unknown[] = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = scalar(it);
      metadata.set(key, arr);
    } else metadata.set(key, scalar(t));
  }
  const infos: Array<{ name: string; dims: number[]; type: number; offset: number }> = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    if (nd < 1 || nd > 4) throw fail(`tensor ${name}: ${nd} dims`);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(u64());
    infos.push({ name, dims, type: u32(), offset: u64() });
  }
  const align = Number(metadata.get("general.alignment") ?? 32);
  const dataStart = Math.ceil(p / align) * align;
  const tensors = new Map<string, { dims: number[]; type: number; data: Float32Array }>();
  for (const ti of infos) {
    const n = ti.dims.reduce((a, b) => a * b, 1);
    const at = dataStart + ti.offset;
    let data: Float32Array;
    if (ti.type === 0) {
      if (at + 4 * n > buf.length) throw fail(`tensor ${ti.name} runs past the end of the file`);
      data = new Float32Array(n);
      for (let j = 0; j < n; j++) data[j] = view.getFloat32(at + 4 * j, true);
    } else if (ti.type === 1) {
      if (at + 2 * n > buf.length) throw fail(`tensor ${ti.name} runs past the end of the file`);
      data = decodeHalves(buf, at, n);
    } else throw fail(`tensor ${ti.name} has ggml type ${ti.type}; only F32 and F16 are supported`);
    tensors.set(ti.name, { dims: ti.dims, type: ti.type, data });
  }
  return { metadata, tensors };
}

/** Reads a Colony llama GGUF file into a model (weights as F32) and its tokenizer. */
export async function loadModelGguf(path: string): Promise<{ model: LlamaModel; tokenizer: Tokenizer; metadata: Map<string, unknown> }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new ColonyError(ModelErrors.MODEL_GGUF_INVALID, `cannot read ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
  const { metadata, tensors } = parseSimpleGguf(buf);
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
