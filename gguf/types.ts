/**
 * Shapes shared by the GGUF reader and writer (GGUF v3, see docs/gguf.md and the llama.cpp spec).
 * Dims are in ggml order: dims[0] is the contiguous row length.
 */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

/** A metadata value; bigint for 64-bit integers, arrays typed by `itemType`. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar[] };

export interface GgufTensor {
  name: string;
  dims: number[];
  type: GgmlType;
  /** Values as F32 regardless of storage type; the writer converts to `type`. */
  data: Float32Array;
}

export interface GgufFile {
  version: 3;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
}

/** One tensor's header entry, as the reader found and checked it (no data). */
export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the contiguous row length. */
  dims: number[];
  /** ggml type id (see gguf/ggml-types.ts); any known type, not only F32/F16. */
  type: number;
  typeName: string;
  /** Offset relative to the start of the data section, as stored in the file. */
  offset: number;
  /** Absolute offset in the file. */
  fileOffset: number;
  byteSize: number;
  elements: number;
}
