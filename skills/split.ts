/**
 * Deterministic train / held-out split. An instance is held out when a stable hash of its skill
 * and prompt is 0 mod 10 (~10% of the instance space), so the split does not depend on seeds, on
 * how many instances were drawn, or on the order: a training set drawn with any seed never contains
 * an evaluation instance. The hash is FNV-1a (common/random.ts), fixed forever: changing it would
 * leak evaluation data into models already trained.
 */
import { ColonyError } from "../common/errors.ts";
import { hashString32, Rng, type Seed } from "../common/random.ts";
import { SkillErrors } from "./errors.ts";
import type { Skill, SkillInstance } from "./types.ts";

export const HELD_OUT_MODULUS = 10;

export function isHeldOut(instance: Pick<SkillInstance, "skill" | "prompt">): boolean {
  return hashString32(`${instance.skill}\u0000${instance.prompt}`) % HELD_OUT_MODULUS === 0;
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new ColonyError(SkillErrors.SKILL_ARGUMENT_INVALID, `instance count must be a non-negative integer, got ${n}`);
}

function makeRng(seed: Seed, salt: string): Rng {
  if (typeof seed === "number" && !Number.isFinite(seed)) throw new ColonyError(SkillErrors.SKILL_ARGUMENT_INVALID, `seed must be finite, got ${seed}`);
  // Salting by split keeps a training stream and a held-out stream with the same seed unrelated.
  return new Rng(`${salt}:${String(seed)}`);
}

/**
 * `n` training instances (drawn with replacement, so duplicates happen on small skills), never
 * held-out ones. Same skill, n and seed -> same list.
 */
export function trainingInstances(skill: Skill, n: number, seed: Seed): SkillInstance[] {
  checkCount(n);
  const rng = makeRng(seed, `train:${skill.name}`);
  const out: SkillInstance[] = [];
  while (out.length < n) {
    const inst = skill.generate(rng);
    if (!isHeldOut(inst)) out.push(inst);
  }
  return out;
}

/**
 * `n` distinct held-out instances, for evaluation. Same skill, n and seed -> same list. Throws
 * SKILL_SPLIT_EXHAUSTED when the held-out split seems to hold fewer than n distinct instances.
 */
export function heldOutInstances(skill: Skill, n: number, seed: Seed): SkillInstance[] {
  checkCount(n);
  const rng = makeRng(seed, `heldout:${skill.name}`);
  const seen = new Set<string>();
  const out: SkillInstance[] = [];
  // ~10% of draws are held out; allow generous slack for repeats before giving up.
  const maxDraws = 2000 + 200 * n;
  for (let draws = 0; out.length < n; draws++) {
    if (draws >= maxDraws) {
      throw new ColonyError(SkillErrors.SKILL_SPLIT_EXHAUSTED, `skill ${skill.name}: found only ${out.length} of ${n} distinct held-out instances`);
    }
    const inst = skill.generate(rng);
    if (isHeldOut(inst) && !seen.has(inst.prompt)) {
      seen.add(inst.prompt);
      out.push(inst);
    }
  }
  return out;
}

/** The text a completion model is trained on: prompt then answer (the trainer appends EOS). */
export function trainingText(instance: SkillInstance): string {
  return instance.prompt + instance.answer;
}
