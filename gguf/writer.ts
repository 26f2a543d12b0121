/**
 * GGUF v3 writer: metadata of every value type, F32 and F16 tensors, aligned layout.
 * Layout (llama.cpp's gguf.cpp and docs/gguf.md): magic "GGUF", u32 version, u64 tensor count,
 * u64 kv count, the key/value pairs, the tensor infos, zero padding to `general.alignment`, then
 * the tensor data, each tensor starting at a multiple of the alignment (offsets are relative to
 * the start of the data section). Everything is little-endian.
 */
import { writeFile } from "node:fs/promises";
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";
import { floatToHalf } from "./f16.ts";
import { scalarSize, valueTypeName } from "./meta.ts";
import { GgmlType, GgufValueType, type GgufScalar, type GgufTensor, type GgufValue } from "./types.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 bytes including the terminating NUL. */
export const MAX_TENSOR_NAME_BYTES = 63;
export const MAX_DIMS = 4;

export interface GgufWriteInput {
  metadata: Map<string, GgufValue> | Array<[string, GgufValue]>;
  tensors: GgufTensor[];
  /** Data alignment in bytes, a power of two; default: the metadata's general.alignment, else 32. */
  alignment?: number;
}

function invalid(message: string, details?: Record<string, unknown>): ColonyError {
  return new ColonyError(GgufErrors.GGUF_WRITE_INVALID, message, details);
}

// String.prototype.isWellFormed exists in Node 20 but not in the ES2022 lib this project targets.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function to64(v: GgufScalar, signed: boolean, where: string): bigint {
  let b: bigint;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
  else throw invalid(`${where}: 64-bit integer expected, got ${String(v)}`);
  const ok = signed ? b >= -(1n << 63n) && b < 1n << 63n : b >= 0n && b < 1n << 64n;
  if (!ok) throw invalid(`${where}: ${b} is out of range for ${signed ? "INT64" : "UINT64"}`);
  return b;
}

/** Appends little-endian bytes to a growing list of chunks; the header is small, so this is simple. */
class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: bigint | number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string, where: string): void {
    if (typeof s !== "string") throw invalid(`${where}: string expected`);
    if (hasLoneSurrogate(s)) throw invalid(`${where}: string has lone surrogates and cannot be UTF-8`);
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufValueType, v: GgufScalar, where: string): void {
    const range = INT_RANGES[type];
    if (range) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw invalid(`${where}: ${String(v)} is not a valid ${valueTypeName(type)}`);
      }
    }
    const size = scalarSize(type);
    const b = size ? Buffer.allocUnsafe(size) : undefined;
    switch (type) {
      case GgufValueType.UINT8: b!.writeUInt8(v as number); break;
      case GgufValueType.INT8: b!.writeInt8(v as number); break;
      case GgufValueType.UINT16: b!.writeUInt16LE(v as number); break;
      case GgufValueType.INT16: b!.writeInt16LE(v as number); break;
      case GgufValueType.UINT32: b!.writeUInt32LE(v as number); break;
      case GgufValueType.INT32: b!.writeInt32LE(v as number); break;
      case GgufValueType.UINT64: b!.writeBigUInt64LE(to64(v, false, where)); break;
      case GgufValueType.INT64: b!.writeBigInt64LE(to64(v, true, where)); break;
      case GgufValueType.FLOAT32:
      case GgufValueType.FLOAT64:
        if (typeof v !== "number") throw invalid(`${where}: number expected for ${valueTypeName(type)}`);
        if (type === GgufValueType.FLOAT32) b!.writeFloatLE(v);
        else b!.writeDoubleLE(v);
        break;
      case GgufValueType.BOOL:
        if (typeof v !== "boolean") throw invalid(`${where}: boolean expected`);
        b!.writeUInt8(v ? 1 : 0);
        break;
      case GgufValueType.STRING:
        this.str(v as string, where);
        return;
      default:
        throw invalid(`${where}: unknown value type ${String(type)}`);
    }
    this.push(b!);
  }
  value(v: GgufValue, where: string): void {
    this.u32(v.type);
    if (v.type === GgufValueType.ARRAY) {
      if (!Array.isArray(v.value)) throw invalid(`${where}: array value expected`);
      if ((v.itemType as number) === GgufValueType.ARRAY) throw invalid(`${where}: nested arrays are not supported`);
      this.u32(v.itemType);
      this.u64(v.value.length);
      v.value.forEach((item, i) => this.scalar(v.itemType, item, `${where}[${i}]`));
    } else {
      this.scalar(v.type, v.value, where);
    }
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesPerElement(t: GgufTensor): number {
  if (t.type === GgmlType.F32) return 4;
  if (t.type === GgmlType.F16) return 2;
  throw invalid(`tensor ${t.name}: the writer supports F32 and F16 only, got type ${String(t.type)}`);
}

function checkTensor(t: GgufTensor, seen: Set<string>): number {
  if (typeof t.name !== "string" || t.name.length === 0) throw invalid("tensor name must be a non-empty string");
  const nameBytes = Buffer.byteLength(t.name, "utf8");
  if (nameBytes > MAX_TENSOR_NAME_BYTES || hasLoneSurrogate(t.name)) {
    throw invalid(`tensor name ${JSON.stringify(t.name)} must be valid UTF-8 of at most ${MAX_TENSOR_NAME_BYTES} bytes`);
  }
  if (seen.has(t.name)) throw invalid(`duplicate tensor name ${t.name}`);
  seen.add(t.name);
  if (!Array.isArray(t.dims) || t.dims.length < 1 || t.dims.length > MAX_DIMS) throw invalid(`tensor ${t.name}: 1 to ${MAX_DIMS} dims expected`);
  let n = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 1) throw invalid(`tensor ${t.name}: dims must be positive integers, got ${JSON.stringify(t.dims)}`);
    n *= d;
  }
  if (!(t.data instanceof Float32Array) || t.data.length !== n) {
    throw invalid(`tensor ${t.name}: data must be a Float32Array of ${n} values (dims ${JSON.stringify(t.dims)})`);
  }
  return n * bytesPerElement(t);
}

/** Encodes a whole GGUF v3 file into one Buffer. Throws GGUF_WRITE_INVALID on bad input. */
export function encodeGguf(file: GgufWriteInput): Buffer {
  const entries = file.metadata instanceof Map ? [...file.metadata.entries()] : [...file.metadata];
  const keys = new Set<string>();
  for (const [k] of entries) {
    if (typeof k !== "string" || k.length === 0) throw invalid("metadata keys must be non-empty strings");
    if (keys.has(k)) throw invalid(`duplicate metadata key ${k}`);
    keys.add(k);
  }
  const metaAlign = entries.find(([k]) => k === "general.alignment")?.[1];
  if (metaAlign && metaAlign.type !== GgufValueType.UINT32) throw invalid("general.alignment must be a UINT32");
  const alignment = file.alignment ?? (metaAlign ? (metaAlign.value as number) : DEFAULT_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 0x10000 || (alignment & (alignment - 1)) !== 0) {
    throw invalid(`alignment must be a power of two up to 65536, got ${alignment}`);
  }
  if (metaAlign && metaAlign.value !== alignment) throw invalid(`general.alignment (${String(metaAlign.value)}) disagrees with alignment ${alignment}`);
  if (!metaAlign) entries.push(["general.alignment", { type: GgufValueType.UINT32, value: alignment }]);

  const seen = new Set<string>();
  const sizes = file.tensors.map((t) => checkTensor(t, seen));
  const offsets: number[] = [];
  let dataSize = 0;
  for (const size of sizes) {
    dataSize = alignUp(dataSize, alignment);
    offsets.push(dataSize);
    dataSize += size;
  }

  const head = new ByteSink();
  head.u32(GGUF_MAGIC);
  head.u32(GGUF_VERSION);
  head.u64(file.tensors.length);
  head.u64(entries.length);
  for (const [k, v] of entries) {
    head.str(k, "metadata key");
    head.value(v, k);
  }
  file.tensors.forEach((t, i) => {
    head.str(t.name, "tensor name");
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(t.type);
    head.u64(offsets[i]!);
  });

  const dataStart = alignUp(head.length, alignment);
  // The data section ends padded too, as llama.cpp's writer does, so files concatenate cleanly.
  const total = dataStart + alignUp(dataSize, alignment);
  const out = Buffer.alloc(total); // zero-filled: all padding is zeros
  head.concat().copy(out, 0);
  file.tensors.forEach((t, i) => {
    let p = dataStart + offsets[i]!;
    if (t.type === GgmlType.F32 && LITTLE_ENDIAN) {
      // Same bytes as writeFloatLE per value, as one copy.
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    } else if (t.type === GgmlType.F32) {
      for (let j = 0; j < t.data.length; j++, p += 4) out.writeFloatLE(t.data[j]!, p);
    } else {
      for (let j = 0; j < t.data.length; j++, p += 2) out.writeUInt16LE(floatToHalf(t.data[j]!), p);
    }
  });
  return out;
}

/** Encodes and writes a GGUF file. */
export async function writeGgufFile(path: string, file: GgufWriteInput): Promise<void> {
  await writeFile(path, encodeGguf(file));
}
