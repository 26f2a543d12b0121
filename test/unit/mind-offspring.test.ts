// The pure pieces of a distilled child's birth (coordinator/mind/offspring.ts): which file holds a
// parent's model, the child's genome and claims, where it is born, and the gate's summary line.
import assert from "node:assert/strict";
import { test } from "node:test";
import { wilson, type GateReport } from "../../common/gate-report.ts";
import { GenomeSchema, genomeHash } from "../../common/genome.ts";
import type { LifeRecord } from "../../coordinator/evolution/lineage.ts";
import { birthNode, childGenome, gateSummary, modelShaOf, resolveParents, strongestParent } from "../../coordinator/mind/offspring.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

function life(agentId: string, nodeId: string, model: string, skills: string[], extra: Partial<LifeRecord> = {}): LifeRecord {
  const spec = GenomeSchema.parse({ id: agentId, model, skills, sampling: { temperature: 0 }, promptTemplate: "{prompt}" });
  return { agentId, nodeId, genome: genomeHash(spec), spec, parents: [], generation: 0, state: "alive", bornAt: 1, birth: "founder", fitness: [], history: [], ...extra } as LifeRecord;
}

function gate(acc: Record<string, { child: number; parents: Record<string, number> }>, passed = true): GateReport {
  const skills = Object.entries(acc).map(([skill, v]) => ({
    skill,
    child: wilson(Math.round(v.child * 100), 100),
    parents: Object.entries(v.parents).map(([agentId, a]) => ({ agentId, accuracy: wilson(Math.round(a * 100), 100) })),
    best: Math.max(...Object.values(v.parents)),
  }));
  return { heldOut: { source: "generator", perSkill: 100, seed: "g" }, margin: 0.01, skills, union: { child: 0.99, bestParent: 0.5 }, passed, reasons: ["ok"] };
}

test("model references name their content: colony:<sha>, a #sha256= pin; anything else names none", () => {
  assert.equal(modelShaOf(`colony:${A}`), A);
  assert.equal(modelShaOf(`models/seed-add.gguf#sha256=${B.toUpperCase()}`), B);
  assert.equal(modelShaOf("hf:user/repo/m.gguf"), undefined);
  assert.equal(modelShaOf("colony:abc"), undefined);
});

test("parents: found among the living with their models in the store; unknown, ambiguous, adapter or unpinned parents are refused with codes", () => {
  const living = [life("p-add", "n1", `seed-add.gguf#sha256=${A}`, ["add"]), life("p-rev", "n2", `colony:${B}`, ["reverse"]), life("twin", "n1", `colony:${C}`, ["add"]), life("twin", "n2", `colony:${C}`, ["add"]), life("loose", "n1", "seed.gguf", ["add"]), life("gone", "n1", `colony:${A}`, ["add"], { state: "retired" } as Partial<LifeRecord>)];
  const files: Record<string, string> = { [A]: "/m/a.gguf", [B]: "/m/b.gguf", [C]: "/m/c.gguf" };
  const ps = resolveParents([{ agentId: "p-add" }, { agentId: "p-rev" }], living, (s) => files[s]);
  assert.deepEqual(ps.map((p) => [p.life.nodeId, p.modelFile]), [["n1", "/m/a.gguf"], ["n2", "/m/b.gguf"]]);
  assert.equal(resolveParents([{ agentId: "twin", nodeId: "n2" }], living, (s) => files[s])[0]!.life.nodeId, "n2");
  assert.throws(() => resolveParents([{ agentId: "twin" }], living, (s) => files[s]), { code: "MIND_PARENT_UNKNOWN" });
  assert.throws(() => resolveParents([{ agentId: "gone" }], living, (s) => files[s]), { code: "MIND_PARENT_UNKNOWN" });
  assert.throws(() => resolveParents([{ agentId: "loose" }], living, (s) => files[s]), { code: "MIND_PARENT_MODEL_UNKNOWN" });
  assert.throws(() => resolveParents([{ agentId: "p-add" }], living, () => undefined), { code: "MIND_PARENT_MODEL_UNKNOWN" });
  const withAdapter = life("lora", "n1", `colony:${A}`, ["add"]);
  withAdapter.spec = { ...withAdapter.spec!, adapter: `colony:${B}` };
  assert.throws(() => resolveParents([{ agentId: "lora" }], [withAdapter], (s) => files[s]), { code: "MIND_PARENT_MODEL_UNKNOWN" });
});

test("the child: the strongest parent's genome with the distilled model, the job's skills, claims from the gate; born on that parent's node when online", () => {
  const living = [life("p-add", "n1", `colony:${A}`, ["add"]), life("p-rev", "n2", `colony:${B}`, ["reverse"])];
  const ps = resolveParents([{ agentId: "p-add" }, { agentId: "p-rev" }], living, () => "/m/x.gguf");
  const g = gate({ add: { child: 0.98, parents: { "p-add": 0.99, "p-rev": 0.01 } }, reverse: { child: 0.97, parents: { "p-add": 0, "p-rev": 0.96 } } });
  const strongest = strongestParent(ps, g);
  assert.equal(strongest.life.agentId, "p-add", "0.99 + 0 beats 0.01 + 0.96 by a hair");
  const c = childGenome(strongest, { sha256: C, format: "gguf-model" }, ["add", "reverse"], g, 1);
  assert.equal(c.genome.model, `colony:${C}`);
  assert.equal(c.genome.parent, "p-add");
  assert.deepEqual(c.genome.skills, ["add", "reverse"]);
  assert.deepEqual(c.genome.accuracyPrior, { add: 0.98, reverse: 0.97 });
  assert.equal(c.variation, "distilled");
  assert.equal(c.hash, genomeHash(c.genome), "the hash is the genome's, whatever its id");
  assert.match(c.genome.id, new RegExp(`^p-add-g1-${c.hash.slice(0, 8)}$`));
  const lora = childGenome(strongest, { sha256: C, format: "gguf-lora" }, ["add"], g, 1);
  assert.equal(lora.genome.model, `colony:${A}`, "an adapter rides on its parent's base model");
  assert.equal(lora.genome.adapter, `colony:${C}`);
  assert.equal(birthNode(ps, strongest, ["n1", "n2"]), "n1");
  assert.equal(birthNode(ps, strongest, ["n2"]), "n2", "another parent's node");
  assert.equal(birthNode(ps, strongest, ["z9", "n9"]), "n9", "any online node");
  assert.equal(birthNode(ps, strongest, []), undefined);
  assert.match(gateSummary(g), /^passed the gate \(union 99\.0% vs best parent 50\.0%; add 98\.0% vs best parent 99\.0%, reverse 97\.0% vs best parent 96\.0%/);
});
