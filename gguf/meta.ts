/**
 * Constructors for GGUF metadata values, so code that builds a file reads like the file:
 * `["llama.block_count", meta.u32(2)]`, `["tokenizer.ggml.tokens", meta.arr(GgufValueType.STRING, chars)]`.
 * They only tag values; the writer validates ranges when it encodes.
 */
import { GgufValueType, type GgufScalar, type GgufValue } from "./types.ts";

type ScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

export const meta = {
  u8: (v: number): GgufValue => ({ type: GgufValueType.UINT8, value: v }),
  i8: (v: number): GgufValue => ({ type: GgufValueType.INT8, value: v }),
  u16: (v: number): GgufValue => ({ type: GgufValueType.UINT16, value: v }),
  i16: (v: number): GgufValue => ({ type: GgufValueType.INT16, value: v }),
  u32: (v: number): GgufValue => ({ type: GgufValueType.UINT32, value: v }),
  i32: (v: number): GgufValue => ({ type: GgufValueType.INT32, value: v }),
  u64: (v: bigint | number): GgufValue => ({ type: GgufValueType.UINT64, value: v }),
  i64: (v: bigint | number): GgufValue => ({ type: GgufValueType.INT64, value: v }),
  f32: (v: number): GgufValue => ({ type: GgufValueType.FLOAT32, value: v }),
  f64: (v: number): GgufValue => ({ type: GgufValueType.FLOAT64, value: v }),
  bool: (v: boolean): GgufValue => ({ type: GgufValueType.BOOL, value: v }),
  str: (v: string): GgufValue => ({ type: GgufValueType.STRING, value: v }),
  arr: (itemType: ScalarType, values: readonly GgufScalar[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType, value: [...values] }),
  strs: (values: readonly string[]): GgufValue => meta.arr(GgufValueType.STRING, values),
  f32s: (values: ArrayLike<number>): GgufValue => meta.arr(GgufValueType.FLOAT32, Array.from(values)),
  i32s: (values: ArrayLike<number>): GgufValue => meta.arr(GgufValueType.INT32, Array.from(values)),
};

/** Byte size of a fixed-size scalar type (undefined for STRING and ARRAY). */
export function scalarSize(type: GgufValueType): number | undefined {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    default:
      return undefined;
  }
}

export function valueTypeName(type: number): string {
  return GgufValueType[type] ?? `unknown(${type})`;
}

/**
 * The plain JavaScript value of a metadata entry (bigint for 64-bit integers, an array for arrays),
 * or undefined when the key is absent: `metaValue(file.metadata, "llama.block_count")`.
 */
export function metaValue(metadata: ReadonlyMap<string, GgufValue>, key: string): GgufScalar | GgufScalar[] | undefined {
  return metadata.get(key)?.value;
}
