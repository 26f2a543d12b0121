/**
 * Does the architect follow a shift in demand, inside its budgets, without losing a skill; and does
 * a decision cycle stay cheap at 1,000 agents and 1,000,000 experiences? (docs/evolution-bench.md)
 *
 * A deterministic simulation (fake clock, seeded) of six nodes (Pi 4, Pi 5, Orin Nano, laptop) and
 * the seed specialists, under the REAL policy, fitness book, track records and bid scoring, without
 * MQTT or llama.cpp: it measures the policy's dynamics, not the transport (bench/_evolution-sim.ts
 * says exactly what is real and what is modelled). Task mix: mostly add, then mostly reverse, then
 * mostly sort. Side by side on the same task stream: the architect as configured, a frozen fleet
 * (no architect), the same with an untrusted submitter (its verdicts capped by reputation.ts), and
 * the architect at the default cadence (every 60 s instead of once per window).
 * The headline run is repeated over --sweep seeds (the worst case counts). Then the scale figure
 * (bench/_evolution-scale.ts).
 *
 *   npm run bench -- evolution [--windows 8] [--tasks 240] [--seed 1] [--sweep 10]
 *                              [--experiences 1000000] [--agents 1000] [--cycles 9] [--verbose]
 *
 * --windows: windows per phase (3 phases); --tasks: tasks per window. Last line: one-line JSON.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { CHILD_DELTA, SKILLS } from "./_evolution-fleet.ts";
import { scaleCycle } from "./_evolution-scale.ts";
import { FOLLOW_WITHIN_WINDOWS, SIM_SETTINGS, simulate, type SimResult } from "./_evolution-sim.ts";

const { values } = parseArgs({
  options: {
    windows: { type: "string", default: "8" },
    tasks: { type: "string", default: "240" },
    seed: { type: "string", default: "1" },
    sweep: { type: "string", default: "10" },
    experiences: { type: "string", default: "1000000" },
    agents: { type: "string", default: "1000" },
    cycles: { type: "string", default: "9" },
    verbose: { type: "boolean", default: false },
  },
});
const n = (k: "windows" | "tasks" | "seed" | "sweep" | "experiences" | "agents" | "cycles") => Number(values[k]);
const base = { seed: n("seed"), windowsPerPhase: n("windows"), tasksPerWindow: n("tasks") };
const r2 = (x: number) => +x.toFixed(2);
const r3 = (x: number) => +x.toFixed(3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const sim = await simulate(base);
const c = sim.settings;
console.log(`settings: windowMs ${c.windowMs / 60_000} min, architect every ${c.intervalMs / 60_000} min, minTrials ${c.minTrials}, spawnDemandPerAgent ${c.spawnDemandPerAgent}, spawnMinSuccess ${c.spawnMinSuccess}, margin ${c.margin}, dominatedWindows ${c.dominatedWindows}, idleRetireMs ${c.idleRetireMs / 3600_000} h, spawns/retires per hour ${c.spawnsPerHour}/${c.retiresPerHour}, fleetMaxAgents ${c.fleetMaxAgents}, maxChildrenPerParent ${c.maxChildrenPerParent}, operators ${c.operators.join(",")}`);
console.log(`fleet: 6 nodes (2 Pi 4, 2 Pi 5, Orin Nano, laptop), 4 founders; ${base.tasksPerWindow} tasks per window, ${base.windowsPerPhase} windows per phase; child accuracy = parent + N(${CHILD_DELTA.mean}, ${CHILD_DELTA.sd})`);
console.log("win phase            pop  " + SKILLS.map((s) => s.slice(0, 3)).join(" ") + "  niches  acc    J/task  succ/kJ  byChild  taken held");
for (const w of sim.windows) {
  const per = SKILLS.map((s) => String(w.agentsPerSkill[s]).padStart(3)).join(" ");
  console.log(`${String(w.window).padStart(3)} ${w.phase.padEnd(16)} ${String(w.population).padStart(3)}  ${per}  ${String(w.niches).padStart(2)}/20  ${w.accuracy.toFixed(3)}  ${w.joulesPerTask.toFixed(2)}    ${w.successesPerKJ.toFixed(0).padStart(4)}     ${String(w.wonByChildren).padStart(4)}     ${w.taken}    ${w.heldBack}`);
  if (values.verbose) for (const why of w.heldBackWhy) console.log(`      held back: ${why}`);
}
for (const d of sim.decisions) console.log(`  w${d.window} ${d.kind} ${d.agentId} on ${d.nodeId}${d.refused ? ` REFUSED ${d.refused}` : ""}: ${values.verbose ? d.reason : d.reason.slice(0, 110)}`);
for (const s of sim.shifts) {
  console.log(`shift at window ${s.window} to ${s.phase}: ${s.skill} had ${s.agentsBefore} agent(s); a child serving ${s.skill} was spawned after ${s.followedAfter ?? "never"} window(s) (bound ${FOLLOW_WITHIN_WINDOWS}), ${s.agentsAtPhaseEnd} agent(s) at the phase's end; an agent born since the shift first won a ${s.skill} task after ${s.servedAfter ?? "never"} window(s) and won ${(s.childShare * 100).toFixed(1)}% of them in the phase`);
}
const b = sim.budgets;
console.log(`budgets: at most ${b.maxSpawnsInAnHour} spawns and ${b.maxRetiresInAnHour} retirements in any hour (limits ${b.spawnsPerHour}/${b.retiresPerHour}): ${b.ok ? "ok" : "EXCEEDED"}`);
console.log(`last agent of a skill: ${sim.lastAgentLost.length === 0 ? "never lost" : `LOST ${JSON.stringify(sim.lastAgentLost)}`}`);
const ch = sim.children;
console.log(`children: ${ch.born} born, ${ch.everWon} ever won a task, ${ch.retiredNeverWon} retired without a single win; children won ${(ch.share * 100).toFixed(1)}% of all tasks; ${sim.minorSpawns} of the spawns were for a skill with 10% of the tasks`);

// The same run over other seeds: how often the bound holds, and the worst case.
const sweep: SimResult[] = [];
for (let i = 0; i < n("sweep"); i++) sweep.push(i === 0 ? sim : await simulate({ ...base, seed: base.seed + i }));
const lags = sweep.flatMap((r) => r.shifts.map((s) => s.followedAfter));
const within = lags.filter((x) => x !== null && x <= FOLLOW_WITHIN_WINDOWS).length;
const worst = lags.some((x) => x === null) ? null : Math.max(...(lags as number[]));
const sweepSummary = {
  seeds: sweep.length, shifts: lags.length, followedWithinBound: within, worstFollowedAfter: worst,
  budgetsOk: sweep.every((r) => r.budgets.ok), lastAgentLost: sweep.reduce((s, r) => s + r.lastAgentLost.length, 0),
  childrenBorn: sweep.reduce((s, r) => s + r.children.born, 0), childrenNeverWonRetired: sweep.reduce((s, r) => s + r.children.retiredNeverWon, 0),
  childShareOfShiftedSkill: r3(median(sweep.flatMap((r) => r.shifts.map((s) => s.childShare)))), minorSpawns: sweep.reduce((s, r) => s + r.minorSpawns, 0),
  spawns: sweep.reduce((s, r) => s + r.decisions.filter((d) => d.kind === "spawn" && !d.refused).length, 0),
};
console.log(`seeds ${base.seed}..${base.seed + sweep.length - 1}: followed ${within} of ${lags.length} shifts within ${FOLLOW_WITHIN_WINDOWS} windows (worst ${worst ?? "never"}); budgets ${sweepSummary.budgetsOk ? "ok" : "EXCEEDED"}; skills lost ${sweepSummary.lastAgentLost}; ${sweepSummary.childrenBorn} children, ${sweepSummary.childrenNeverWonRetired} retired without a win; median share of the shifted-to skill won by post-shift children ${(sweepSummary.childShareOfShiftedSkill * 100).toFixed(1)}%; ${sweepSummary.minorSpawns} of ${sweepSummary.spawns} spawns for a 10% skill`);

const frozen = await simulate({ ...base, architect: false });
const untrusted = await simulate({ ...base, trustedSubmitter: false });
const everyMinute = await simulate({ ...base, settings: { intervalMs: 60_000 } });
const line = (label: string, r: SimResult) => {
  const spawns = r.decisions.filter((d) => d.kind === "spawn" && !d.refused).length;
  const retires = r.decisions.filter((d) => d.kind === "retire").length;
  console.log(`${label.padEnd(34)} accuracy ${r.totals.accuracy.toFixed(3)}, ${r.totals.joulesPerTask.toFixed(2)} J/task, ${r.totals.successesPerKJ.toFixed(0)} successes/kJ, ${spawns} spawns, ${retires} retirements, children won ${(r.children.share * 100).toFixed(1)}% of tasks, followed shifts after ${r.shifts.map((s) => s.followedAfter ?? "never").join("/")} window(s)`);
};
line("architect (once per window):", sim);
line("frozen fleet (no architect):", frozen);
line("untrusted submitter:", untrusted);
line("architect every 60 s (default):", everyMinute);

const scale = await scaleCycle({ experiences: n("experiences"), agents: n("agents"), cycles: n("cycles"), seed: n("seed") });
console.log(`scale: ${scale.experiences} experiences (${scale.events} events) over ${scale.agents} agents on ${scale.nodes} nodes, ${scale.niches} agent-skill entries: ingest ${scale.ingestSeconds.toFixed(1)} s = ${Math.round(scale.eventsPerS)} events/s (${Math.round(scale.experiencesPerS)} experiences/s)`);
console.log(`scale: decision cycle (buildHistory + plan) median ${scale.cycleMs.median.toFixed(1)} ms, max ${scale.cycleMs.max.toFixed(1)} ms over ${scale.cycleMs.all.length} cycles (build ${scale.buildMs.median.toFixed(1)}, plan ${scale.planMs.median.toFixed(1)}, fitness into lineage ${scale.recordFitnessMs.median.toFixed(1)} ms); last plan ${scale.lastPlan.decisions} decisions, ${scale.lastPlan.heldBack} held back; heap ${scale.heapMB.toFixed(0)} MB; target < 1000 ms: ${scale.cycleMs.max < 1000 ? "ok" : "MISSED"}`);

const totals = (r: SimResult) => ({ accuracy: r3(r.totals.accuracy), joulesPerTask: r3(r.totals.joulesPerTask), successesPerKJ: Math.round(r.totals.successesPerKJ), spawns: r.decisions.filter((d) => d.kind === "spawn" && !d.refused).length, retires: r.decisions.filter((d) => d.kind === "retire").length, childrenShare: r3(r.children.share) });
console.log(
  JSON.stringify({
    bench: "evolution",
    settings: { ...SIM_SETTINGS, intervalMs: c.intervalMs, tasksPerWindow: base.tasksPerWindow, windowsPerPhase: base.windowsPerPhase, seed: base.seed },
    shifts: sim.shifts.map((s) => ({ window: s.window, skill: s.skill, followedAfter: s.followedAfter, servedAfter: s.servedAfter, childShare: r3(s.childShare) })),
    followWithin: FOLLOW_WITHIN_WINDOWS,
    followed: sim.shifts.every((s) => s.followedAfter !== null && s.followedAfter <= FOLLOW_WITHIN_WINDOWS),
    budgets: b,
    lastAgentLost: sim.lastAgentLost.length,
    children: sim.children,
    minorSpawns: sim.minorSpawns,
    sweep: sweepSummary,
    windows: sim.windows.map((w) => ({ pop: w.population, niches: w.niches, acc: r3(w.accuracy), jPerTask: r2(w.joulesPerTask), taken: w.taken, held: w.heldBack })),
    architect: totals(sim),
    frozen: totals(frozen),
    untrusted: totals(untrusted),
    everyMinute: totals(everyMinute),
    scale: {
      experiences: scale.experiences, agents: scale.agents, ingestSeconds: r2(scale.ingestSeconds), eventsPerS: Math.round(scale.eventsPerS),
      cycleMedianMs: r2(scale.cycleMs.median), cycleMaxMs: r2(scale.cycleMs.max), buildMedianMs: r2(scale.buildMs.median), planMedianMs: r2(scale.planMs.median), heapMB: Math.round(scale.heapMB),
    },
    loadavg1End: +os.loadavg()[0]!.toFixed(1),
  }),
);
