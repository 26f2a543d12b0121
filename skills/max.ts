import { defineSkill, DIGITS, randomString } from "./define.ts";

/** The largest of 3-6 digits: "max 4172 =" -> " 7". */
export const maxSkill = defineSkill({
  name: "max",
  describe: 'the largest of 3-6 digits: "max 4172 =" -> " 7"',
  maxAnswerChars: 2,
  alphabet: "max =" + DIGITS,
  make(rng) {
    const digits = randomString(rng, DIGITS, rng.int(3, 6));
    return { prompt: `max ${digits} =`, answer: [...digits].sort().at(-1)! };
  },
});
