/**
 * The binary frame of `nodes/{nodeId}/model-chunk` (docs/protocol.md, "Model transfer"):
 *
 *     +----------------+---------------------------+-------------------+
 *     | u32 BE: n      | n bytes: JSON header      | header.length     |
 *     |                | (ModelChunkHeaderSchema)  | raw model bytes   |
 *     +----------------+---------------------------+-------------------+
 *
 * Raw bytes instead of base64 in JSON: base64 costs a third more on the wire and a copy more on
 * both sides. The decoder trusts nothing: every length is checked against the payload before it is
 * used, the header goes through the protocol's one `decode` (with its own, smaller bound), and the
 * bytes must be exactly `header.length` long and lie inside `[0, total)`. The chunk's sha256 is
 * checked by the fetcher (a mismatch is a re-fetch, not a drop).
 */
import { decode } from "./codec.ts";
import { MAX_MODEL_CHUNK, ModelChunkHeaderSchema, type ModelChunkHeader } from "./models.ts";

/** The header is JSON of a few hundred bytes, a few KB with a signed manifest. */
export const MAX_CHUNK_HEADER_BYTES = 32 * 1024;
const PREFIX = 4;

export type FrameResult = { ok: true; header: ModelChunkHeader; data: Buffer } | { ok: false; code: "FRAME_TRUNCATED" | "FRAME_HEADER_TOO_LARGE" | "FRAME_HEADER_INVALID" | "FRAME_LENGTH_MISMATCH" | "FRAME_OUT_OF_RANGE"; message: string };

/** One frame: header and bytes in one buffer (one MQTT payload, one copy of `data`). */
export function encodeChunkFrame(header: ModelChunkHeader, data: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  if (json.length > MAX_CHUNK_HEADER_BYTES) throw new Error(`chunk header of ${json.length} bytes exceeds ${MAX_CHUNK_HEADER_BYTES}`);
  if (data.length !== header.length) throw new Error(`chunk of ${data.length} bytes, header says ${header.length}`);
  const out = Buffer.allocUnsafe(PREFIX + json.length + data.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, PREFIX);
  data.copy(out, PREFIX + json.length);
  return out;
}

/**
 * A frame whose bytes are read straight into it (no copy of the chunk): the header is laid out with
 * `chunkSha256` first and a placeholder, `data` is the frame's byte area, and `seal` writes the
 * sha256 into the placeholder once the bytes are there.
 */
export function allocChunkFrame(header: Omit<ModelChunkHeader, "chunkSha256">): { frame: Buffer; data: Buffer; seal(chunkSha256: string): Buffer } {
  const PLACEHOLDER = "0".repeat(64);
  const json = Buffer.from(JSON.stringify({ chunkSha256: PLACEHOLDER, ...header }), "utf8");
  if (json.length > MAX_CHUNK_HEADER_BYTES) throw new Error(`chunk header of ${json.length} bytes exceeds ${MAX_CHUNK_HEADER_BYTES}`);
  // `{"chunkSha256":"` is 16 bytes: the placeholder starts there.
  const at = PREFIX + 16;
  const frame = Buffer.allocUnsafe(PREFIX + json.length + header.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, PREFIX);
  return {
    frame,
    data: frame.subarray(PREFIX + json.length),
    seal: (chunkSha256) => {
      if (!/^[0-9a-f]{64}$/.test(chunkSha256)) throw new Error("chunkSha256 must be 64 lower-case hex digits");
      frame.write(chunkSha256, at, "latin1");
      return frame;
    },
  };
}

/** Splits and checks a frame; `data` is a view into `payload` (no copy). */
export function decodeChunkFrame(payload: Buffer): FrameResult {
  if (payload.length < PREFIX) return { ok: false, code: "FRAME_TRUNCATED", message: `frame of ${payload.length} bytes has no header length` };
  const n = payload.readUInt32BE(0);
  if (n > MAX_CHUNK_HEADER_BYTES) return { ok: false, code: "FRAME_HEADER_TOO_LARGE", message: `header length ${n} exceeds ${MAX_CHUNK_HEADER_BYTES}` };
  if (PREFIX + n > payload.length) return { ok: false, code: "FRAME_TRUNCATED", message: `header length ${n} runs past the frame's ${payload.length} bytes` };
  const d = decode(ModelChunkHeaderSchema, payload.subarray(PREFIX, PREFIX + n));
  if (!d.ok) return { ok: false, code: "FRAME_HEADER_INVALID", message: `${d.code}: ${d.message}`.slice(0, 500) };
  const header = d.value;
  const data = payload.subarray(PREFIX + n);
  if (data.length !== header.length) return { ok: false, code: "FRAME_LENGTH_MISMATCH", message: `header says ${header.length} bytes, the frame carries ${data.length}` };
  if (header.error && header.length !== 0) return { ok: false, code: "FRAME_LENGTH_MISMATCH", message: "an error frame carries bytes" };
  if (!header.error && (header.length > MAX_MODEL_CHUNK || header.offset + header.length > header.total)) {
    return { ok: false, code: "FRAME_OUT_OF_RANGE", message: `bytes [${header.offset}, ${header.offset + header.length}) lie outside the model's ${header.total}` };
  }
  return { ok: true, header, data };
}
