/**
 * One generation's figures for the ecosystem benchmark (bench/ecosystem.ts, docs/ecosystem.md): the
 * market's routing read from the stream, the key a sealed task would get, and every baseline's
 * figures over the generation's sealed matrix (bench/_ecosystem-baselines.ts).
 */
import { posteriorMean } from "../common/accuracy.ts";
import { claimFor } from "../common/genome.ts";
import { promptFeatures } from "../coordinator/evolution/niches.ts";
import * as B from "./_ecosystem-baselines.ts";
import type { EcosystemFleet, LiveAgent, StreamRecord } from "./_ecosystem-fleet.ts";
import type { Task } from "./_ecosystem-population.ts";
import type { Baseline, GenerationReport } from "./_ecosystem-report.ts";

/** What every generation shares: the seed, the sealed set, the fixed roles (skill -> agent). */
export interface World {
  seed: number;
  sealed: Task[];
  roles: Record<string, string>;
}

/**
 * Wins per skill key and agent over the second half of a generation's stream (in the order tasks
 * finished): the market's routing as it stands at the end of the generation, after the exploration
 * its first trials of every agent cost (those are paid for in the stream accuracy).
 */
export function shares(records: StreamRecord[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const r of records.slice(Math.floor(records.length / 2))) {
    if (!r.agent) continue;
    const m = out.get(r.key) ?? new Map<string, number>();
    m.set(r.agent, (m.get(r.agent) ?? 0) + 1);
    out.set(r.key, m);
  }
  return out;
}

/**
 * The key the coordinator would give a sealed task: its skill, or for an unlabeled fleet the niche
 * whose stream prompts' mean features are nearest (the coordinator's clusters are running means of
 * the same features; the sealed prompts are never submitted, so it never classifies them).
 */
export function keyer(records: StreamRecord[], prompts: string[], labeled: boolean): (t: Task) => string {
  if (labeled) return (t) => t.skill;
  const dims = 256;
  const centroids = new Map<string, Float64Array>();
  records.forEach((r, k) => {
    const c = centroids.get(r.key) ?? new Float64Array(dims);
    promptFeatures(prompts[k]!, dims).forEach((v, d) => (c[d]! += v));
    centroids.set(r.key, c);
  });
  const cos = (a: Float64Array, b: Float64Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let d = 0; d < dims; d++) (ab += a[d]! * b[d]!), (aa += a[d]! * a[d]!), (bb += b[d]! * b[d]!);
    return ab / Math.sqrt(aa * bb || 1);
  };
  return (t) => {
    const f = promptFeatures(t.prompt, dims);
    let best = "", s = -Infinity;
    for (const [k, c] of centroids) if (cos(f, c) > s) (s = cos(f, c)), (best = k);
    return best;
  };
}

/** What generation 0 left for the later generations' static baselines. */
export interface Gen0 {
  agents: LiveAgent[];
  shares: Map<string, Map<string, number>>;
  keyOf: (t: Task) => string;
}

export const keyOfAgent = (a: Pick<LiveAgent, "nodeId" | "agentId">) => `${a.nodeId}/${a.agentId}`;

/**
 * Every figure of one generation. The matrix has a row for every living agent and every gen-0
 * agent (retired ones too): the fleet and the oracle route among the living; the static baselines
 * (random, round-robin, best single, fixed roles, the gen-0 market and oracle) among the gen-0
 * agents, because static orchestration never changes its agents. All rows are measured in the same
 * generation, under the same load.
 */
export function generationFigures(ctx: World, fleet: EcosystemFleet, g: number, living: LiveAgent[], m: B.Matrix, records: StreamRecord[], keyOf: (t: Task) => string, gen0: Gen0): Omit<GenerationReport, "streamSeconds" | "evalSeconds" | "awakeModelMB" | "nodeRssMB"> {
  const { seed, sealed, roles } = ctx;
  const live = B.subMatrix(m, living.map(keyOfAgent));
  const old = B.subMatrix(m, gen0.agents.map(keyOfAgent));
  const oldSkills = gen0.agents.map((a) => a.genome.skills);
  const random = B.randomRouting(old, oldSkills);
  const market = B.shareRouting(live, (j) => keyOf(sealed[j]!), shares(records), B.randomRouting(live, living.map((a) => a.genome.skills)));
  const best = B.bestSingle(old);
  const f = (b: Baseline, mm: B.Matrix, r: B.Routing) => B.figures(mm, r, `${seed}:${g}:${b}`);
  const figures: Record<Baseline, B.Figures> = {
    fleet: f("fleet", live, market),
    "gen0-market": f("gen0-market", old, B.shareRouting(old, (j) => gen0.keyOf(sealed[j]!), gen0.shares, random)),
    random: f("random", old, random),
    "round-robin": f("round-robin", old, B.roundRobinRouting(old, oldSkills)),
    "best-single": f("best-single", old, B.singleRouting(old, best)),
    "fixed-roles": f("fixed-roles", old, B.fixedRoleRouting(old, oldSkills, roles)),
    oracle: f("oracle", live, B.oracleRouting(live)),
    "gen0-oracle": f("gen0-oracle", old, B.oracleRouting(old)),
  };
  // The market's expected accuracy of each agent on each sealed task's key: the one formula (claim + record) it scores bids with.
  const estimate = sealed.map((t) => living.map((a) => {
    const key = keyOf(t);
    const ref = fleet.h.coordinator.registry.ref(a.nodeId, a.agentId) ?? { nodeId: a.nodeId, agentId: a.agentId };
    return posteriorMean(claimFor(a.genome, key.startsWith("~") ? undefined : key), fleet.h.coordinator.reputation.record(ref, key));
  }));
  const cal = B.calibration(live, market, estimate);
  return {
    generation: g, agents: living.length, figures, bestSingleAgent: old.agents[best]!,
    gapClosed: B.gapClosed(figures.fleet.accuracy, figures["best-single"].accuracy, figures["gen0-oracle"].accuracy),
    brier: cal.brier, ece: cal.ece,
    reauctionRate: records.length ? records.filter((r) => r.attempts > 1).length / records.length : 0,
    streamAccuracy: records.length ? records.filter((r) => r.ok).length / records.length : 0,
    bytesPushed: fleet.bytesPushed,
  };
}

/** Per skill key, who won the second half of the stream, e.g. "add: pi4/weak-add 90%, orin/x 10%". */
export function routingSummary(records: StreamRecord[]): string[] {
  return [...shares(records)].sort(([a], [b]) => a.localeCompare(b)).map(([k, m]) => {
    const n = [...m.values()].reduce((x, y) => x + y, 0);
    return `${k}: ${[...m].sort((a, b) => b[1] - a[1]).map(([a, w]) => `${a} ${Math.round((100 * w) / n)}%`).join(", ")}`;
  });
}
