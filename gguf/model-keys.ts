/**
 * Typed reads of model metadata for the model gate (llama-check.ts). llama.cpp reads each key
 * with one exact GGUF type (llama-model-loader.cpp, `GKV::get_kv`: "key %s has wrong type"), so
 * the gate requires that type too instead of converting: what it accepts, llama.cpp reads the
 * same way.
 *
 * Two outcomes besides success: `invalid` (GGUF_MODEL_INVALID), a fault llama.cpp would refuse or
 * crash on; `unchecked` (GGUF_MODEL_UNCHECKED), something the gate does not model (another
 * architecture, tokenizer, tensor type, metadata key), refused unless the caller accepts
 * unchecked models.
 */
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";
import type { GgufHeader } from "./header.ts";
import { valueTypeName } from "./meta.ts";
import { GgufValueType, type GgufValue } from "./types.ts";

export function invalid(message: string): ColonyError {
  return new ColonyError(GgufErrors.GGUF_MODEL_INVALID, message);
}

export function unchecked(message: string): ColonyError {
  return new ColonyError(GgufErrors.GGUF_MODEL_UNCHECKED, message);
}

function typed(h: GgufHeader, key: string, type: GgufValueType, required: boolean): GgufValue | undefined {
  const v = h.metadata.get(key);
  if (!v) {
    if (required) throw invalid(`missing ${key}`);
    return undefined;
  }
  if (v.type !== type) {
    const got = v.type === GgufValueType.ARRAY ? `an array of ${valueTypeName(v.itemType)}` : valueTypeName(v.type);
    throw invalid(`${key} must be ${valueTypeName(type)} (the type llama.cpp reads), is ${got}`);
  }
  return v;
}

export function u32Key(h: GgufHeader, key: string, required: true): number;
export function u32Key(h: GgufHeader, key: string, required?: boolean): number | undefined;
export function u32Key(h: GgufHeader, key: string, required = false): number | undefined {
  return typed(h, key, GgufValueType.UINT32, required)?.value as number | undefined;
}

/** A FLOAT32 that must be finite (NaN and infinities only ever come from damage). */
export function f32Key(h: GgufHeader, key: string, required = false): number | undefined {
  const v = typed(h, key, GgufValueType.FLOAT32, required)?.value as number | undefined;
  if (v !== undefined && !Number.isFinite(v)) throw invalid(`${key} is ${v}`);
  return v;
}

export function boolKey(h: GgufHeader, key: string): boolean | undefined {
  return typed(h, key, GgufValueType.BOOL, false)?.value as boolean | undefined;
}

export function strKey(h: GgufHeader, key: string, required = false): string | undefined {
  return typed(h, key, GgufValueType.STRING, required)?.value as string | undefined;
}

/** An array whose items have one of `itemTypes`; undefined when the key is absent. */
export function arrayKey(h: GgufHeader, key: string, itemTypes: GgufValueType[]): unknown[] | undefined {
  const v = h.metadata.get(key);
  if (!v) return undefined;
  if (v.type !== GgufValueType.ARRAY || !itemTypes.includes(v.itemType)) {
    throw invalid(`${key} must be an array of ${itemTypes.map((t) => valueTypeName(t)).join(" or ")}`);
  }
  return v.value;
}

/** Throws `invalid` unless lo <= v <= hi. */
export function inRange(key: string, v: number, lo: number, hi: number, why = ""): number {
  if (v < lo || v > hi) throw invalid(`${key} is ${v}, must be ${lo}..${hi}${why ? ` (${why})` : ""}`);
  return v;
}
