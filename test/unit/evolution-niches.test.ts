// The niche clusterer of tasks without a skill (coordinator/evolution/niches.ts) and the part that
// keeps it in the coordinator's LevelDB (niche-book.ts): pure logic, a fake clock, a real store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { silentLogger } from "../../common/logger.ts";
import { NicheSchema } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { NicheBook } from "../../coordinator/evolution/niche-book.ts";
import { NicheClusterer, promptFeatures } from "../../coordinator/evolution/niches.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { listSkills } from "../../skills/index.ts";

/** `n` prompts of the built-in skills in a seeded random order, each with its skill. */
function skillPrompts(n: number, seed: string): { skill: string; prompt: string }[] {
  const rng = new Rng(seed);
  const skills = listSkills();
  return Array.from({ length: n }, () => {
    const s = skills[rng.int(0, skills.length - 1)]!;
    return { skill: s.name, prompt: s.generate(rng).prompt };
  });
}

/** For each cluster, the share of its prompts that belong to its most frequent skill, weighted by size. */
function purity(pairs: { skill: string; key: string }[]): number {
  const byKey = new Map<string, Map<string, number>>();
  for (const { skill, key } of pairs) {
    const m = byKey.get(key) ?? new Map<string, number>();
    m.set(skill, (m.get(skill) ?? 0) + 1);
    byKey.set(key, m);
  }
  let majority = 0;
  for (const m of byKey.values()) majority += Math.max(...m.values());
  return majority / pairs.length;
}

test("features: unit length, digit runs normalised, cheap for a long prompt", () => {
  const a = promptFeatures("add 12 34 =", 256);
  const b = promptFeatures("add 7 91 =", 256);
  assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-12);
  assert.deepEqual(a, b, "two additions differ only in their numbers");
  assert.notDeepEqual(promptFeatures("max 4172 =", 256), promptFeatures("sort 4172 =", 256), "the first word tells max from sort");
  const t0 = performance.now();
  promptFeatures("word ".repeat(10_000), 256);
  assert.ok(performance.now() - t0 < 50, "only the first characters are read");
});

test("the five built-in skills land in five clusters with purity >= 0.95; keys are niche keys", () => {
  const c = new NicheClusterer();
  const pairs = skillPrompts(400, "niches-purity").map(({ skill, prompt }) => ({ skill, key: c.assign(prompt).key }));
  assert.equal(c.size, 5, `clusters: ${c.size}`);
  const p = purity(pairs);
  assert.ok(p >= 0.95, `purity ${p}`);
  // Each skill has one cluster of its own.
  const keysOf = (skill: string) => new Set(pairs.filter((x) => x.skill === skill).map((x) => x.key));
  const owners = listSkills().map((s) => [...keysOf(s.name)]);
  assert.equal(new Set(owners.flat()).size, 5);
  for (const k of owners.flat()) assert.equal(NicheSchema.safeParse(k).success, true, k);
  assert.deepEqual(owners.flat().map((k) => k.slice(0, 2)), Array(5).fill("~c"));
  // Prompts of other shapes open clusters of their own.
  assert.equal(c.assign("Translate 'good morning' into French, please.").opened, true);
});

test("clustering is deterministic: the same prompts in the same order give the same keys and state", () => {
  const prompts = skillPrompts(300, "niches-determinism").map((x) => x.prompt);
  const a = new NicheClusterer();
  const b = new NicheClusterer();
  assert.deepEqual(prompts.map((p) => a.assign(p).key), prompts.map((p) => b.assign(p).key));
  assert.deepEqual(a.toJSON(), b.toJSON());
  // nearest() reads without learning.
  const before = JSON.stringify(a.toJSON());
  assert.equal(a.nearest("reverse xyz =")?.key, a.assign("reverse xyz =").key);
  assert.notEqual(JSON.stringify(a.toJSON()), before);
  assert.equal(new NicheClusterer().nearest("anything"), undefined);
});

test("maxClusters is respected: beyond it, a prompt joins the nearest cluster", () => {
  const c = new NicheClusterer({ maxClusters: 3 });
  const keys = skillPrompts(200, "niches-max").map(({ prompt }) => c.assign(prompt).key);
  assert.equal(c.size, 3);
  assert.deepEqual([...new Set(keys)].sort(), ["~c1", "~c2", "~c3"]);
  const one = new NicheClusterer({ maxClusters: 1 });
  for (const p of ["add 1 2 =", "reverse abc =", "something else entirely"]) assert.equal(one.assign(p).key, "~c1");
});

test("the state round-trips through JSON and the restored clusterer goes on as the original", () => {
  const prompts = skillPrompts(250, "niches-json").map((x) => x.prompt);
  const a = new NicheClusterer();
  for (const p of prompts.slice(0, 150)) a.assign(p);
  const b = NicheClusterer.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
  assert.deepEqual(b.toJSON(), a.toJSON());
  assert.deepEqual(prompts.slice(150).map((p) => b.assign(p).key), prompts.slice(150).map((p) => a.assign(p).key));
  // A new cluster after the restore gets the next number, never a used one.
  assert.equal(b.assign("an unlike prompt: what is the capital of France?").key, "~c6");
  assert.throws(() => NicheClusterer.fromJSON({ version: 2 }), /niche state/);
  assert.throws(() => NicheClusterer.fromJSON({ ...a.toJSON(), clusters: [{ id: 1, n: 1, centroid: [1, 2] }] }), /malformed/);
  assert.throws(() => NicheClusterer.fromJSON(a.toJSON(), { dims: 64 }), /dims/);
  // The threshold and maxClusters of a stored state may change at a restart.
  assert.equal(NicheClusterer.fromJSON(a.toJSON(), { maxClusters: 9 }).options.maxClusters, 9);
});

test("NicheBook: saves at most once per interval and on close, at once when a cluster opens; a restart resumes the clusters", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-niches-"));
  const clock = new FakeClock();
  try {
    const store = new TaskStore(dir);
    await store.start();
    const puts: Promise<void>[] = [];
    const counting = { getMeta: (k: string) => store.getMeta(k), putMeta: (k: string, v: unknown) => (puts.push(store.putMeta(k, v)), puts.at(-1)!) };
    // The saves a fired timer started have reached LevelDB (under load one turn of the loop is not enough).
    const settle = async () => {
      await new Promise((r) => setImmediate(r));
      await Promise.all(puts);
      await new Promise((r) => setImmediate(r));
    };
    const book = new NicheBook({ store: counting, clock, logger: silentLogger });
    await book.start();
    const k1 = book.classify("add 12 34 =");
    clock.advance(0);
    await settle();
    assert.equal(puts.length, 1, "a new cluster is saved at once");
    for (let i = 0; i < 50; i++) book.classify(`add ${i} ${i + 1} =`);
    clock.advance(500);
    await settle();
    assert.equal(puts.length, 1, "no save on the submit path, none before the interval");
    clock.advance(500);
    await settle();
    assert.equal(puts.length, 2, "one save for 50 classifications");
    const k2 = book.classify("reverse abc =");
    assert.notEqual(k2, k1);
    book.classify("reverse xyz =");
    await book.close();
    await book.close();
    const saved = book.state();
    await store.close();

    const store2 = new TaskStore(dir);
    await store2.start();
    const again = new NicheBook({ store: store2, clock, logger: silentLogger });
    await again.start();
    assert.deepEqual(again.state(), saved);
    assert.equal(again.classify("add 5 6 ="), k1);
    assert.equal(again.classify("reverse qrs ="), k2);
    await again.close();
    // An unreadable stored state: learned afresh, with cluster numbers after the stored ones.
    await store2.putMeta("niches", { version: 1, dims: 256, threshold: 0.6, maxClusters: 32, maxWeight: 1000, next: 7, clusters: "broken" });
    const fresh = new NicheBook({ store: store2, clock, logger: silentLogger });
    await fresh.start();
    assert.equal(fresh.classify("add 1 1 ="), "~c7");
    await fresh.close();
    await store2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
