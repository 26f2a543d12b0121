/**
 * Trains the fleet's seed specialists and writes them to models/ with models/seed-manifest.json.
 * Everything is derived from fixed seeds, so running this again reproduces the same files (same
 * sha256) on the same kernel backend and thread count, which the manifest records.
 *
 *   node --import tsx scripts/make-seed-models.ts [--only NAME[,NAME]] [--threads N] [--out-dir models]
 *
 * Each specialist is then scored the way the fleet will run it: greedy decoding through llama.cpp
 * (node-llama-cpp) on 200 held-out instances per skill; test/trainer-seed-accuracy.test.ts checks
 * the same numbers against the committed files.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";
import { Rng } from "../common/random.ts";
import { meta } from "../gguf/meta.ts";
import { getSkill, trainingInstances } from "../skills/index.ts";
import { encodePairs } from "../trainer/dataset.ts";
import { exportModelGguf } from "../trainer/gguf-export.ts";
import { kernelInfo, setKernelThreads } from "../trainer/kernels.ts";
import type { LlamaConfig } from "../trainer/llama/config.ts";
import { LlamaModel } from "../trainer/model.ts";
import { evaluateSkills, SEED_CONTEXT, SEED_EVAL_COUNT, SEED_EVAL_SEED, seedTokenizer } from "../trainer/seed-eval.ts";
import { train } from "../trainer/train.ts";

interface SpecialistSpec {
  name: string;
  skills: string[];
  dim: number;
  layers: number;
  heads: number;
  ffn: number;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
}

/**
 * Sizes and step counts picked to pass 95% held-out accuracy with some margin while training in a
 * few minutes on two shared cores. Context SEED_CONTEXT (32) fits every skill's prompt + answer.
 */
export const SPECIALISTS: readonly SpecialistSpec[] = [
  { name: "seed-max-sort", skills: ["max", "sort"], dim: 64, layers: 2, heads: 4, ffn: 192, steps: 1400, batch: 32, lr: 5e-3, seed: 11 },
  { name: "seed-reverse", skills: ["reverse"], dim: 64, layers: 2, heads: 4, ffn: 192, steps: 900, batch: 32, lr: 5e-3, seed: 12 },
  { name: "seed-count", skills: ["count"], dim: 64, layers: 4, heads: 8, ffn: 192, steps: 3000, batch: 32, lr: 3e-3, seed: 13 },
  { name: "seed-add", skills: ["add"], dim: 64, layers: 3, heads: 4, ffn: 192, steps: 3000, batch: 32, lr: 5e-3, seed: 14 },
];

/** Training instances drawn per skill (with replacement; held-out prompts never appear). */
const TRAIN_INSTANCES = 20000;
/** Held-out exact match a seed model must reach to be published. */
const TARGET_ACCURACY = 0.95;

/** The git commit the trainer ran from, and whether the files that shape the weights were edited. */
function codeVersion(): { commit: string; dirty: boolean } | null {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "trainer", "native", "common/random.ts", "skills"], { encoding: "utf8" }).trim() !== "";
    return { commit, dirty };
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: "string" }, threads: { type: "string", default: "1" }, "out-dir": { type: "string", default: "models" } } });
  const threads = Number(values.threads);
  setKernelThreads(threads);
  const outDir = values["out-dir"]!;
  mkdirSync(outDir, { recursive: true });
  const only = values.only ? new Set(values.only.split(",")) : undefined;
  const manifestPath = path.join(outDir, "seed-manifest.json");
  const tokenizer = seedTokenizer();
  const llama = await getLlama({ gpu: false, build: "never" });
  const failed: string[] = [];

  for (const spec of SPECIALISTS) {
    if (only && !only.has(spec.name)) continue;
    const config: LlamaConfig = { vocabSize: tokenizer.vocabSize, dim: spec.dim, nLayers: spec.layers, nHeads: spec.heads, nKvHeads: spec.heads, ffnDim: spec.ffn, contextLength: SEED_CONTEXT, normEps: 1e-5, ropeTheta: 10000 };
    const pairs = spec.skills.flatMap((name) =>
      trainingInstances(getSkill(name), TRAIN_INSTANCES, `seed-model:${spec.seed}`).map((inst, i) => ({ prompt: inst.prompt, completion: inst.answer, line: i + 1 })),
    );
    const examples = encodePairs(pairs, tokenizer, SEED_CONTEXT);
    const model = LlamaModel.init(config, new Rng(spec.seed));
    process.stderr.write(`${spec.name}: ${model.parameterCount} params, ${examples.length} examples, ${spec.steps} steps\n`);
    const r = await train(model, examples, {
      steps: spec.steps, batchSize: spec.batch, lr: spec.lr, seed: spec.seed, config: { ...config },
      onStep: (s) => {
        if (s.step % 100 === 0) process.stderr.write(`  step ${s.step} loss ${s.loss.toFixed(4)}\n`);
      },
    });
    const file = `${spec.name}.gguf`;
    const full = path.join(outDir, file);
    await exportModelGguf(model, tokenizer, full, {
      name: spec.name,
      extraMetadata: [["colony.skills", meta.strs(spec.skills)], ["colony.seed", meta.u32(spec.seed)]],
    });
    const bytes = readFileSync(full);
    const accuracy = await evaluateSkills(llama, full, spec.skills, { threads });
    process.stderr.write(`  trained in ${r.seconds.toFixed(1)} s; held-out accuracy ${JSON.stringify(accuracy)}\n`);
    const below = Object.entries(accuracy).filter(([, a]) => a < TARGET_ACCURACY);
    if (below.length > 0) {
      // A seed that misses the target is not published: agents would bid with it and lose.
      process.stderr.write(`  ${spec.name} misses the ${TARGET_ACCURACY} target on ${below.map(([k]) => k).join(", ")}; not added to the manifest\n`);
      rmSync(full);
      failed.push(spec.name);
      continue;
    }
    const entry = {
      name: spec.name,
      file,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      skills: spec.skills,
      config,
      train: { seed: spec.seed, steps: spec.steps, batch: spec.batch, lr: spec.lr, instancesPerSkill: TRAIN_INSTANCES, tokens: r.tokens, finalLoss: r.losses.at(-1) },
      trainingSeconds: Number(r.seconds.toFixed(1)),
      kernels: kernelInfo(),
      // Bitwise reproduction needs the same model and kernel code: float rounding changes with it.
      code: codeVersion(),
      heldOut: { count: SEED_EVAL_COUNT, seed: SEED_EVAL_SEED, accuracy },
    };
    // Re-read right before writing: several --only runs may work side by side.
    const manifest: { version: 1; note: string; models: Array<Record<string, unknown>> } = existsSync(manifestPath)
      ? JSON.parse(readFileSync(manifestPath, "utf8"))
      : { version: 1, note: "", models: [] };
    manifest.note = "Seed specialists made by `node --import tsx scripts/make-seed-models.ts`; accuracy = greedy llama.cpp exact match on held-out instances.";
    manifest.models = manifest.models.filter((m) => m.name !== spec.name);
    manifest.models.push(entry);
    manifest.models.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  }
  await llama.dispose();
  if (failed.length > 0) {
    process.stderr.write(`below target: ${failed.join(", ")}\n`);
    process.exitCode = 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("make-seed-models.ts")) {
  await main();
}
