// The architect's policy is a pure function of history (coordinator/architect/policy.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { GenomeSchema } from "../../common/genome.ts";
import { EvolutionSettingsSchema } from "../../coordinator/architect/settings.ts";
import { plan, type AgentView, type History, type NodeView, type PolicyState } from "../../coordinator/architect/policy.ts";

const HOUR = 3600_000;
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const settings = EvolutionSettingsSchema.parse({ minTrials: 10 });
const kindsOn = { spawn: true, retire: true, wake: true, distil: false };

function agent(agentId: string, skills: string[], fit: Record<string, [success: number, trials: number, energy?: number]>, extra: Partial<AgentView> = {}): AgentView {
  return {
    agentId, nodeId: "n1", deviceClass: "pi5", state: "alive", activity: "asleep", skills, generation: 0, bornAt: T0 - 48 * HOUR, lastWinAt: T0 - 60_000,
    spec: GenomeSchema.parse({ id: agentId, model: `${agentId}.gguf`, skills }),
    fitness: Object.entries(fit).map(([skill, [success, trials, energy]]) => ({ skill, success, trials, wins: 1, ...(energy !== undefined ? { energyPerSuccessJ: energy } : {}) })),
    ...extra,
  };
}
const node = (nodeId: string, deviceClass: string, agents = 1, models: string[] = []): NodeView => ({ nodeId, deviceClass, online: true, agents, models });
const fresh = (): PolicyState => ({ cycle: 0, dominatedSince: {}, recent: [], refusals: [] });

function history(agents: AgentView[], over: Partial<History> = {}, cfg: Partial<History["config"]> = {}): History {
  return {
    now: T0, seed: 1, agents, nodes: [node("n1", "pi5", agents.length), node("n2", "laptop", 0)], demand: [],
    material: () => ({}), config: { ...settings, kinds: kindsOn, ...cfg }, state: fresh(), ...over,
  };
}

test("policy: an always-beaten agent retires once it has been dominated for a window, with the reason", () => {
  const agents = [agent("good", ["add"], { add: [0.95, 50, 1.0] }), agent("weak", ["add"], { add: [0.55, 40, 1.2] })];
  const first = plan(history(agents));
  assert.deepEqual(first.decisions, [], "dominated only now: it must stay so for a window");
  assert.equal(first.state.dominatedSince["n1/weak"], T0);
  const later = plan(history(agents, { now: T0 + HOUR, state: first.state }));
  assert.equal(later.decisions.length, 1);
  const d = later.decisions[0]!;
  assert.equal(d.kind, "retire");
  assert.equal(d.agentId, "weak");
  assert.match(d.reason, /dominated .* add@pi5 by good \(95% vs 55%, 1\.00 J vs 1\.20 J per success\)/);
  // Better at no more energy is required: a cheaper weak agent is not dominated.
  const cheap = [agents[0]!, agent("weak", ["add"], { add: [0.55, 40, 0.2] })];
  assert.deepEqual(plan(history(cheap, { now: T0 + HOUR, state: first.state })).decisions, []);
  // Another device class is another niche: a laptop agent does not dominate a Pi agent.
  const other = [{ ...agents[0]!, deviceClass: "laptop" }, agents[1]!];
  assert.deepEqual(plan(history(other, { now: T0 + HOUR, state: first.state })).decisions, []);
});

test("policy: the last agent of a skill never retires; an idle agent that is best at nothing does", () => {
  const lone = agent("rev", ["reverse"], {}, { lastWinAt: T0 - 30 * HOUR });
  const p = plan(history([lone, agent("good", ["add"], { add: [0.9, 50] })]));
  assert.deepEqual(p.decisions, []);
  assert.equal(p.heldBack.length, 1);
  assert.match(p.heldBack[0]!.why, /niche protection: the last agent for skill reverse/);
  const twin = agent("rev2", ["reverse"], { reverse: [0.9, 30] });
  const q = plan(history([lone, twin]));
  assert.equal(q.decisions[0]?.kind, "retire");
  assert.equal(q.decisions[0]?.agentId, "rev");
  assert.match(q.decisions[0]!.reason, /won nothing for 30.0 h/);
  // Rarely needed but the best at what it does: it stays (asleep).
  const bestButIdle = agent("rev3", ["reverse"], { reverse: [0.99, 30] }, { lastWinAt: T0 - 30 * HOUR });
  assert.deepEqual(plan(history([bestButIdle, twin])).decisions, []);
});

test("policy: demand calls for a child of the best agent, on a node that adds a device class; one young child per skill", () => {
  const parent = agent("seed-add", ["add"], { add: [0.95, 200, 0.5] });
  const h = history([parent], { demand: [{ skill: "add", current: 120, previous: 100, hourly: [] }] });
  const p = plan(h);
  assert.equal(p.decisions.length, 1);
  const d = p.decisions[0]!;
  assert.equal(d.kind, "spawn");
  assert.equal(d.nodeId, "n2");
  assert.deepEqual(d.parents, ["seed-add"]);
  assert.equal(d.variation, "sampling");
  assert.equal(d.child?.genome.parent, "seed-add");
  assert.match(d.reason, /demand for add is 120 tasks .* over 1 agent\(s\); child of seed-add \(95% over 200 trials\) by sampling, on n2, which adds device class laptop/);
  assert.deepEqual(plan(h), p, "deterministic: same history, same plan");
  // The child exists now and has not earned a record: no second child yet.
  const child = agent(d.agentId, ["add"], {}, { generation: 1, bornAt: T0, nodeId: "n2", deviceClass: "laptop" });
  assert.deepEqual(plan(history([parent, child], { demand: h.demand, now: T0 + 60_000 })).decisions, []);
  // A weak parent does not reproduce; low demand calls for nothing.
  assert.deepEqual(plan(history([agent("w", ["add"], { add: [0.5, 200] })], { demand: h.demand })).decisions, []);
  assert.deepEqual(plan(history([parent], { demand: [{ skill: "add", current: 10, previous: 10, hourly: [] }] })).decisions, []);
});

test("policy: budgets, switches, refusals and the fleet limit hold decisions back with why", () => {
  const a = agent("seed-add", ["add"], { add: [0.95, 200] });
  const r = agent("seed-rev", ["reverse"], { reverse: [0.95, 200] });
  const demand = [{ skill: "add", current: 200, previous: 100, hourly: [] }, { skill: "reverse", current: 100, previous: 100, hourly: [] }];
  const p = plan(history([a, r], { demand }, { spawnsPerHour: 1 }));
  assert.deepEqual(p.decisions.map((d) => d.parents), [["seed-add"]], "the busiest skill first");
  assert.match(p.heldBack[0]!.why, /budget: 1 spawn decisions per hour/);
  const off = plan(history([a], { demand }, { kinds: { ...kindsOn, spawn: false } }));
  assert.equal(off.decisions.length, 0);
  assert.match(off.heldBack[0]!.why, /spawn is turned off/);
  const full = plan(history([a], { demand }, { fleetMaxAgents: 1 }));
  assert.match(full.heldBack[0]!.why, /fleet at its limit of 1 agents/);
  const refused = { ...fresh(), refusals: [{ nodeId: "n2", parent: "seed-add", at: T0 - 1000, code: "MEMORY_BUDGET" }] };
  assert.equal(plan(history([a], { demand: [demand[0]!], state: refused })).decisions[0]?.nodeId, "n1", "retried elsewhere after a refusal");
});

test("policy: keep-warm wakes the best asleep agent before the hour its skill is busy", () => {
  const hourly = new Array<number>(24).fill(2);
  hourly[13] = 100; // T0 is 12:00 UTC: the coming hour is 13:00
  const a = agent("seed-add", ["add"], { add: [0.95, 200] });
  const p = plan(history([a], { demand: [{ skill: "add", current: 5, previous: 5, hourly }] }));
  assert.equal(p.decisions[0]?.kind, "wake");
  assert.equal(p.decisions[0]?.holdMs, HOUR);
  assert.match(p.decisions[0]!.reason, /coming hour \(13:00 UTC\)/);
  assert.deepEqual(plan(history([{ ...a, activity: "awake" }], { demand: [{ skill: "add", current: 5, previous: 5, hourly }] })).decisions, [], "already awake");
});
