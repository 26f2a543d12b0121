// The ecosystem benchmark's baselines are exact expectations over one agent x task matrix
// (bench/_ecosystem-baselines.ts): a wrong index or weight would silently move every figure it reports.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as B from "../../bench/_ecosystem-baselines.ts";

// Three agents, four tasks (two add, two rev). a: add specialist (cheap), b: rev specialist (dear), c: right on nothing.
const m: B.Matrix = {
  agents: ["n1/a", "n2/b", "n3/c"],
  tasks: ["add", "add", "rev", "rev"],
  ok: [
    [true, true, false, false],
    [false, true, true, true],
    [false, false, false, false],
  ],
  seconds: [
    [1, 1, 1, 1],
    [2, 2, 2, 2],
    [1, 1, 1, 1],
  ],
  joules: [
    [1, 1, 1, 1],
    [4, 4, 4, 4],
    [2, 2, 2, 2],
  ],
};
const skills = [["add"], ["rev"], ["add", "rev"]];

test("ecosystem baselines: random is the expectation over the agents declaring the task's skill", () => {
  const f = B.figures(m, B.randomRouting(m, skills), 1);
  // add tasks: a or c (1/2 each): 1/2, 1/2; rev tasks: b or c: 1/2, 1/2.
  assert.equal(f.accuracy, 0.5);
  assert.equal(f.joulesPerTask, (1.5 + 1.5 + 3 + 3) / 4);
  assert.deepEqual(f.perSkill.add, { accuracy: 0.5, joulesPerTask: 1.5, secondsPerTask: 1 });
});

test("ecosystem baselines: round-robin takes each skill's declaring agents in turn", () => {
  const r = B.roundRobinRouting(m, skills);
  assert.deepEqual(r, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]);
  assert.equal(B.figures(m, r, 1).accuracy, 0.5, "a right, c wrong, b right, c wrong");
});

test("ecosystem baselines: best single in hindsight, fixed roles, oracle, gap closed", () => {
  assert.equal(B.bestSingle(m), 1, "b is right on 3 of 4");
  assert.equal(B.figures(m, B.singleRouting(m, 1), 1).accuracy, 0.75);
  const roles = B.figures(m, B.fixedRoleRouting(m, skills, { add: "n3/c", rev: "n2/b" }), 1);
  assert.equal(roles.accuracy, 0.5);
  const oracle = B.oracleRouting(m);
  // Task 1: a and b are right, a is cheaper; a task nobody gets right goes to the cheapest agent.
  assert.deepEqual(oracle[1], [1, 0, 0]);
  const of = B.figures(m, oracle, 1);
  assert.equal(of.accuracy, 1);
  assert.equal(of.accuracyPerKJ, (1 / ((1 + 1 + 4 + 4) / 4)) * 1000);
  assert.equal(B.gapClosed(0.875, 0.75, 1), 0.5);
  assert.equal(B.gapClosed(0.9, 0.75, 0.75), undefined);
});

test("ecosystem baselines: the market's routing follows its win shares per key; an unseen key falls back", () => {
  const shares = new Map([["add", new Map([["n1/a", 3], ["n3/c", 1]])]]);
  const fallback = B.randomRouting(m, skills);
  const r = B.shareRouting(m, (j) => m.tasks[j]!, shares, fallback);
  assert.deepEqual(r[0], [0.75, 0, 0.25]);
  assert.deepEqual(r[2], fallback[2]);
});

test("ecosystem baselines: calibration of perfect and wrong estimates; the bootstrap interval holds the mean and is seeded", () => {
  const r = B.singleRouting(m, 0);
  const truth = m.tasks.map((_, j) => [Number(m.ok[0]![j]), 0, 0]);
  assert.deepEqual(B.calibration(m, r, truth), { brier: 0, ece: 0 });
  const half = m.tasks.map(() => [0.5, 0.5, 0.5]);
  const c = B.calibration(m, r, half);
  assert.equal(c.brier, 0.25);
  assert.equal(c.ece, 0);
  const f = B.figures(m, B.randomRouting(m, skills), 7);
  assert.ok(f.ci[0] <= f.accuracy && f.accuracy <= f.ci[1]);
  assert.deepEqual(B.figures(m, B.randomRouting(m, skills), 7).ci, f.ci);
  assert.equal(B.agentSkillAccuracy(m, "n2/b", "add"), 0.5);
  assert.equal(B.agentSkillAccuracy(m, "n9/z", "add"), undefined);
});

test("ecosystem baselines: a sub-matrix keeps the named rows in the given order and drops unknown ones", () => {
  const s = B.subMatrix(m, ["n3/c", "n9/z", "n1/a"]);
  assert.deepEqual(s.agents, ["n3/c", "n1/a"]);
  assert.deepEqual(s.ok, [m.ok[2], m.ok[0]]);
  assert.deepEqual(s.joules, [m.joules[2], m.joules[0]]);
  assert.equal(B.bestSingle(s), 1);
});
