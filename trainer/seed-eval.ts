import type { Llama } from "node-llama-cpp";
import { getSkill, heldOutInstances, skillAlphabet } from "../skills/index.ts";
import { LlamaTeacher } from "./teacher.ts";
import { Tokenizer } from "./tokenizer.ts";

/** Held-out instances per skill used to score seed models, and the seed that draws them. */
export const SEED_EVAL_COUNT = 200;
export const SEED_EVAL_SEED = "seed-eval";
/** Context length of the seed models: every skill's BOS + prompt + answer + EOS fits. */
export const SEED_CONTEXT = 32;

/**
 * One vocabulary for every seed model: the characters of all skills. A shared vocabulary lets the
 * fleet distil one seed into another at the logit level (trainer/distill.ts).
 */
export function seedTokenizer(): Tokenizer {
  return Tokenizer.fromTexts([skillAlphabet().join("")]);
}

/**
 * Exact-match accuracy per skill of a GGUF model, decoded greedily by llama.cpp: the same path a
 * fleet agent runs, so a bug in our export or tokenizer shows up here, not only in production.
 */
export async function evaluateSkills(llama: Llama, modelPath: string, skills: readonly string[], opts: { threads: number; count?: number }): Promise<Record<string, number>> {
  const runner = await LlamaTeacher.open(llama, modelPath, { threads: opts.threads, contextSize: 64 });
  try {
    const out: Record<string, number> = {};
    for (const name of skills) {
      const skill = getSkill(name);
      const instances = heldOutInstances(skill, opts.count ?? SEED_EVAL_COUNT, SEED_EVAL_SEED);
      let ok = 0;
      for (const inst of instances) {
        // + 2: room for a wrong, longer answer to show up as wrong instead of being cut to size.
        const text = await runner.complete(inst.prompt, skill.maxAnswerChars + 2);
        if (skill.check(text, inst)) ok++;
      }
      out[name] = ok / instances.length;
    }
    return out;
  } finally {
    await runner.close();
  }
}
