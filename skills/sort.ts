import { defineSkill, DIGITS, randomString } from "./define.ts";

/** Sort 3-6 digits ascending: "sort 5193 =" -> " 1359". */
export const sortSkill = defineSkill({
  name: "sort",
  describe: 'sort 3-6 digits ascending: "sort 5193 =" -> " 1359"',
  maxAnswerChars: 7,
  alphabet: "sort =" + DIGITS,
  make(rng) {
    const digits = randomString(rng, DIGITS, rng.int(3, 6));
    return { prompt: `sort ${digits} =`, answer: [...digits].sort().join("") };
  },
});
