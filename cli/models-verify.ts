/**
 * `colony models verify`: the checks a node makes of a pushed model, offline, on a file and its
 * signed manifest: the signature with the fleet's model key (and that the key is the fleet's), the
 * file's size and sha256 against the manifest, then the GGUF gate (the adapter gate against its
 * base for an adapter). Throws the refusal's ColonyError (its stable code).
 */
import { stat } from "node:fs/promises";
import { ColonyError, CommonErrors, ModelTransferErrors } from "../common/errors.ts";
import { verifySignedManifest, type ModelManifest } from "../common/model-manifest.ts";
import { checkModel } from "../gguf/llama-check.ts";
import { checkLoraAdapter } from "../gguf/lora-check.ts";
import { readGgufHeaderFromFile } from "../gguf/reader.ts";
import { NodeErrors } from "../node/errors.ts";
import { sha256File } from "../common/file-hash.ts";

export async function verifyModelOffline(file: string, signed: unknown, publicKey: string, o: { base?: string | undefined } = {}): Promise<ModelManifest> {
  const m = verifySignedManifest(signed, publicKey);
  const bytes = (await stat(file)).size;
  if (bytes !== m.bytes) throw new ColonyError(ModelTransferErrors.MODEL_TRUNCATED, `${file} has ${bytes} bytes, its manifest says ${m.bytes}`);
  const actual = await sha256File(file);
  if (actual !== m.sha256) throw new ColonyError(NodeErrors.MODEL_HASH_MISMATCH, `${file} has sha256 ${actual}, its manifest says ${m.sha256}`);
  const header = await readGgufHeaderFromFile(file);
  if (m.format === "gguf-model") {
    checkModel(header);
    return m;
  }
  if (!o.base) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, `${m.name} is an adapter: give its base model with --base FILE (sha256 ${m.base?.slice(0, 12) ?? "?"})`);
  const baseSha = await sha256File(o.base);
  if (baseSha !== m.base) throw new ColonyError(NodeErrors.MODEL_HASH_MISMATCH, `base ${o.base} has sha256 ${baseSha}, the adapter's manifest names ${m.base ?? "none"}`);
  checkLoraAdapter(header, await readGgufHeaderFromFile(o.base));
  return m;
}
