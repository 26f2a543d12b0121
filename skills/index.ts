/**
 * The skill registry. Names are part of the protocol (a task's `skill` field) and of trained
 * models' metadata: never rename one; add new skills instead.
 */
import { ColonyError } from "../common/errors.ts";
import { addSkill } from "./add.ts";
import { countSkill } from "./count.ts";
import { SkillErrors } from "./errors.ts";
import { maxSkill } from "./max.ts";
import { reverseSkill } from "./reverse.ts";
import { sortSkill } from "./sort.ts";
import type { Skill } from "./types.ts";

export type { Skill, SkillInstance } from "./types.ts";
export { heldOutInstances, isHeldOut, trainingInstances, trainingText, HELD_OUT_MODULUS } from "./split.ts";

const SKILLS: readonly Skill[] = Object.freeze([addSkill, reverseSkill, sortSkill, countSkill, maxSkill]);
const BY_NAME = new Map(SKILLS.map((s) => [s.name, s]));

export function listSkills(): readonly Skill[] {
  return SKILLS;
}

export function skillNames(): string[] {
  return SKILLS.map((s) => s.name);
}

/** The skill called `name`; throws SKILL_UNKNOWN otherwise. */
export function getSkill(name: string): Skill {
  const skill = BY_NAME.get(name);
  if (!skill) throw new ColonyError(SkillErrors.SKILL_UNKNOWN, `unknown skill ${JSON.stringify(name)}; known: ${skillNames().join(", ")}`);
  return skill;
}

export function hasSkill(name: string): boolean {
  return BY_NAME.has(name);
}

/**
 * Every character that appears in any prompt or answer of the given skills (all by default),
 * sorted: the vocabulary a character-level model needs, besides its control tokens.
 */
export function skillAlphabet(skills: readonly Skill[] = SKILLS): string[] {
  const chars = new Set<string>();
  for (const s of skills) for (const c of s.alphabet) chars.add(c);
  return [...chars].sort();
}
