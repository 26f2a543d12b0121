import { defineSkill, randomString } from "./define.ts";

// A five-letter alphabet makes the target letter appear 0..several times, so the answer is not
// almost always "1" (with 26 letters a tiny model could score well by guessing).
const LETTERS = "abcde";

/** Count a letter in a 4-8 letter word over a-e: "count a in abcab =" -> " 2". */
export const countSkill = defineSkill({
  name: "count",
  describe: 'count how often a letter occurs in a 4-8 letter word over a-e: "count a in abcab =" -> " 2"',
  maxAnswerChars: 2,
  alphabet: "count i=" + LETTERS + "0123456789",
  make(rng) {
    const word = randomString(rng, LETTERS, rng.int(4, 8));
    const letter = LETTERS[rng.int(0, LETTERS.length - 1)]!;
    const n = [...word].filter((c) => c === letter).length;
    return { prompt: `count ${letter} in ${word} =`, answer: String(n) };
  },
});
