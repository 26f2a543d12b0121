/**
 * Builds a Skill from its generator alone: every Colony skill answers with one exact string, so
 * check/toCheck are shared and cannot drift apart.
 */
import type { Rng } from "../common/random.ts";
import type { Skill, SkillInstance } from "./types.ts";

export interface SkillSpec {
  name: string;
  describe: string;
  maxAnswerChars: number;
  alphabet: string;
  /** Returns the prompt (without trailing space) and the bare answer (without the leading space). */
  make(rng: Rng): { prompt: string; answer: string };
}

export function defineSkill(spec: SkillSpec): Skill {
  return Object.freeze({
    name: spec.name,
    describe: spec.describe,
    maxAnswerChars: spec.maxAnswerChars,
    alphabet: spec.alphabet,
    generate(rng: Rng): SkillInstance {
      const { prompt, answer } = spec.make(rng);
      return { skill: spec.name, prompt, answer: " " + answer };
    },
    check(output: string, instance: SkillInstance): boolean {
      return typeof output === "string" && output.trim() === instance.answer.trim();
    },
    toCheck(instance: SkillInstance) {
      return { type: "exact" as const, value: instance.answer.trim(), trim: true };
    },
  });
}

export const LOWER = "abcdefghijklmnopqrstuvwxyz";
export const DIGITS = "0123456789";

/** A string of `len` characters drawn uniformly from `chars`. */
export function randomString(rng: Rng, chars: string, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += chars[rng.int(0, chars.length - 1)];
  return s;
}
