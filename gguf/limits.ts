/**
 * Limits the GGUF reader enforces before it allocates anything. A received model is untrusted
 * input (llama.cpp's GGUF parser had several memory-safety CVEs from oversized counts and
 * lengths), so every count and length is checked against both these limits and the bytes that
 * are actually left in the file. Defaults accept real-world llama.cpp models of up to tens of GB
 * with 256k-token vocabularies; a fleet node can pass tighter ones for its own models.
 */
import { ColonyError } from "../common/errors.ts";
import { GgufErrors } from "./errors.ts";

export interface GgufLimits {
  /** Largest file accepted, in bytes. Default 64 GiB. */
  maxFileBytes: number;
  /** Largest header (everything before the tensor data), in bytes. Default 256 MiB. */
  maxHeaderBytes: number;
  /** Most metadata key/value pairs. Default 65536 (llama.cpp models carry ~30-60). */
  maxKvCount: number;
  /** Most tensors. Default 65536. */
  maxTensorCount: number;
  /** Longest metadata key, in bytes. Default 1024. */
  maxKeyBytes: number;
  /** Longest string value, in bytes. Default 16 MiB (chat templates are up to a few hundred KB). */
  maxStringBytes: number;
  /** Most items in one array. Default 16,777,216 (vocabularies and merges are up to ~300k). */
  maxArrayLength: number;
  /** Largest `general.alignment`. Default 65536 (llama.cpp writes 32). */
  maxAlignment: number;
  /** Accept bytes after the last tensor beyond the alignment padding. Default false. */
  allowTrailingData: boolean;
  /**
   * Require tensor data to be packed in info order, each at the previous end rounded up to the
   * alignment, as llama.cpp's own loader does (no gaps that could hide data). When false, only
   * alignment and non-overlap are checked. Default true.
   */
  strictLayout: boolean;
}

export const DEFAULT_LIMITS: Readonly<GgufLimits> = Object.freeze({
  maxFileBytes: 64 * 2 ** 30,
  maxHeaderBytes: 256 * 2 ** 20,
  maxKvCount: 65536,
  maxTensorCount: 65536,
  maxKeyBytes: 1024,
  maxStringBytes: 16 * 2 ** 20,
  maxArrayLength: 2 ** 24,
  maxAlignment: 65536,
  allowTrailingData: false,
  strictLayout: true,
});

/** Fills in defaults; a nonsensical limit is a programming error (RangeError), not a file fault. */
export function resolveLimits(limits?: Partial<GgufLimits>): Readonly<GgufLimits> {
  if (!limits) return DEFAULT_LIMITS;
  const out: GgufLimits = { ...DEFAULT_LIMITS, ...limits };
  for (const [k, v] of Object.entries(out)) {
    if (typeof v === "boolean") continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`GGUF limit ${k} must be a non-negative safe integer, got ${v}`);
  }
  return Object.freeze(out);
}

export function limitError(what: string, value: number | bigint, limit: number): ColonyError {
  return new ColonyError(GgufErrors.GGUF_LIMIT_EXCEEDED, `${what} ${value} exceeds the limit ${limit}`, { what, value: String(value), limit });
}
