import { defineErrors } from "../common/errors.ts";

export const SkillErrors = defineErrors("skills", {
  SKILL_UNKNOWN: "No skill with that name is registered (see docs/skills.md for the list).",
  SKILL_ARGUMENT_INVALID: "A skill helper got a bad argument (a negative or non-integer count, a bad seed).",
  SKILL_SPLIT_EXHAUSTED: "More distinct held-out instances were asked for than the skill's held-out split holds.",
});
