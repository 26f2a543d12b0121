/**
 * The seed models (models/seed-manifest.json) enter the coordinator's model store at the fleet's
 * first start, so they carry signed manifests like every other model and nodes can be pushed them:
 * lineage = the seed's name, version 1, no gate report, the seed manifest's skills. A seed the
 * store already holds (by sha256) is left alone, so this runs at every start and signs each seed
 * once. A seed that cannot be imported (file missing, another sha256 than its manifest pins, refused
 * by the gate) is logged and skipped: the coordinator still starts.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import type { ModelStore } from "./model-store.ts";
import { sha256File } from "../../common/file-hash.ts";

export const SEED_MANIFEST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "models", "seed-manifest.json");

const SeedManifestSchema = z.looseObject({
  models: z.array(z.looseObject({ name: z.string(), file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), skills: z.array(z.string()) })),
});

export interface SeedImport {
  added: string[];
  present: string[];
  failed: { name: string; code?: string | undefined; message: string }[];
}

export async function importSeedModels(store: ModelStore, o: { manifest?: string | undefined; logger: Logger }): Promise<SeedImport> {
  const file = o.manifest ?? SEED_MANIFEST;
  const out: SeedImport = { added: [], present: [], failed: [] };
  let seeds: z.infer<typeof SeedManifestSchema>;
  try {
    seeds = SeedManifestSchema.parse(JSON.parse(await readFile(file, "utf8")));
  } catch (err) {
    // No seed manifest (a stripped install) leaves the store as it is; the coordinator still starts.
    o.logger.warn({ file, err: { message: (err as Error).message } }, "no readable seed manifest; no seed models added to the model store");
    return out;
  }
  for (const seed of seeds.models) {
    if (store.get(seed.sha256)) {
      out.present.push(seed.name);
      continue;
    }
    try {
      const modelFile = path.resolve(path.dirname(file), seed.file);
      // Checked before adding, so a swapped file never takes a version of the seed's lineage.
      const actual = await sha256File(modelFile);
      if (actual !== seed.sha256) throw new ColonyError("MODEL_HASH_MISMATCH" /* the node's code for the same fault (node/errors.ts) */, `${seed.file} has sha256 ${actual}, the seed manifest pins ${seed.sha256}`);
      await store.add(modelFile, { name: seed.name, lineage: seed.name, format: "gguf-model", parents: [], skills: seed.skills });
      out.added.push(seed.name);
    } catch (err) {
      const code = (err as { code?: string }).code;
      out.failed.push({ name: seed.name, code, message: (err as Error).message });
      o.logger.error({ seed: seed.name, err: { code, message: (err as Error).message } }, "a seed model could not be added to the model store");
    }
  }
  if (out.added.length > 0) o.logger.info({ added: out.added }, "seed models signed and added to the model store");
  return out;
}
