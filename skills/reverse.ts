import { defineSkill, LOWER, randomString } from "./define.ts";

/** Reverse a random 3-6 letter lowercase word: "reverse abcd =" -> " dcba". */
export const reverseSkill = defineSkill({
  name: "reverse",
  describe: 'reverse a 3-6 letter lowercase word: "reverse abcd =" -> " dcba"',
  maxAnswerChars: 7,
  alphabet: "revs =" + LOWER,
  make(rng) {
    const word = randomString(rng, LOWER, rng.int(3, 6));
    return { prompt: `reverse ${word} =`, answer: [...word].reverse().join("") };
  },
});
