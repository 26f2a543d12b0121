// A shrunken run of the evolution bench's simulation (bench/_evolution-sim.ts, docs/evolution-bench.md):
// the real policy, fitness book, track records and bid scoring over a seeded fleet on a fake clock.
// It checks the qualitative properties the bench documents, with tight budgets so that they bind and
// a skill nobody asks for (count) so that niche protection has something to protect.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SKILLS, type Phase, type Skill } from "../../bench/_evolution-fleet.ts";
import { FOLLOW_WITHIN_WINDOWS, simulate } from "../../bench/_evolution-sim.ts";

const HOUR = 3600_000;
// 60% of the tasks for one skill, none for count, the rest shared.
const mostly = (skill: Skill): Phase => ({ name: `mostly ${skill}`, mix: Object.fromEntries(SKILLS.map((s) => [s, s === skill ? 0.6 : s === "count" ? 0 : 0.4 / 3])) as Record<Skill, number> });
const phases = [mostly("add"), mostly("reverse"), mostly("sort")];
const settings = { idleRetireMs: 2 * HOUR, spawnsPerHour: 1, retiresPerHour: 1 };

test("evolution sim: the fleet follows each shift within the documented windows, inside its budgets, never losing a skill", async () => {
  let bound = 0;
  for (const seed of [1, 2, 3]) {
    const r = await simulate({ seed, phases, windowsPerPhase: 4, settings });
    for (const s of r.shifts) {
      assert.ok(s.followedAfter !== null && s.followedAfter <= FOLLOW_WITHIN_WINDOWS, `seed ${seed}, ${s.phase}: a ${s.skill} child after ${s.followedAfter} windows (bound ${FOLLOW_WITHIN_WINDOWS})`);
    }
    assert.ok(r.budgets.maxSpawnsInAnHour <= 1 && r.budgets.maxRetiresInAnHour <= 1, `seed ${seed}: ${JSON.stringify(r.budgets)}`);
    const held = r.windows.flatMap((w) => w.heldBackWhy);
    bound += held.filter((w) => /budget: 1 (spawn|retire) decisions per hour/.test(w)).length;
    assert.deepEqual(r.lastAgentLost, [], `seed ${seed}: a skill lost its last agent`);
    // count has no demand: its founder idles, is due for retirement, and is kept as the last of its skill.
    assert.ok(held.some((w) => /niche protection: the last agent for skill count/.test(w)), `seed ${seed}: niche protection never held a retirement back`);
    assert.equal(r.windows.at(-1)!.agentsPerSkill.count, 1);
  }
  assert.ok(bound > 0, "the budgets never bound on any seed, so they were not tested");
});

test("evolution sim: the same seed gives the same run; without the architect the fleet never changes", async () => {
  const a = await simulate({ seed: 4, phases, windowsPerPhase: 2, settings });
  const b = await simulate({ seed: 4, phases, windowsPerPhase: 2, settings });
  assert.deepEqual(a, b);
  assert.ok(a.decisions.length > 0);
  const frozen = await simulate({ seed: 4, phases, windowsPerPhase: 2, settings, architect: false });
  assert.deepEqual(frozen.decisions, []);
  assert.ok(frozen.windows.every((w) => w.population === 4));
});
