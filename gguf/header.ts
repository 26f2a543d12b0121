/**
 * Parses and validates a GGUF v3 header: metadata and tensor infos, and the tensor layout
 * against the file size. Every count and length is checked against the limits AND against the
 * bytes left in the file before anything is allocated, so a hostile header costs at most a small
 * multiple of its own size in memory. Nothing here reads tensor data.
 */
import { ColonyError } from "../common/errors.ts";
import { Cursor } from "./cursor.ts";
import { GgufErrors } from "./errors.ts";
import { ggmlTypeInfo } from "./ggml-types.ts";
import { limitError, type GgufLimits } from "./limits.ts";
import { scalarSize, valueTypeName } from "./meta.ts";
import { GgufValueType, type GgufScalar, type GgufTensorInfo, type GgufValue } from "./types.ts";

export const GGUF_MAGIC_BYTES = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const MAX_TENSOR_NAME_BYTES = 63; // ggml's GGML_MAX_NAME (64) minus the NUL
const MAX_DIMS = 4; // GGML_MAX_DIMS
// Smallest possible encodings, used to reject counts the remaining bytes cannot hold.
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, 1-byte key, value type, 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8; // name length, 1-byte name, n_dims, 1 dim, type, offset

export interface GgufHeader {
  version: 3;
  metadata: Map<string, GgufValue>;
  tensorInfos: GgufTensorInfo[];
  alignment: number;
  /** File offset of the tensor data section (header end rounded up to the alignment). */
  dataOffset: number;
  /** File offset where the header (tensor infos) ends, before padding. */
  headerEnd: number;
  fileSize: number;
}

function fail(code: keyof typeof GgufErrors, message: string, details?: Record<string, unknown>): ColonyError {
  return new ColonyError(GgufErrors[code], message, details);
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function checkName(s: string, what: string, offset: number): void {
  if (s.length === 0) throw fail("GGUF_BAD_STRING", `${what} at offset ${offset} is empty`);
  // C code truncates at NUL: "a\0x" and "a\0y" would silently become the same name in llama.cpp.
  if (s.includes("\u0000")) throw fail("GGUF_BAD_STRING", `${what} at offset ${offset} contains a NUL byte`);
}

function readScalar(c: Cursor, type: GgufValueType, limits: GgufLimits, where: string): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8: return c.u8(where);
    case GgufValueType.INT8: return c.i8(where);
    case GgufValueType.UINT16: return c.u16(where);
    case GgufValueType.INT16: return c.i16(where);
    case GgufValueType.UINT32: return c.u32(where);
    case GgufValueType.INT32: return c.i32(where);
    case GgufValueType.UINT64: return c.u64(where);
    case GgufValueType.INT64: return c.i64(where);
    case GgufValueType.FLOAT32: return c.f32(where);
    case GgufValueType.FLOAT64: return c.f64(where);
    case GgufValueType.BOOL: {
      const at = c.pos;
      const b = c.u8(where);
      if (b > 1) throw fail("GGUF_BAD_TYPE", `${where}: bool at offset ${at} is ${b}, not 0 or 1`);
      return b === 1;
    }
    case GgufValueType.STRING: return c.str(where, limits.maxStringBytes);
    default: throw fail("GGUF_BAD_TYPE", `${where}: unknown value type ${type}`);
  }
}

function readValue(c: Cursor, limits: GgufLimits, key: string): GgufValue {
  const at = c.pos;
  const type = c.u32(`type of ${key}`);
  if (type > GgufValueType.FLOAT64) throw fail("GGUF_BAD_TYPE", `${key}: unknown value type ${type} at offset ${at}`, { offset: at });
  if (type !== GgufValueType.ARRAY) return { type, value: readScalar(c, type, limits, key) } as GgufValue;
  const itemAt = c.pos;
  const itemType = c.u32(`item type of ${key}`);
  if (itemType > GgufValueType.FLOAT64) throw fail("GGUF_BAD_TYPE", `${key}: unknown array item type ${itemType} at offset ${itemAt}`, { offset: itemAt });
  if (itemType === GgufValueType.ARRAY) throw fail("GGUF_BAD_TYPE", `${key}: nested arrays are not supported`, { offset: itemAt });
  const count = c.u64(`length of ${key}`);
  if (count > BigInt(limits.maxArrayLength)) throw limitError(`array length of ${key}`, count, limits.maxArrayLength);
  const n = Number(count);
  // A string item is at least its 8-byte length; check the whole array fits before allocating it.
  c.need(n * (scalarSize(itemType) ?? 8), `array ${key} (${n} x ${valueTypeName(itemType)})`);
  const items: GgufScalar[] = new Array(n);
  for (let i = 0; i < n; i++) items[i] = readScalar(c, itemType, limits, `${key}[${i}]`);
  return { type: GgufValueType.ARRAY, itemType, value: items } as GgufValue;
}

function readAlignment(metadata: Map<string, GgufValue>, limits: GgufLimits): number {
  const v = metadata.get("general.alignment");
  if (!v) return 32;
  if (v.type !== GgufValueType.UINT32) throw fail("GGUF_BAD_TYPE", `general.alignment must be UINT32, is ${valueTypeName(v.type)}`);
  const a = v.value as number;
  if (a === 0 || (a & (a - 1)) !== 0) throw fail("GGUF_BAD_OFFSET", `general.alignment ${a} is not a power of two`);
  if (a > limits.maxAlignment) throw limitError("general.alignment", a, limits.maxAlignment);
  return a;
}

function readTensorInfo(c: Cursor, alignment: number, names: Set<string>): Omit<GgufTensorInfo, "fileOffset"> {
  const at = c.pos;
  const name = c.str("tensor name", MAX_TENSOR_NAME_BYTES, "format");
  checkName(name, "tensor name", at);
  if (names.has(name)) throw fail("GGUF_DUPLICATE", `tensor ${name} appears twice`, { name });
  names.add(name);
  const nDims = c.u32(`n_dims of ${name}`);
  if (nDims < 1 || nDims > MAX_DIMS) throw fail("GGUF_BAD_SHAPE", `tensor ${name}: ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, { name });
  const dims: number[] = [];
  let elements = 1n;
  for (let i = 0; i < nDims; i++) {
    const d = c.u64(`dim ${i} of ${name}`);
    if (d === 0n) throw fail("GGUF_BAD_SHAPE", `tensor ${name}: dimension ${i} is 0`, { name });
    elements *= d; // BigInt: no overflow; compared with the file size below
    if (elements > BigInt(Number.MAX_SAFE_INTEGER)) throw fail("GGUF_BAD_SHAPE", `tensor ${name}: too many elements`, { name });
    dims.push(Number(d));
  }
  const typeAt = c.pos;
  const type = c.u32(`type of ${name}`);
  const info = ggmlTypeInfo(type);
  if (!info) throw fail("GGUF_BAD_TYPE", `tensor ${name}: unknown ggml type ${type} at offset ${typeAt}`, { name, offset: typeAt });
  if (dims[0]! % info.blockSize !== 0) {
    throw fail("GGUF_BAD_SHAPE", `tensor ${name}: row length ${dims[0]} is not a multiple of ${info.name}'s block size ${info.blockSize}`, { name });
  }
  const offset = c.u64(`offset of ${name}`);
  if (offset % BigInt(alignment) !== 0n) throw fail("GGUF_BAD_OFFSET", `tensor ${name}: offset ${offset} is not a multiple of the alignment ${alignment}`, { name });
  // Bytes = elements / blockSize * typeSize; exact since dims[0] is a multiple of blockSize.
  const bytes = (elements / BigInt(info.blockSize)) * BigInt(info.typeSize);
  if (offset + bytes > BigInt(c.fileSize)) {
    throw fail("GGUF_TRUNCATED", `tensor ${name}: ${bytes} bytes at data offset ${offset} run past the end of the file`, { name });
  }
  return { name, dims, type, typeName: info.name, offset: Number(offset), byteSize: Number(bytes), elements: Number(elements) };
}

/** Checks tensor placement inside the data section and what follows the last tensor. */
function checkLayout(h: GgufHeader, limits: GgufLimits): void {
  const dataSize = h.fileSize - h.dataOffset;
  const sorted = limits.strictLayout ? h.tensorInfos : [...h.tensorInfos].sort((a, b) => a.offset - b.offset);
  let end = 0; // end of the previous tensor, relative to the data section
  for (const t of sorted) {
    if (limits.strictLayout && t.offset !== alignUp(end, h.alignment)) {
      throw fail("GGUF_BAD_OFFSET", `tensor ${t.name}: offset ${t.offset}, expected ${alignUp(end, h.alignment)} (tensors must be packed in order)`, { name: t.name });
    }
    if (t.offset < end) throw fail("GGUF_BAD_OFFSET", `tensor ${t.name} overlaps the tensor before it`, { name: t.name });
    if (t.offset + t.byteSize > dataSize) {
      throw fail("GGUF_TRUNCATED", `tensor ${t.name}: data ends at ${h.dataOffset + t.offset + t.byteSize}, the file has ${h.fileSize} bytes`, { name: t.name });
    }
    end = t.offset + t.byteSize;
  }
  // Allowed after the last tensor: padding up to the alignment. With no tensors, the header's padding.
  const allowedEnd = h.tensorInfos.length > 0 ? h.dataOffset + alignUp(end, h.alignment) : h.dataOffset;
  if (h.fileSize > allowedEnd && !limits.allowTrailingData) {
    throw fail("GGUF_TRAILING_DATA", `${h.fileSize - allowedEnd} unexpected bytes after the last tensor (at offset ${allowedEnd})`, { offset: allowedEnd });
  }
}

/** Parses the header at the cursor (which starts at 0). Throws NeedMoreBytes for a short prefix. */
export function parseHeader(c: Cursor, limits: GgufLimits): GgufHeader {
  if (c.fileSize > limits.maxFileBytes) throw limitError("file size (bytes)", c.fileSize, limits.maxFileBytes);
  const magicLen = Math.min(4, c.fileSize);
  c.need(magicLen, "magic");
  for (let i = 0; i < magicLen; i++) {
    if (c.bytes[i] !== GGUF_MAGIC_BYTES[i]) throw fail("GGUF_BAD_MAGIC", "not a GGUF file (the first bytes are not \"GGUF\")");
  }
  c.pos = 0;
  c.need(4, "magic");
  c.pos = 4;
  const version = c.u32("version");
  if (version !== 3) {
    const hint = version >= 0x10000 ? " (a big-endian file?)" : "";
    throw fail("GGUF_UNSUPPORTED_VERSION", `GGUF version ${version} is not supported; Colony reads version 3${hint}`, { version });
  }
  const tensorCount = c.u64("tensor count");
  const kvCount = c.u64("metadata count");
  if (tensorCount > BigInt(limits.maxTensorCount)) throw limitError("tensor count", tensorCount, limits.maxTensorCount);
  if (kvCount > BigInt(limits.maxKvCount)) throw limitError("metadata count", kvCount, limits.maxKvCount);
  const nTensors = Number(tensorCount);
  const nKv = Number(kvCount);
  if (nKv * MIN_KV_BYTES + nTensors * MIN_TENSOR_INFO_BYTES > c.remaining) {
    throw fail("GGUF_TRUNCATED", `${nKv} metadata entries and ${nTensors} tensor infos cannot fit in the ${c.remaining} bytes left`);
  }

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.str("metadata key", limits.maxKeyBytes);
    checkName(key, "metadata key", at);
    if (metadata.has(key)) throw fail("GGUF_DUPLICATE", `metadata key ${key} appears twice`, { key });
    metadata.set(key, readValue(c, limits, key));
  }
  const alignment = readAlignment(metadata, limits);

  const names = new Set<string>();
  const partial: Array<Omit<GgufTensorInfo, "fileOffset">> = [];
  for (let i = 0; i < nTensors; i++) partial.push(readTensorInfo(c, alignment, names));
  const headerEnd = c.pos;
  const dataOffset = alignUp(headerEnd, alignment);
  if (nTensors > 0 && dataOffset > c.fileSize) throw fail("GGUF_TRUNCATED", `the tensor data section would start at ${dataOffset}, past the end of the file`);
  if (dataOffset > limits.maxHeaderBytes) throw limitError("header size (bytes)", dataOffset, limits.maxHeaderBytes);
  const tensorInfos = partial.map((t) => ({ ...t, fileOffset: dataOffset + t.offset }));
  const header: GgufHeader = { version: 3, metadata, tensorInfos, alignment, dataOffset, headerEnd, fileSize: c.fileSize };
  checkLayout(header, limits);
  return header;
}
