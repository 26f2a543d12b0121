import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { getSkill, heldOutInstances, isHeldOut, listSkills, trainingInstances, trainingText } from "../../skills/index.ts";

test("training and held-out instances are disjoint, deterministic and seed-dependent", () => {
  for (const skill of listSkills()) {
    const train = trainingInstances(skill, 3000, 1);
    const held = heldOutInstances(skill, 200, 1);
    assert.equal(train.length, 3000);
    assert.equal(held.length, 200);
    assert.ok(train.every((i) => !isHeldOut(i)));
    assert.ok(held.every((i) => isHeldOut(i)));
    const trainPrompts = new Set(train.map((i) => i.prompt));
    // Other seeds for training must not reach the held-out set either.
    for (const i of trainingInstances(skill, 3000, "other")) trainPrompts.add(i.prompt);
    assert.equal(held.filter((i) => trainPrompts.has(i.prompt)).length, 0, `${skill.name}: overlap`);
    assert.equal(new Set(held.map((i) => i.prompt)).size, held.length, "held-out instances are distinct");
    assert.deepEqual(trainingInstances(skill, 100, 1), train.slice(0, 100));
    assert.deepEqual(heldOutInstances(skill, 200, 1), held);
    assert.notDeepEqual(heldOutInstances(skill, 200, 2), held);
    assert.equal(trainingText(train[0]!), train[0]!.prompt + train[0]!.answer);
  }
});

test("about a tenth of the instance space is held out", () => {
  const add = getSkill("add");
  let held = 0;
  for (let a = 0; a <= 99; a++) for (let b = 0; b <= 99; b++) if (isHeldOut({ skill: "add", prompt: `add ${a} ${b} =` })) held++;
  assert.ok(held > 850 && held < 1150, `held-out add instances: ${held}`);
  // The whole held-out split of add can be drawn, and one more cannot.
  assert.equal(heldOutInstances(add, held, 3).length, held);
  assert.throws(() => heldOutInstances(add, held + 1, 3), (e: unknown) => e instanceof ColonyError && e.code === "SKILL_SPLIT_EXHAUSTED");
});

test("bad counts and seeds are refused", () => {
  const add = getSkill("add");
  for (const n of [-1, 1.5, NaN]) {
    assert.throws(() => trainingInstances(add, n, 1), (e: unknown) => e instanceof ColonyError && e.code === "SKILL_ARGUMENT_INVALID");
    assert.throws(() => heldOutInstances(add, n, 1), (e: unknown) => e instanceof ColonyError && e.code === "SKILL_ARGUMENT_INVALID");
  }
  assert.throws(() => trainingInstances(add, 1, Infinity), (e: unknown) => e instanceof ColonyError && e.code === "SKILL_ARGUMENT_INVALID");
  assert.deepEqual(trainingInstances(add, 0, 1), []);
});
