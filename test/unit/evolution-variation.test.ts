// Variation operators are pure and seeded (coordinator/evolution/variation.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { GenomeSchema, genomeHash } from "../../common/genome.ts";
import { IdSchema } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { applicable, vary } from "../../coordinator/evolution/variation.ts";

const parent = GenomeSchema.parse({ id: "seed-add", model: "seed-add.gguf", skills: ["add"], accuracyPrior: { add: 0.97 } });

test("variation: same seed, same child; a child names its parent, has a valid id and its own hash", () => {
  const a = vary(parent, "sampling", 1, new Rng(7));
  const b = vary(parent, "sampling", 1, new Rng(7));
  assert.deepEqual(a, b);
  assert.equal(a.genome.parent, "seed-add");
  assert.ok(IdSchema.safeParse(a.genome.id).success, a.genome.id);
  assert.match(a.genome.id, /^seed-add-g1-[0-9a-f]{8}$/);
  assert.equal(a.hash, genomeHash(a.genome));
  assert.notEqual(a.hash, genomeHash(parent));
  assert.ok(a.genome.sampling.temperature > 0, "a greedy parent's child samples");
  assert.ok(GenomeSchema.safeParse(a.genome).success, "the child is a valid genome");
  const grandchild = vary(a.genome, "sampling", 2, new Rng(1));
  assert.match(grandchild.genome.id, /^seed-add-g2-[0-9a-f]{8}$/, "ids do not grow with generations");
});

test("variation: fewshot puts verified examples before the template; adapter swaps; applicable filters", () => {
  const exemplars = [{ prompt: "add 1 2 =", output: " 3" }, { prompt: "add 2 2 =", output: " 4" }];
  assert.deepEqual(applicable(parent, {}, ["sampling", "fewshot", "adapter", "distilled"]), ["sampling"]);
  assert.deepEqual(applicable(parent, { exemplars, adapters: ["a.gguf"], model: "d.gguf" }, ["fewshot", "adapter", "distilled"]), ["fewshot", "adapter", "distilled"]);
  const f = vary(parent, "fewshot", 1, new Rng(3), { exemplars, maxExemplars: 2 });
  assert.ok(f.genome.promptTemplate.endsWith("\n{prompt}"));
  assert.ok(f.genome.promptTemplate.includes("add 1 2 = 3") && f.genome.promptTemplate.includes("add 2 2 = 4"));
  const ad = vary(parent, "adapter", 1, new Rng(3), { adapters: ["x.gguf#sha256=" + "a".repeat(64)] });
  assert.equal(ad.genome.adapter, "x.gguf#sha256=" + "a".repeat(64));
  const d = vary({ ...parent, adapter: "old.gguf" }, "distilled", 1, new Rng(3), { model: "child.gguf" });
  assert.equal(d.genome.model, "child.gguf");
  assert.equal(d.genome.adapter, undefined, "a distilled model replaces the adapter too");
});
