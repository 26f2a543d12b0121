import { defineSkill, DIGITS } from "./define.ts";

/** Two-number addition: "add 12 34 =" -> " 46". 10,000 distinct instances. */
export const addSkill = defineSkill({
  name: "add",
  describe: 'add two integers 0..99: "add 12 34 =" -> " 46"',
  maxAnswerChars: 4, // " 198"
  alphabet: "ad =" + DIGITS,
  make(rng) {
    const a = rng.int(0, 99);
    const b = rng.int(0, 99);
    return { prompt: `add ${a} ${b} =`, answer: String(a + b) };
  },
});
