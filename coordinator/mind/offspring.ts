/**
 * Pure pieces of a distillation job's life on the coordinator (mind.ts runs them): which file holds
 * a parent's model, what genome the distilled child gets, on which node it is born, and the reason
 * its lineage records. Kept apart from the job runner so they are unit-tested without processes.
 */
import { ColonyError } from "../../common/errors.ts";
import { genomeHash, type Genome } from "../../common/genome.ts";
import type { GateReport } from "../../common/gate-report.ts";
import type { LifeRecord } from "../evolution/lineage.ts";
import { childId, type Child } from "../evolution/variation.ts";
import { MindErrors } from "./errors.ts";

const HEX64 = /^[0-9a-f]{64}$/;

/** The content hash a model reference names: `colony:<sha256>` or a `#sha256=<hex>` pin; undefined otherwise. */
export function modelShaOf(ref: string): string | undefined {
  if (ref.startsWith("colony:")) {
    const h = ref.slice("colony:".length).toLowerCase();
    return HEX64.test(h) ? h : undefined;
  }
  const at = ref.lastIndexOf("#sha256=");
  if (at < 0) return undefined;
  const h = ref.slice(at + "#sha256=".length).toLowerCase();
  return HEX64.test(h) ? h : undefined;
}

export interface ResolvedParent {
  life: LifeRecord;
  spec: Genome;
  modelSha: string;
  modelFile: string;
}

/**
 * Finds each named parent among the living agents and the file of its model in the coordinator's
 * store. `nodeId` disambiguates agents of the same id on two nodes.
 */
export function resolveParents(
  wanted: readonly { agentId: string; nodeId?: string | undefined }[],
  living: readonly LifeRecord[],
  modelFile: (sha256: string) => string | undefined,
): ResolvedParent[] {
  return wanted.map((w) => {
    const found = living.filter((l) => l.agentId === w.agentId && (w.nodeId === undefined || l.nodeId === w.nodeId) && l.state === "alive");
    if (found.length !== 1) {
      const why = found.length === 0 ? "is not a living agent the coordinator knows" : `is hosted by ${found.length} nodes (${found.map((l) => l.nodeId).join(", ")}): name its node`;
      throw new ColonyError(MindErrors.MIND_PARENT_UNKNOWN, `parent ${w.nodeId ? `${w.nodeId}/` : ""}${w.agentId} ${why}`);
    }
    const life = found[0]!;
    const spec = life.spec;
    if (!spec) throw new ColonyError(MindErrors.MIND_PARENT_UNKNOWN, `parent ${life.nodeId}/${life.agentId} has not reported its genome`);
    if (spec.adapter) throw new ColonyError(MindErrors.MIND_PARENT_MODEL_UNKNOWN, `parent ${life.agentId} runs a LoRA adapter; distilling from adapter agents is not supported (use its base model's agent)`);
    const sha = modelShaOf(spec.model);
    const file = sha ? modelFile(sha) : undefined;
    if (!sha || !file) {
      throw new ColonyError(MindErrors.MIND_PARENT_MODEL_UNKNOWN, `the coordinator holds no copy of parent ${life.agentId}'s model ${JSON.stringify(spec.model)}: pin it (#sha256=) and add it to the model store (colony models add)`);
    }
    return { life, spec, modelSha: sha, modelFile: file };
  });
}

/** The parent whose accuracy over the gate's union of skills is highest (ties: the first named). */
export function strongestParent(parents: readonly ResolvedParent[], gate: GateReport): ResolvedParent {
  const score = (p: ResolvedParent) => gate.skills.reduce((s, k) => s + (k.parents.find((x) => x.agentId === p.life.agentId)?.accuracy.acc ?? 0), 0);
  return parents.reduce((best, p) => (score(p) > score(best) ? p : best), parents[0]!);
}

/**
 * The child's genome: the strongest parent's (prompt, sampling, context), with the distilled model
 * (`colony:<sha>`, which nodes fetch and verify) or, for an adapter, the parent's base model plus the
 * adapter, serving the job's skills, claiming per skill what it measured on the gate's held-out set.
 */
export function childGenome(parent: ResolvedParent, model: { sha256: string; format: "gguf-model" | "gguf-lora" }, skills: readonly string[], gate: GateReport, generation: number): Child {
  const claims = Object.fromEntries(gate.skills.filter((k) => skills.includes(k.skill)).map((k) => [k.skill, Math.round(k.child.acc * 1000) / 1000]));
  const { id: _id, parent: _parent, adapter: _adapter, ...rest } = parent.spec;
  const draft: Genome = {
    ...rest,
    id: parent.spec.id,
    parent: parent.spec.id,
    ...(model.format === "gguf-lora" ? { model: parent.spec.model, adapter: `colony:${model.sha256}` } : { model: `colony:${model.sha256}` }),
    skills: [...skills],
    accuracyPrior: claims,
  };
  const hash = genomeHash(draft);
  const genome: Genome = { ...draft, id: childId(parent.spec, generation, hash) };
  return { genome, hash, variation: "distilled" };
}

/** Where the child is born: the strongest parent's node when online, else another parent's, else any online node. */
export function birthNode(parents: readonly ResolvedParent[], strongest: ResolvedParent, online: readonly string[]): string | undefined {
  if (online.includes(strongest.life.nodeId)) return strongest.life.nodeId;
  return parents.map((p) => p.life.nodeId).find((n) => online.includes(n)) ?? [...online].sort()[0];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The gate's verdict in a line, for the lineage and the jobs topic. */
export function gateSummary(gate: GateReport): string {
  const per = gate.skills.map((k) => `${k.skill} ${pct(k.child.acc)} vs best parent ${pct(k.best)}`).join(", ");
  return `${gate.passed ? "passed" : "failed"} the gate (union ${pct(gate.union.child)} vs best parent ${pct(gate.union.bestParent)}; ${per}; margin ${pct(gate.margin)}, ${gate.heldOut.perSkill} held-out per skill)`;
}
