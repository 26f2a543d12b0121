/**
 * Which agents a node hosts: an agents file (`{"agents": [genome, ...]}`, model paths relative to
 * the file), or by default one agent per seed model in models/seed-manifest.json with its skills.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ColonyError } from "../../common/errors.ts";
import { formatIssues, readJsonFile } from "../../common/config.ts";
import { GenomeSchema, type Genome } from "../../common/genome.ts";
import { NodeErrors } from "../errors.ts";

export const DEFAULT_MANIFEST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "models", "seed-manifest.json");

export const AgentsFileSchema = z.strictObject({
  agents: z
    .array(GenomeSchema)
    .min(1)
    .max(256)
    .refine((a) => new Set(a.map((g) => g.id)).size === a.length, "agent ids must be unique"),
});

/**
 * The parts of models/seed-manifest.json an agent is made from. `heldOut.accuracy` is the model's
 * measured accuracy per skill on held-out instances (scripts/make-seed-models.ts): the agent's claim.
 */
const ManifestSchema = z.looseObject({
  models: z
    .array(
      z.looseObject({
        name: z.string().min(1),
        file: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
        skills: z.array(z.string()).min(1),
        heldOut: z.looseObject({ accuracy: z.record(z.string(), z.number().min(0).max(1)) }).optional(),
      }),
    )
    .min(1),
});

export interface AgentsSpec {
  genomes: Genome[];
  /** Folder that relative model paths are resolved against. */
  baseDir: string;
  source: string;
}

function invalid(source: string, error: z.ZodError): ColonyError {
  const problems = formatIssues(error);
  return new ColonyError(NodeErrors.AGENTS_FILE_INVALID, `${source} is not a valid agents file:\n  ${problems.join("\n  ")}`, { problems });
}

export function parseAgentsFile(json: unknown, source: string, baseDir: string): AgentsSpec {
  const parsed = AgentsFileSchema.safeParse(json);
  if (!parsed.success) throw invalid(source, parsed.error);
  return { genomes: parsed.data.agents, baseDir, source };
}

/**
 * One agent per seed model, its model pinned to the manifest's sha256. Its claim is the manifest's held-out accuracy for each of its skills
 * (a skill the manifest has no figure for claims nothing: 0.5); a model without held-out figures
 * claims 0.5.
 */
export function agentsFromManifest(json: unknown, source: string, baseDir: string): AgentsSpec {
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw invalid(source, parsed.error);
  const genomes = parsed.data.models.map((m) => {
    const heldOut = m.heldOut?.accuracy ?? {};
    const claims = Object.fromEntries(m.skills.filter((s) => heldOut[s] !== undefined).map((s) => [s, heldOut[s]!]));
    // Pinned to the manifest's hash: a swapped file is refused, and the coordinator (which signs the
    // seeds into its model store at first start) finds the model by its content (docs/models.md).
    const model = m.sha256 ? `${m.file}#sha256=${m.sha256}` : m.file;
    const g = GenomeSchema.safeParse({ id: m.name, model, skills: m.skills, accuracyPrior: Object.keys(claims).length ? claims : 0.5 });
    if (!g.success) throw invalid(`${source} (model ${m.name})`, g.error);
    return g.data;
  });
  return { genomes, baseDir, source };
}

export function loadAgents(file: string | undefined, manifest = DEFAULT_MANIFEST): AgentsSpec {
  if (file) return parseAgentsFile(readJsonFile(file), file, path.dirname(path.resolve(file)));
  if (!existsSync(manifest)) {
    throw new ColonyError(NodeErrors.AGENTS_NONE, `no --agents file and no seed manifest at ${manifest}; write an agents file (docs/node.md)`);
  }
  return agentsFromManifest(readJsonFile(manifest), manifest, path.dirname(manifest));
}
