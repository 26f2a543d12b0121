import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { getLlama } from "node-llama-cpp";
import { evaluateSkills, SEED_EVAL_COUNT } from "../../trainer/seed-eval.ts";

/**
 * The committed seed specialists (models/seed-manifest.json) must each reach >= 95% exact match on
 * 200 held-out instances of each of their skills, decoded greedily by llama.cpp: the path a fleet
 * agent takes. Also checks that the files are the ones the manifest describes.
 */
interface ManifestEntry {
  name: string;
  file: string;
  sha256: string;
  skills: string[];
}
const manifest = JSON.parse(readFileSync("models/seed-manifest.json", "utf8")) as { models: ManifestEntry[] };

test("seed manifest lists files that exist with the recorded sha256, each well under 2 MB", () => {
  assert.ok(manifest.models.length >= 1);
  for (const m of manifest.models) {
    const bytes = readFileSync(path.join("models", m.file));
    assert.equal(createHash("sha256").update(bytes).digest("hex"), m.sha256, `${m.file} differs from the manifest`);
    assert.ok(bytes.length < 2_000_000, `${m.file} is ${bytes.length} bytes`);
    assert.ok(m.skills.length >= 1);
  }
});

test("every seed specialist reaches >= 95% held-out exact match through llama.cpp", async () => {
  const llama = await getLlama({ gpu: false, build: "never" });
  try {
    const failures: string[] = [];
    for (const m of manifest.models) {
      const acc = await evaluateSkills(llama, path.join("models", m.file), m.skills, { threads: 1, count: SEED_EVAL_COUNT });
      for (const [skill, a] of Object.entries(acc)) if (a < 0.95) failures.push(`${m.name}/${skill}: ${a}`);
    }
    assert.deepEqual(failures, []);
  } finally {
    await llama.dispose();
  }
});
