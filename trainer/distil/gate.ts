/**
 * The distillation gate: the child and every parent answer the same held-out instances through
 * llama.cpp, greedily, the way an agent answers (trainer/seed-eval.ts), and the child passes iff
 * (1) its accuracy over the union of skills is at least the best single parent's over the same
 * instances, and (2) on no skill does it fall more than `margin` below that skill's best parent.
 * The held-out set is never trained on: fresh generator instances from the held-out split for
 * built-in skills (skills/split.ts), a reserved slice of verified experiences for other skill keys
 * (curate.ts reservedGateSlice; curation excludes those prompts).
 */
import type { Llama } from "node-llama-cpp";
import { GateReportSchema, wilson, type GateReport } from "../../common/gate-report.ts";
import { getSkill, hasSkill, heldOutInstances } from "../../skills/index.ts";
import { LlamaTeacher } from "../teacher.ts";
import type { Experience } from "../../common/experience.ts";
import { reservedGateSlice } from "./curate.ts";

export interface GateInstance {
  prompt: string;
  check(output: string): boolean;
}

export interface GateSet {
  skill: string;
  instances: GateInstance[];
  /** Tokens to generate: room for a wrong, longer answer to show as wrong. */
  maxTokens: number;
}

export interface GateSets {
  source: "generator" | "experiences";
  sets: GateSet[];
}

/** The held-out instances of each skill (see the header). */
export function gateSets(skills: readonly string[], perSkill: number, seed: string, experiences: readonly Pick<Experience, "skill" | "prompt" | "output" | "verdict">[]): GateSets {
  const sets: GateSet[] = [];
  let allGenerated = true;
  for (const name of skills) {
    if (hasSkill(name)) {
      const skill = getSkill(name);
      const instances = heldOutInstances(skill, perSkill, seed).map((inst) => ({ prompt: inst.prompt, check: (out: string) => skill.check(out, inst) }));
      sets.push({ skill: name, instances, maxTokens: skill.maxAnswerChars + 2 });
    } else {
      allGenerated = false;
      const slice = reservedGateSlice(experiences, name, perSkill, seed);
      const longest = Math.max(0, ...slice.map((s) => s.output.length));
      sets.push({ skill: name, instances: slice.map((s) => ({ prompt: s.prompt, check: (out: string) => out.trim() === s.output.trim() })), maxTokens: Math.min(512, longest + 4) });
    }
  }
  return { source: allGenerated ? "generator" : "experiences", sets };
}

export interface GateModel {
  /** The agent id of a parent, or "child". */
  id: string;
  modelFile: string;
  /** A LoRA adapter applied on modelFile. */
  lora?: string;
}

/** Right/wrong per instance of each set, in order. */
export async function answerSets(llama: Llama, model: GateModel, sets: readonly GateSet[], opts: { threads: number; contextSize?: number; signal?: AbortSignal }): Promise<boolean[][]> {
  const runner = await LlamaTeacher.open(llama, model.modelFile, { threads: opts.threads, contextSize: opts.contextSize ?? 64, ...(model.lora !== undefined ? { lora: model.lora } : {}) });
  try {
    const out: boolean[][] = [];
    for (const set of sets) {
      const row: boolean[] = [];
      for (const inst of set.instances) {
        opts.signal?.throwIfAborted();
        row.push(inst.check(await runner.complete(inst.prompt, set.maxTokens)));
      }
      out.push(row);
    }
    return out;
  } finally {
    await runner.close();
  }
}

const count = (row: readonly boolean[]): number => row.reduce((s, b) => s + (b ? 1 : 0), 0);
/** Float slack: 0.7 - 0.01 is not exactly 0.69. */
const EPS = 1e-9;

export interface JudgeInput {
  sets: GateSets;
  perSkill: number;
  seed: string;
  margin: number;
  child: boolean[][];
  parents: ReadonlyArray<{ agentId: string; answers: boolean[][] }>;
}

/** The verdict from the answers (pure): fills every field of the GateReport. */
export function judgeGate(j: JudgeInput): GateReport {
  const reasons: string[] = [];
  const skills = j.sets.sets.map((set, s) => {
    const child = wilson(count(j.child[s]!), set.instances.length);
    const parents = j.parents.map((p) => ({ agentId: p.agentId, accuracy: wilson(count(p.answers[s]!), set.instances.length) }));
    const best = Math.max(0, ...parents.map((p) => p.accuracy.acc));
    if (set.instances.length === 0) reasons.push(`skill ${set.skill}: no held-out instances to judge it on`);
    else if (child.acc < best - j.margin - EPS) {
      reasons.push(`skill ${set.skill}: child ${(child.acc * 100).toFixed(1)}% is more than ${(j.margin * 100).toFixed(1)} points below its best parent's ${(best * 100).toFixed(1)}%`);
    }
    return { skill: set.skill, child, parents, best };
  });
  const total = j.sets.sets.reduce((s, set) => s + set.instances.length, 0);
  const unionOf = (answers: boolean[][]) => (total === 0 ? 0 : answers.reduce((s, row) => s + count(row), 0) / total);
  const child = unionOf(j.child);
  const bestParent = Math.max(0, ...j.parents.map((p) => unionOf(p.answers)));
  if (child < bestParent - EPS) reasons.push(`union of skills: child ${(child * 100).toFixed(1)}% is below the best parent's ${(bestParent * 100).toFixed(1)}%`);
  const passed = reasons.length === 0;
  if (passed) reasons.push(`child ${(child * 100).toFixed(1)}% on the union of ${skills.length} skills >= best parent ${(bestParent * 100).toFixed(1)}%, and no skill more than ${(j.margin * 100).toFixed(1)} points below its best parent`);
  return GateReportSchema.parse({
    heldOut: { source: j.sets.source, perSkill: j.perSkill, seed: j.seed },
    margin: j.margin,
    skills,
    union: { child, bestParent },
    passed,
    reasons: reasons.slice(0, 64).map((r) => r.slice(0, 512)),
  });
}

export interface GateOptions {
  child: GateModel;
  parents: readonly GateModel[];
  sets: GateSets;
  perSkill: number;
  seed: string;
  margin: number;
  threads: number;
  /** llama.cpp context; default 64 (the seed models' 32 plus room). */
  contextSize?: number;
  signal?: AbortSignal;
}

/** Evaluates the child and every parent on the held-out sets and judges the child. */
export async function runGate(llama: Llama, o: GateOptions): Promise<GateReport> {
  const run = (m: GateModel) => answerSets(llama, m, o.sets.sets, { threads: o.threads, ...(o.contextSize !== undefined ? { contextSize: o.contextSize } : {}), ...(o.signal ? { signal: o.signal } : {}) });
  const child = await run(o.child);
  const parents: Array<{ agentId: string; answers: boolean[][] }> = [];
  for (const p of o.parents) parents.push({ agentId: p.id, answers: await run(p) });
  return judgeGate({ sets: o.sets, perSkill: o.perSkill, seed: o.seed, margin: o.margin, child, parents });
}
