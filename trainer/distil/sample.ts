/**
 * Verified sampling (self-improvement): each parent draws several candidates per prompt at a
 * temperature above 0, and the candidates a machine check accepts become training pairs. A parent
 * that is right 30% of the time greedily is often right in 1 of 4 samples, so the child can learn
 * answers no parent gives greedily: how a child gets better than every parent (rejection sampling,
 * as in STaR / ReST). Prompts are fresh generator instances from the training split, drawn with a
 * seed of their own: never a gate (held-out) instance.
 */
import type { Llama } from "node-llama-cpp";
import { hashString32 } from "../../common/random.ts";
import { getSkill, trainingInstances } from "../../skills/index.ts";
import { LlamaTeacher } from "../teacher.ts";
import type { Candidate } from "./curate.ts";

export interface SampleParent {
  agentId: string;
  modelFile: string;
  /** Skills it samples. */
  skills: readonly string[];
}

export interface SampleOptions {
  parents: readonly SampleParent[];
  /** Built-in skills (those with a generator and a check). */
  skills: readonly string[];
  candidates: number;
  temperature: number;
  prompts: number;
  seed: number;
  threads: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface SampleStats {
  /** Per skill: prompts tried, candidates drawn, prompts with at least one verified candidate. */
  bySkill: Record<string, { prompts: number; drawn: number; verified: number }>;
}

/** Verified candidates (at most one per parent and prompt: further right answers say the same thing). */
export async function verifiedSamples(llama: Llama, o: SampleOptions): Promise<{ candidates: Candidate[]; stats: SampleStats }> {
  const out: Candidate[] = [];
  const stats: SampleStats = { bySkill: {} };
  const work = o.skills.map((name) => ({ skill: getSkill(name), instances: trainingInstances(getSkill(name), o.prompts, `distil-sample:${o.seed}`) }));
  const total = o.parents.reduce((s, p) => s + work.filter((w) => p.skills.includes(w.skill.name)).length * o.prompts, 0);
  let done = 0;
  for (const parent of o.parents) {
    const runner = await LlamaTeacher.open(llama, parent.modelFile, { threads: o.threads, contextSize: 64 });
    try {
      for (const { skill, instances } of work) {
        if (!parent.skills.includes(skill.name)) continue;
        const st = (stats.bySkill[skill.name] ??= { prompts: 0, drawn: 0, verified: 0 });
        for (let i = 0; i < instances.length; i++) {
          o.signal?.throwIfAborted();
          const inst = instances[i]!;
          st.prompts++;
          for (let k = 0; k < o.candidates; k++) {
            const seed = hashString32(`${o.seed}:${parent.agentId}:${skill.name}:${i}:${k}`);
            const text = await runner.sample(inst.prompt, skill.maxAnswerChars + 2, { temperature: o.temperature, seed });
            st.drawn++;
            if (skill.check(text, inst)) {
              // The instance's canonical answer: the check ignores surrounding whitespace, training should not.
              out.push({ prompt: inst.prompt, completion: inst.answer, skill: skill.name, verified: true, agentId: parent.agentId, at: 0 });
              st.verified++;
              break;
            }
          }
          o.onProgress?.(++done, total);
        }
      }
    } finally {
      await runner.close();
    }
  }
  return { candidates: out, stats };
}
