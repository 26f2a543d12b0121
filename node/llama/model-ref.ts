/**
 * A genome's `model`: a local path (relative to the agents file), an `hf:` URI or an https URL,
 * optionally pinned to the file's content with a trailing `#sha256=<64 hex digits>`:
 *
 *     hf:user/repo/model.Q4_K_M.gguf#sha256=9f86d0...
 *     models/seed-add.gguf#sha256=...
 *
 * A pinned model is refused with MODEL_HASH_MISMATCH unless the bytes the node verifies and loads
 * have that hash (verified-models.ts), so a download from a mirror, a cached file or a path
 * someone else can write cannot swap the model. The pin is Colony's: it is removed before the
 * rest goes to node-llama-cpp, where `#branch` after an `hf:` file keeps its meaning
 * (`hf:user/repo/file.gguf#dev#sha256=...`).
 */
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { NodeErrors } from "../errors.ts";

const PIN = "#sha256=";
const HEX64 = /^[0-9a-f]{64}$/i;

export interface ModelRef {
  /** The path or URI without the pin. */
  source: string;
  /** The pinned sha256, lower-case hex; undefined when the reference is not pinned. */
  sha256?: string;
}

const COLONY = "colony:";

/**
 * `colony:<sha256>`: a model in the coordinator's store, fetched over MQTT and verified (signature,
 * hash, version, gate) by node/models/model-fetcher.ts. Its source is the reference itself; its pin
 * is the hash.
 */
export function isColonyModel(source: string): boolean {
  return source.startsWith(COLONY);
}

/** Splits off a trailing `#sha256=<hex>`; throws MODEL_URI_INVALID for a malformed pin. */
export function parseModelRef(spec: string): ModelRef {
  if (isColonyModel(spec)) {
    const hex = spec.slice(COLONY.length);
    if (!HEX64.test(hex) || hex !== hex.toLowerCase()) throw new ColonyError(NodeErrors.MODEL_URI_INVALID, `model ${JSON.stringify(spec.slice(0, 200))}: ${COLONY} must be followed by 64 lower-case hex digits`, { model: spec.slice(0, 200) });
    return { source: spec, sha256: hex };
  }
  const at = spec.lastIndexOf(PIN);
  if (at < 0) return { source: spec };
  const hex = spec.slice(at + PIN.length);
  const source = spec.slice(0, at);
  if (!HEX64.test(hex)) throw new ColonyError(NodeErrors.MODEL_URI_INVALID, `model ${JSON.stringify(spec)}: ${PIN} must end the reference and hold 64 hex digits`, { model: spec });
  if (source === "") throw new ColonyError(NodeErrors.MODEL_URI_INVALID, `model ${JSON.stringify(spec)} names no file before ${PIN}`, { model: spec });
  return { source, sha256: hex.toLowerCase() };
}

export function isRemoteModel(source: string): boolean {
  return source.startsWith("hf:") || source.startsWith("https://");
}

export interface ResolveModelOptions {
  /**
   * Base URL that `hf:` URIs download from instead of https://huggingface.co/ (a mirror; tests
   * point it at a local server). Default: node-llama-cpp's (HF_ENDPOINT / MODEL_ENDPOINT, else Hugging Face).
   */
  hfEndpoint?: string | undefined;
}

/**
 * The local file of a model reference and its pin: a path relative to `baseDir`, or an `hf:`/https
 * model that node-llama-cpp's `resolveModelFile` downloads into `modelsDir` (or finds there).
 */
export async function resolveModel(spec: string, baseDir: string, modelsDir: string, opts: ResolveModelOptions = {}): Promise<{ file: string; sha256?: string }> {
  const ref = parseModelRef(spec);
  const pin = ref.sha256 ? { sha256: ref.sha256 } : {};
  if (!isRemoteModel(ref.source)) return { file: path.resolve(baseDir, ref.source), ...pin };
  const { resolveModelFile } = await import("node-llama-cpp");
  const endpoints = opts.hfEndpoint ? { endpoints: { huggingFace: opts.hfEndpoint } } : {};
  try {
    return { file: await resolveModelFile(ref.source, { directory: modelsDir, cli: false, ...endpoints }), ...pin };
  } catch (err) {
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model ${ref.source} could not be downloaded: ${(err as Error).message}`, { model: ref.source }, { cause: err });
  }
}
