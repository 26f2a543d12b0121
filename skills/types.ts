/**
 * A skill is a family of small tasks whose answers a machine can check, so the fleet learns each
 * agent's accuracy without a human. Skills are completion style: the model sees `prompt` and must
 * continue with `answer`, then end its output (EOS). Checkers trim surrounding whitespace and compare
 * exactly, which is also what the protocol's `{type:"exact", trim:true}` check does.
 */
import type { Check } from "../common/protocol.ts";
import type { Rng } from "../common/random.ts";

export interface SkillInstance {
  skill: string;
  /** What the model is given, e.g. "add 12 34 =". Never ends in a space. */
  prompt: string;
  /** The exact continuation, e.g. " 46": a leading space, then the answer, nothing after it. */
  answer: string;
}

export interface Skill {
  /** Matches the protocol's skill name pattern [a-z0-9_-]. */
  readonly name: string;
  /** One line for people: what the task is and an example. */
  readonly describe: string;
  /** The longest `answer` the skill produces, in characters (a maxTokens hint for char models). */
  readonly maxAnswerChars: number;
  /** Every character any prompt or answer of this skill may contain. */
  readonly alphabet: string;
  /** A uniformly random instance (train and held-out alike; see split.ts for the split). */
  generate(rng: Rng): SkillInstance;
  /** True when a model's output is the right answer (surrounding whitespace ignored). */
  check(output: string, instance: SkillInstance): boolean;
  /** The same verdict as `check`, as a protocol Check a submitter can attach to a task. */
  toCheck(instance: SkillInstance): Check;
}
