/**
 * The node's check of one model file before llama.cpp parses it: the hardened GGUF reader, then
 * the model gate (gguf/llama-check.ts), then, for a pinned reference, the file's sha256. Errors
 * carry node codes: MODEL_FILE_INVALID (missing, unreadable, malformed or a known llama.cpp
 * crash), MODEL_UNSUPPORTED (outside what the gate models), MODEL_HASH_MISMATCH.
 * What the node loads is a verified private copy of the file (verified-models.ts), not this path.
 */
import { stat } from "node:fs/promises";
import { ColonyError } from "../../common/errors.ts";
import { GgufErrors } from "../../gguf/errors.ts";
import { checkModel, type ModelCheck } from "../../gguf/llama-check.ts";
import { metaValue } from "../../gguf/meta.ts";
import { readGgufHeaderFromFile } from "../../gguf/reader.ts";
import { NodeErrors } from "../errors.ts";
import { sha256File } from "../../common/file-hash.ts";

/** What a verified model file tells before it is loaded. */
export interface ModelFacts {
  file: string;
  sizeMB: number;
  /** `{arch}.context_length`: the context the model was trained with (undefined if absent). */
  trainContext?: number | undefined;
  /** "full" unless the file was admitted by allowUncheckedModels after the basic checks only. */
  coverage?: ModelCheck["coverage"];
  uncheckedReason?: string | undefined;
}

export interface VerifyOptions {
  /** Admit files the gate does not model (MODEL_UNSUPPORTED otherwise). Default false. */
  allowUnchecked?: boolean | undefined;
  /** The pinned sha256 (lower-case hex) the file must have. Default: none. */
  sha256?: string | undefined;
  /** The name used in messages and details, when `file` is a copy of it. Default: `file`. */
  shownAs?: string | undefined;
}


export function hashMismatch(name: string, expected: string, actual: string): ColonyError {
  return new ColonyError(NodeErrors.MODEL_HASH_MISMATCH, `model file ${name} has sha256 ${actual}, its reference pins ${expected}`, { file: name, expected, actual });
}

/** Refuses a missing file, a bad GGUF header, a model the gate refuses or a hash mismatch. */
export async function verifyModelFile(file: string, opts: VerifyOptions = {}): Promise<ModelFacts> {
  const name = opts.shownAs ?? file;
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${name} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file: name });
  }
  let check: ModelCheck;
  let trainContext: number | undefined;
  try {
    const header = await readGgufHeaderFromFile(file);
    check = checkModel(header, { allowUnchecked: opts.allowUnchecked === true });
    const ctx = metaValue(header.metadata, `${check.architecture}.context_length`);
    trainContext = typeof ctx === "number" || typeof ctx === "bigint" ? Number(ctx) : undefined;
  } catch (err) {
    const inner = err instanceof ColonyError ? err.code : undefined;
    if (inner === GgufErrors.GGUF_MODEL_UNCHECKED) {
      throw new ColonyError(NodeErrors.MODEL_UNSUPPORTED, `model file ${name} is not one the model gate can check: ${(err as Error).message}; set allowUncheckedModels to load it at your own risk`, { file: name }, { cause: err });
    }
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${name} is not a valid GGUF model: ${inner ? `${inner}: ` : ""}${(err as Error).message}`, { file: name, reason: inner }, { cause: err });
  }
  if (opts.sha256) {
    const actual = await sha256File(file);
    if (actual !== opts.sha256) throw hashMismatch(name, opts.sha256, actual);
  }
  return { file: name, sizeMB: size / 2 ** 20, trainContext, coverage: check.coverage, uncheckedReason: check.uncheckedReason };
}
