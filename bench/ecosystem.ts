/**
 * The living-ecosystem benchmark (docs/ecosystem.md): does a Colony fleet get better and cheaper over
 * generations, measured against the alternatives on a sealed test set?
 *
 * Real processes: the coordinator (market, evolution, architect, collective mind) in this process,
 * one `colony node` per device profile with injected probe readings, llama.cpp agents on the
 * project's models. Per generation: the fleet serves a stream of checked tasks whose mix shifts;
 * every living agent then answers the sealed set (bench/_ecosystem-matrix.ts), and every baseline
 * is computed exactly from that agent x task matrix (bench/_ecosystem-baselines.ts); then the
 * architect runs a cycle and the collective mind distils (a lift of the weak skill; in the default
 * run also a merge of two parents' skills). A second fleet serves the same first stream without
 * skill labels. All randomness is seeded from --seed (printed).
 *
 *   npm run bench -- ecosystem [--quick] [--seed 1] [--generations N] [--stream N] [--sealed N]
 *                              [--lift-steps N] [--sample-prompts N] [--merge-steps N] [--merge-prompts N] [--gate N]
 *                              [--weak-steps N] [--concurrency N] [--no-unlabeled] [--out DIR] [--keep]
 *
 * Writes report.md, plot.svg and summary.json to --out (default bench/results/ecosystem/<mode>-seed<N>).
 * Last stdout line: a one-line JSON summary.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { MindJob } from "../common/protocol.ts";
import { EvolutionSettingsSchema } from "../coordinator/architect/settings.ts";
import { MindSettingsSchema } from "../coordinator/mind/settings.ts";
import { setKernelThreads } from "../trainer/kernels.ts";
import * as B from "./_ecosystem-baselines.ts";
import { EcosystemFleet, type LiveAgent } from "./_ecosystem-fleet.ts";
import { sealedMatrix } from "./_ecosystem-matrix.ts";
import { population, sealedSet, streamOf, weakModel, WEAK_SKILL, type ModelFile } from "./_ecosystem-population.ts";
import { generationFigures, keyer, keyOfAgent, routingSummary, shares, type Gen0, type World } from "./_ecosystem-generation.ts";
import { markdown, svgPlot, BASELINES, type GenerationReport } from "./_ecosystem-report.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    seed: { type: "string", default: "1" },
    generations: { type: "string" },
    stream: { type: "string" },
    sealed: { type: "string" },
    "lift-steps": { type: "string" },
    "sample-prompts": { type: "string" },
    "merge-steps": { type: "string" },
    "merge-prompts": { type: "string" },
    gate: { type: "string" },
    "weak-steps": { type: "string" },
    concurrency: { type: "string", default: "3" },
    "no-unlabeled": { type: "boolean", default: false },
    out: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const quick = values.quick!;
const pick = (k: keyof typeof values, full: number, q: number) => (values[k] !== undefined ? Number(values[k]) : quick ? q : full);
const seed = Number(values.seed);
const generations = pick("generations", 4, 2);
const streamPerGen = pick("stream", 300, 60);
const sealedPerSkill = pick("sealed", 60, 20);
const liftSteps = pick("lift-steps", 600, 300);
const samplePrompts = pick("sample-prompts", 2000, 1000);
// A merge of two skills needs thousands of warm-started steps (docs/distil-bench.md): not in --quick.
const mergeSteps = pick("merge-steps", 3000, 0);
// Fresh prompts per skill for the merge, one verified sample each (the parents are ~100% right): ~5-7k pairs per skill made add + reverse pass (docs/distil-bench.md).
const mergePrompts = pick("merge-prompts", 3000, 0);
const gatePerSkill = pick("gate", 200, 100);
// 600 steps: 57% on 200 held-out add instances with seed 1 (700: 88.5%; the curve is steep).
const weakSteps = pick("weak-steps", 600, 600);
const concurrency = Number(values.concurrency);
const mode = quick ? "quick" : "default";
const outDir = values.out ?? path.join("bench", "results", "ecosystem", `${mode}-seed${seed}`);
const t0 = performance.now();
const log = (s: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}\n`);
log(`ecosystem: seed ${seed}, ${mode}: ${generations} generations, ${streamPerGen} stream tasks each, ${sealedPerSkill} sealed per skill, lift ${liftSteps} steps x ${samplePrompts} prompts, merge ${mergeSteps} steps x ${mergePrompts} prompts, gate ${gatePerSkill}`);
setKernelThreads(1);

// The world: models, population, splits.
const seedManifest = JSON.parse(readFileSync("models/seed-manifest.json", "utf8")) as { models: { name: string; file: string; sha256: string; heldOut: { accuracy: Record<string, number> } }[] };
const models: Record<string, ModelFile> = Object.fromEntries(seedManifest.models.map((m) => [m.name, { file: path.resolve("models", m.file), sha256: m.sha256, heldOut: m.heldOut.accuracy }]));
models["weak-add"] = await weakModel(path.resolve("bench/results/ecosystem/cache"), seed, weakSteps, log);
const nodes = population();
const sealed = sealedSet(seed, sealedPerSkill, gatePerSkill);
const streams = Array.from({ length: generations }, (_, g) => streamOf(seed, g, streamPerGen));
// Fixed roles, the CrewAI way: a manager gives each skill to the agent that claims most for it
// (its self-description; the first of the roster on a tie) and never revisits the choice.
const roles: Record<string, string> = {};
const claimed: Record<string, number> = {};
for (const n of nodes) for (const a of n.agents) for (const s of a.skills) {
  const c = a.claim ?? models[a.model]!.heldOut?.[s] ?? 0.5;
  if (!(s in roles) || c > claimed[s]!) (roles[s] = `${n.nodeId}/${a.id}`), (claimed[s] = c);
}

const world: World = { seed, sealed, roles };
const work = mkdtempSync(path.join(tmpdir(), "ecosystem-"));
const baseConfig = {
  bidWindowMs: 300, ackWithinMs: 3000, penaltyBaseMs: 1000, submitRate: 0, maxOpenTasks: 0, seed,
  mind: MindSettingsSchema.parse({ enabled: true, threads: 1, steps: liftSteps, batch: 32, maxExperiencesPerSkill: 2000, minExperiencesPerSkill: 5, gatePerSkill, margin: 0.01, sampling: { candidates: 8, temperature: 0.8, prompts: samplePrompts }, keepJobs: 50 }),
  // The architect acts only when the bench calls a cycle (intervalMs 24 h); windows span the run.
  evolution: EvolutionSettingsSchema.parse({ intervalMs: 24 * 3600_000, windowMs: 3600_000, minTrials: quick ? 5 : 10, dominatedWindows: 0, idleRetireMs: 120_000, spawnDemandPerAgent: 10, spawnsPerHour: 8, retiresPerHour: 8, operators: ["sampling"] }),
};

/** Lets spawned children register: until the living agents stop changing for 3 s (at most 60 s). */
async function settle(fleet: EcosystemFleet): Promise<void> {
  let last = "", since = Date.now();
  await fleet.until(() => {
    const now = fleet.liveAgents().map((a) => `${a.nodeId}/${a.agentId}`).join(",");
    if (now !== last) (last = now), (since = Date.now());
    return Date.now() - since > 3000;
  }, 60_000, "the population to settle").catch(() => {});
}

const jobs: MindJob[] = [];
/**
 * Between two generations: the distillation jobs the bench asks for (before the architect's cycle,
 * so their parents are still alive), followed to their end; then one architect cycle (its own
 * spawn, retire, wake and distil decisions); then every job the architect asked for.
 */
async function evolve(fleet: EcosystemFleet, g: number): Promise<string[]> {
  const out: string[] = [];
  const live = fleet.liveAgents();
  const asks = [];
  if (g === 0) {
    // Lift the weak skill: its agents' verified experiences plus verified samples (8 candidates at 0.8), gated on held-out instances.
    const parents = live.filter((a) => a.genome.skills.includes(WEAK_SKILL)).map((a) => ({ agentId: a.agentId, nodeId: a.nodeId }));
    asks.push({ jobId: `lift-${WEAK_SKILL}-g${g}`, skills: [WEAK_SKILL], parents, steps: liftSteps, sampling: { candidates: 8, temperature: 0.8, prompts: samplePrompts }, gatePerSkill, reason: `ecosystem bench: lift ${WEAK_SKILL}` });
  }
  if (g === 1 && mergeSteps > 0) {
    // Merge two specialists into one child that must serve both parents' skills (count, max).
    const p = [live.find((a) => a.agentId === "seed-count" && a.nodeId === "pi4"), live.find((a) => a.agentId === "seed-max-sort" && a.nodeId === "pi5")].filter((a) => a !== undefined);
    if (p.length === 2) asks.push({ jobId: `merge-count-max-g${g}`, skills: ["count", "max"], parents: p.map((a) => ({ agentId: a.agentId, nodeId: a.nodeId })), steps: mergeSteps, sampling: { candidates: 1, temperature: 0.5, prompts: mergePrompts }, gatePerSkill, reason: "ecosystem bench: merge count + max" });
    else out.push("merge skipped: seed-count@pi4 or seed-max-sort@pi5 is no longer alive");
  }
  for (const req of asks) {
    const job = await fleet.distil(req, 60 * 60_000);
    jobs.push(job);
    const gate = job.gate ? job.gate.skills.map((s) => `${s.skill} child ${(100 * s.child.acc).toFixed(1)}% vs best parent ${(100 * s.best).toFixed(1)}%`).join("; ") : "";
    out.push(`mind ${job.jobId}: ${job.state}${job.error ? ` ${job.error.code}` : ""}${gate ? ` (${gate})` : ""}${job.child ? `, child ${job.child.agentId} ${job.child.status}` : ""}`);
  }
  await settle(fleet);
  const report = await fleet.h.coordinator.architect!.cycle();
  for (const d of report.decisions) out.push(`architect ${d.kind} ${d.agentId}@${d.nodeId}: ${d.reason}`);
  for (const h of report.heldBack.slice(0, 5)) out.push(`architect held back ${h.decision.kind} ${h.decision.agentId}: ${h.why}`);
  await fleet.mindIdle(60 * 60_000);
  for (const j of fleet.h.coordinator.mind.list()) if (j.by === "architect" && !jobs.some((x) => x.jobId === j.jobId)) {
    jobs.push(j);
    out.push(`mind ${j.jobId} (architect): ${j.state}${j.child ? `, child ${j.child.agentId}` : ""}`);
  }
  await settle(fleet);
  return out;
}

async function runFleet(labeled: boolean, gens: number, reuse?: { matrix: B.Matrix; agents: LiveAgent[] }): Promise<GenerationReport[]> {
  const fleet = await EcosystemFleet.start({ dir: path.join(work, labeled ? "labeled" : "unlabeled"), nodes, models, config: { ...baseConfig, architect: labeled }, log });
  log(`${labeled ? "labeled" : "unlabeled"} fleet up: ${fleet.liveAgents().length} agents on ${nodes.length} node processes`);
  const reports: GenerationReport[] = [];
  let gen0: Gen0 | undefined;
  try {
    for (let g = 0; g < gens; g++) {
      const tasks = streams[g]!;
      const s = await fleet.runStream(tasks, labeled, concurrency);
      log(`gen ${g}: stream ${tasks.length} tasks in ${s.seconds.toFixed(0)} s, accuracy ${(s.records.filter((r) => r.ok).length / tasks.length).toFixed(3)}`);
      const living = fleet.liveAgents();
      const keyOf = keyer(s.records, tasks.map((t) => t.prompt), labeled);
      gen0 ??= { agents: living, shares: shares(s.records), keyOf };
      const all = [...living, ...gen0.agents.filter((a) => !living.some((b) => keyOfAgent(a) === keyOfAgent(b)))];
      const te = performance.now();
      const m = reuse && g === 0 ? reuse.matrix : await sealedMatrix(all, sealed, nodes, 1);
      const evalSeconds = (performance.now() - te) / 1000;
      const report = generationFigures(world, fleet, g, living, m, s.records, keyOf, gen0);
      const r: GenerationReport = { ...report, streamSeconds: s.seconds, evalSeconds, awakeModelMB: s.awakeMB, nodeRssMB: s.rssMB };
      r.routing = routingSummary(s.records);
      log(`gen ${g}: routing (second half of the stream) ${r.routing.join("; ")}`);
      log(`gen ${g}: ${living.length} living agents (${all.length} evaluated), sealed ${sealed.length} tasks in ${evalSeconds.toFixed(0)} s: fleet ${(100 * r.figures.fleet.accuracy).toFixed(1)}%, best single ${(100 * r.figures["best-single"].accuracy).toFixed(1)}%, oracle ${(100 * r.figures.oracle.accuracy).toFixed(1)}%`);
      if (labeled && g < gens - 1) {
        const tv = performance.now();
        r.decisions = await evolve(fleet, g);
        r.evolveSeconds = (performance.now() - tv) / 1000;
        for (const d of r.decisions) log(`  ${d}`);
      }
      reports.push(r);
      if (labeled && g === 0) gen0Eval = { matrix: m, agents: all };
      if (labeled) lastMatrix = m;
    }
  } finally {
    await fleet.close();
  }
  return reports;
}

let gen0Eval: { matrix: B.Matrix; agents: LiveAgent[] } | undefined;
let lastMatrix: B.Matrix | undefined;
let labeled: GenerationReport[] = [];
let unlabeled: GenerationReport[] = [];
try {
  labeled = await runFleet(true, generations);
  // The same first stream without skill labels, on an identical gen-0 fleet: its agents are the
  // labeled fleet's gen-0 agents (same genomes, greedy or seeded sampling), so their sealed matrix is reused.
  if (!values["no-unlabeled"]) unlabeled = await runFleet(false, 1, gen0Eval);
} finally {
  if (!values.keep) rmSync(work, { recursive: true, force: true });
}

// Targets (docs/ecosystem.md): reported met or missed, never assumed.
const g0 = labeled[0]!;
const last = labeled.at(-1)!;
const f0 = g0.figures;
const weakLast = last.figures.fleet.perSkill[WEAK_SKILL]?.accuracy ?? 0;
const weakOracle0 = f0["gen0-oracle"].perSkill[WEAK_SKILL]?.accuracy ?? 0;
/** A passed multi-skill job's child, on the last sealed matrix: on each of its skills at >= every parent's accuracy. */
const childServesParents = (j: MindJob): boolean => {
  const m = lastMatrix;
  const row = m?.agents.find((a) => a.endsWith(`/${j.child!.agentId}`));
  if (!m || !row) return false;
  return j.skills.every((s) => j.parents.every((p) => (B.agentSkillAccuracy(m, row, s) ?? 0) >= (B.agentSkillAccuracy(m, `${p.nodeId}/${p.agentId}`, s) ?? 0)));
};
const merged = jobs.filter((j) => j.state === "passed" && j.skills.length > 1 && j.child);
const wall = (performance.now() - t0) / 1000;
const targets = {
  marketBeatsRoundRobin2xPerKJ: f0.fleet.accuracyPerKJ >= 2 * f0["round-robin"].accuracyPerKJ,
  marketMatchesBestSingle: f0.fleet.ci[1] >= f0["best-single"].accuracy && f0.fleet.joulesPerTask <= f0["best-single"].joulesPerTask,
  gapClosedHalf: (last.gapClosed ?? -Infinity) >= 0.5,
  weakSkillBeyondGen0Oracle: weakLast > weakOracle0,
  distilledChildServesSeveralParents: merged.some(childServesParents),
  lessAwakeMemory: last.awakeModelMB < g0.awakeModelMB,
  unlabeled90pct: unlabeled.length ? unlabeled[0]!.figures.fleet.accuracy >= 0.9 * f0.fleet.accuracy : undefined,
  wallClock: wall <= (quick ? 600 : 2400),
  byGeneration3: generations - 1 >= 3,
};

mkdirSync(outDir, { recursive: true });
const header = `Ecosystem benchmark, ${mode}, seed ${seed}: ${generations} generations x ${streamPerGen} stream tasks, sealed ${sealed.length} tasks (${sealedPerSkill} per skill), weak skill ${WEAK_SKILL}; wall ${(wall / 60).toFixed(1)} min.`;
let md = markdown(labeled, WEAK_SKILL, `## Labeled stream\n\n${header}`);
if (unlabeled.length) md += "\n" + markdown(unlabeled, WEAK_SKILL, "## Skill labels removed (generation 0, same stream without labels)");
md += `\n## Targets\n\n${Object.entries(targets).map(([k, v]) => `- ${k}: ${v === undefined ? "not measured" : v ? "met" : "missed"}`).join("\n")}\n`;
writeFileSync(path.join(outDir, "report.md"), md);
writeFileSync(path.join(outDir, "plot.svg"), svgPlot(labeled, `seed ${seed}, ${mode}`));
const round = (x: number) => Number(x.toFixed(4));
const summary = {
  bench: "ecosystem", seed, mode, generations, streamPerGen, sealedTasks: sealed.length, wallSeconds: Math.round(wall),
  perGeneration: labeled.map((g) => ({
    gen: g.generation, agents: g.agents,
    accuracy: Object.fromEntries(BASELINES.map((b) => [b, round(g.figures[b].accuracy)])),
    fleetCi: g.figures.fleet.ci.map(round), fleetJPerTask: round(g.figures.fleet.joulesPerTask), fleetSPerTask: round(g.figures.fleet.secondsPerTask),
    accPerKJ: Object.fromEntries(BASELINES.map((b) => [b, Math.round(g.figures[b].accuracyPerKJ)])),
    weakSkill: round(g.figures.fleet.perSkill[WEAK_SKILL]?.accuracy ?? 0), gapClosed: g.gapClosed === undefined ? null : round(g.gapClosed),
    brier: round(g.brier), ece: round(g.ece), reauction: round(g.reauctionRate), awakeModelMB: round(g.awakeModelMB), nodeRssMB: Math.round(g.nodeRssMB), bytesPushed: g.bytesPushed,
  })),
  unlabeled: unlabeled.length ? { accuracy: round(unlabeled[0]!.figures.fleet.accuracy), ratio: round(unlabeled[0]!.figures.fleet.accuracy / f0.fleet.accuracy) } : null,
  jobs: jobs.map((j) => ({ id: j.jobId, state: j.state, passed: j.gate?.passed ?? null, child: j.child?.agentId ?? null })),
  targets,
  weakModelSha256: models["weak-add"].sha256,
  out: outDir,
};
writeFileSync(path.join(outDir, "summary.json"), JSON.stringify(summary, null, 2));
log(`wrote ${outDir}/report.md, plot.svg, summary.json`);
process.stdout.write(JSON.stringify(summary) + "\n");
