/**
 * Bytes <-> messages. `decode` is the single place where bytes from MQTT become typed messages;
 * it returns a result instead of throwing so callers on hot paths count and log the drop without a
 * try/catch.
 */
import type { z } from "zod";

/** Payloads larger than this are dropped before JSON.parse (a prompt of ~48k characters fits). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; code: "PAYLOAD_TOO_LARGE" | "PAYLOAD_NOT_JSON" | "PAYLOAD_INVALID"; message: string };

export function decode<S extends z.ZodType>(schema: S, payload: Buffer | Uint8Array | string): DecodeResult<z.infer<S>> {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, code: "PAYLOAD_TOO_LARGE", message: `payload of ${size} bytes exceeds ${MAX_PAYLOAD_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === "string" ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
  } catch (err) {
    return { ok: false, code: "PAYLOAD_NOT_JSON", message: `payload is not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return { ok: false, code: "PAYLOAD_INVALID", message: first.join("; ") };
  }
  return { ok: true, value: parsed.data };
}

export function encode(value: unknown): string {
  return JSON.stringify(value);
}
