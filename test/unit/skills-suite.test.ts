import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { CheckSchema, type Check } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import { getSkill, hasSkill, listSkills, skillAlphabet, skillNames, type SkillInstance } from "../../skills/index.ts";

// Answers recomputed from the prompt text alone, independently of the generators.
const ORACLES: Record<string, (prompt: string) => string> = {
  add: (p) => {
    const m = /^add (\d{1,2}) (\d{1,2}) =$/.exec(p)!;
    return String(Number(m[1]) + Number(m[2]));
  },
  reverse: (p) => {
    const m = /^reverse ([a-z]{3,6}) =$/.exec(p)!;
    let out = "";
    for (let i = m[1]!.length - 1; i >= 0; i--) out += m[1]![i];
    return out;
  },
  sort: (p) => {
    const m = /^sort (\d{3,6}) =$/.exec(p)!;
    const counts = new Array(10).fill(0);
    for (const c of m[1]!) counts[Number(c)]++;
    return counts.map((n, d) => String(d).repeat(n)).join("");
  },
  count: (p) => {
    const m = /^count ([a-e]) in ([a-e]{4,8}) =$/.exec(p)!;
    return String(m[2]!.split(m[1]!).length - 1);
  },
  max: (p) => {
    const m = /^max (\d{3,6}) =$/.exec(p)!;
    return String(Math.max(...[...m[1]!].map(Number)));
  },
};

/** What a node does with a protocol `exact` check. */
function applyCheck(check: Check, output: string): boolean {
  assert.equal(check.type, "exact");
  if (check.type !== "exact") return false;
  return (check.trim ? output.trim() : output) === check.value;
}

test("registry: at least four skills with protocol-valid unique names; unknown names are refused", () => {
  const names = skillNames();
  assert.ok(names.length >= 4);
  assert.equal(new Set(names).size, names.length);
  for (const n of names) {
    assert.match(n, /^[a-z0-9][a-z0-9_-]{0,63}$/);
    assert.equal(getSkill(n).name, n);
    assert.ok(hasSkill(n));
    assert.ok(ORACLES[n], `test oracle for ${n}`);
  }
  assert.throws(() => getSkill("nope"), (e: unknown) => e instanceof ColonyError && e.code === "SKILL_UNKNOWN");
  assert.equal(hasSkill("nope"), false);
});

test("generated answers are correct, within the skill's alphabet and answer length", () => {
  const alphabet = new Set(skillAlphabet());
  for (const skill of listSkills()) {
    const rng = new Rng(`oracle-${skill.name}`);
    const own = new Set(skill.alphabet);
    for (let i = 0; i < 2000; i++) {
      const inst = skill.generate(rng);
      assert.equal(inst.skill, skill.name);
      assert.ok(inst.answer.startsWith(" ") && inst.answer.trim() === inst.answer.slice(1), JSON.stringify(inst));
      assert.ok(!inst.prompt.endsWith(" "));
      assert.equal(inst.answer.slice(1), ORACLES[skill.name]!(inst.prompt), inst.prompt);
      assert.ok(inst.answer.length <= skill.maxAnswerChars, `${inst.answer} longer than ${skill.maxAnswerChars}`);
      for (const c of inst.prompt + inst.answer) {
        assert.ok(own.has(c), `${skill.name}: ${JSON.stringify(c)} not in its alphabet`);
        assert.ok(alphabet.has(c));
      }
    }
  }
});

function wrongAnswers(inst: SkillInstance): string[] {
  const a = inst.answer.trim();
  const bumped = a.slice(0, -1) + String.fromCharCode(a.charCodeAt(a.length - 1) === 57 || a.charCodeAt(a.length - 1) === 122 ? a.charCodeAt(a.length - 1) - 1 : a.charCodeAt(a.length - 1) + 1);
  return ["", " ", bumped, a + a.at(-1), a.slice(1), `${a} ${a}`, `${a}\n${inst.prompt}`, inst.prompt + inst.answer, a.toUpperCase() === a ? "x" + a : a.toUpperCase()];
}

test("checkers accept the right answer (any surrounding whitespace) and reject wrong ones; toCheck agrees", () => {
  for (const skill of listSkills()) {
    const rng = new Rng(`check-${skill.name}`);
    for (let i = 0; i < 300; i++) {
      const inst = skill.generate(rng);
      const check = skill.toCheck(inst);
      assert.ok(CheckSchema.safeParse(check).success, JSON.stringify(check));
      for (const good of [inst.answer, inst.answer.trim(), `${inst.answer}\n`, `\t${inst.answer.trim()}  `]) {
        assert.equal(skill.check(good, inst), true, `${skill.name}: ${JSON.stringify(good)} should pass`);
        assert.equal(applyCheck(check, good), true);
      }
      for (const bad of wrongAnswers(inst)) {
        if (bad.trim() === inst.answer.trim()) continue;
        assert.equal(skill.check(bad, inst), false, `${skill.name}: ${JSON.stringify(bad)} should fail for ${inst.prompt}`);
        assert.equal(applyCheck(check, bad), false);
      }
    }
  }
});

test("generators are deterministic by seed and vary with it", () => {
  for (const skill of listSkills()) {
    const a = Array.from({ length: 50 }, ((r) => () => skill.generate(r))(new Rng(11)));
    const b = Array.from({ length: 50 }, ((r) => () => skill.generate(r))(new Rng(11)));
    const c = Array.from({ length: 50 }, ((r) => () => skill.generate(r))(new Rng(12)));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  }
});

test("answers are not dominated by one value (a constant guess cannot reach 95%)", () => {
  for (const skill of listSkills()) {
    const rng = new Rng(5);
    const freq = new Map<string, number>();
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const a = skill.generate(rng).answer;
      freq.set(a, (freq.get(a) ?? 0) + 1);
    }
    const top = Math.max(...freq.values()) / n;
    assert.ok(top < 0.5, `${skill.name}: most common answer has ${(top * 100).toFixed(1)}%`);
  }
});
