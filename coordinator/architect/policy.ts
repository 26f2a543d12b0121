/**
 * The architect's policy: a pure, deterministic function `history -> decisions`, each with its
 * reason in plain words (docs/evolution.md, "The architect"). No I/O, no clock, no LLM: the same
 * history and seed give the same plan, which is what `colony architect plan` prints and what the
 * unit tests pin down.
 *
 * Rules, in order:
 * 1. retire-dominated: an agent whose every niche it serves (skill key x device class, with at least
 *    `minTrials` trials) has another agent of the same device class with success at least `margin`
 *    higher and no more energy per success, continuously for `dominatedWindows` windows;
 * 2. retire-idle: an agent that won nothing for `idleRetireMs` and is not the best at anything it
 *    serves (a rarely needed agent that is the best at what it does stays, asleep);
 *    both spare the last living agent of a skill (niche protection);
 * 3. spawn: a skill whose demand per serving agent in the last window reaches `spawnDemandPerAgent`
 *    (or half that when demand rose 1.5x over the previous window to at least one agent's worth) gets a child of its best agent
 *    (success >= `spawnMinSuccess` over >= `minTrials` trials), made by a variation operator, on the
 *    online node that adds a device class the skill lacks, else holds the parent's model, else
 *    hosts the fewest agents; one young child per skill at a time;
 * 4. wake (keep-warm): a skill whose demand in the coming UTC hour is `keepWarmRatio` x its hourly
 *    average (from the all-time hour-of-day counts) gets its best asleep agent woken for an hour;
 * 5. distil: a skill with two or more strong agents is handed to the collective mind.
 * Budgets (per rolling hour) and switches hold decisions back; what is held back is reported too.
 */
import type { Genome } from "../../common/genome.ts";
import type { Decision } from "../../common/protocol.ts";
import { Rng } from "../../common/random.ts";
import type { AgentFitness } from "../evolution/fitness.ts";
import { applicable, vary, type Child, type Material } from "../evolution/variation.ts";
import type { EvolutionSettings } from "./settings.ts";

/** One niche's figures as the policy reads them (the fitness book's, without whose they are). */
export type FitnessView = Omit<AgentFitness, "nodeId" | "agentId" | "genome" | "lastWinAt">;

export interface AgentView {
  agentId: string;
  nodeId: string;
  deviceClass: string;
  /** alive: hosted; pending: spawn sent, not yet acknowledged. */
  state: "alive" | "pending";
  /** As the node last reported it (awake, asleep, busy, loading), when known. */
  activity?: string | undefined;
  skills: readonly string[];
  generation: number;
  bornAt: number;
  lastWinAt?: number | undefined;
  spec?: Genome | undefined;
  fitness: readonly FitnessView[];
}

export interface NodeView {
  nodeId: string;
  deviceClass: string;
  online: boolean;
  agents: number;
  /** Model references its agents use. */
  models: readonly string[];
}

/** The settings (settings.ts) with the enabled kinds as switches. */
export type PolicyConfig = Omit<EvolutionSettings, "kinds" | "intervalMs" | "dryRun"> & {
  kinds: { spawn: boolean; retire: boolean; wake: boolean; distil: boolean };
};

export interface PolicyState {
  cycle: number;
  /** lifeId -> since when it has been dominated in every niche it serves. */
  dominatedSince: Record<string, number>;
  /** Decisions carried out, for the hourly budgets. */
  recent: { kind: Decision["kind"]; at: number }[];
  /** Spawns a node refused: not asked again for that parent within the cooldown. */
  refusals: { nodeId: string; parent: string; at: number; code: string }[];
}

export interface History {
  now: number;
  seed: number;
  agents: readonly AgentView[];
  nodes: readonly NodeView[];
  demand: readonly { skill: string; current: number; previous: number; hourly: readonly number[] }[];
  material: (a: AgentView) => Material;
  config: PolicyConfig;
  state: PolicyState;
}

/** A decision with what carrying it out needs (a child's genome). */
export type Planned = Decision & { child?: Child };

export interface Plan {
  decisions: Planned[];
  heldBack: { decision: Planned; why: string }[];
  state: PolicyState;
}

const HOUR = 3600_000;
const lifeId = (a: { nodeId: string; agentId: string }) => `${a.nodeId}/${a.agentId}`;
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const joules = (x: number | undefined) => (x === undefined ? "?" : `${x.toFixed(2)} J`);
/** "45 s", "12 min", "3.5 h": durations as people read them. */
export function duration(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * HOUR) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / HOUR).toFixed(1)} h`;
}

function judged(a: AgentView, minTrials: number): FitnessView[] {
  return a.fitness.filter((f) => f.trials >= minTrials);
}

/** The agent of the same device class that dominates `a` in niche `f`, if any. */
function dominator(a: AgentView, f: FitnessView, all: readonly AgentView[], c: PolicyConfig): { by: AgentView; fb: FitnessView } | undefined {
  for (const b of all) {
    if (b === a || b.state !== "alive" || b.deviceClass !== a.deviceClass) continue;
    const fb = b.fitness.find((x) => x.skill === f.skill);
    if (!fb || fb.trials < c.minTrials || fb.success < f.success + c.margin) continue;
    const cheaper = fb.energyPerSuccessJ === undefined || f.energyPerSuccessJ === undefined || fb.energyPerSuccessJ <= f.energyPerSuccessJ;
    if (cheaper) return { by: b, fb };
  }
  return undefined;
}

function bestFor(skill: string, agents: readonly AgentView[], minTrials: number): AgentView | undefined {
  let best: { a: AgentView; f: FitnessView } | undefined;
  for (const a of agents) {
    const f = a.fitness.find((x) => x.skill === skill);
    if (!f || f.trials < minTrials) continue;
    if (!best || f.success > best.f.success || (f.success === best.f.success && (f.energyPerSuccessJ ?? Infinity) < (best.f.energyPerSuccessJ ?? Infinity))) best = { a, f };
  }
  return best?.a;
}

function retirements(h: History, st: PolicyState): Planned[] {
  const c = h.config;
  const alive = h.agents.filter((a) => a.state === "alive");
  const out: Planned[] = [];
  for (const a of alive) {
    const id = lifeId(a);
    const niches = judged(a, c.minTrials);
    const doms = niches.map((f) => ({ f, d: dominator(a, f, alive, c) }));
    const dominated = niches.length > 0 && doms.every((x) => x.d);
    if (!dominated) delete st.dominatedSince[id];
    else st.dominatedSince[id] ??= h.now;
    const since = st.dominatedSince[id];
    if (dominated && since !== undefined && h.now - since >= c.dominatedWindows * c.windowMs) {
      const why = doms.map(({ f, d }) => `${f.skill}@${a.deviceClass} by ${d!.by.agentId} (${pct(d!.fb.success)} vs ${pct(f.success)}, ${joules(d!.fb.energyPerSuccessJ)} vs ${joules(f.energyPerSuccessJ)} per success)`);
      out.push({ kind: "retire", agentId: a.agentId, nodeId: a.nodeId, reason: `dominated for ${duration(h.now - since)} in every niche it serves: ${why.join("; ")}` });
      continue;
    }
    const idleFor = h.now - Math.max(a.bornAt, a.lastWinAt ?? 0);
    if (idleFor >= c.idleRetireMs) {
      const bestAt = niches.filter((f) => bestFor(f.skill, alive, c.minTrials) === a).map((f) => f.skill);
      if (bestAt.length === 0) out.push({ kind: "retire", agentId: a.agentId, nodeId: a.nodeId, reason: `won nothing for ${duration(idleFor)} and is the best at nothing it serves` });
    }
  }
  return out;
}

/** The last living agent of any of its skills stays: returns the skill it protects. */
function lastOfSkill(a: AgentView, living: readonly AgentView[]): string | undefined {
  return a.skills.find((s) => !living.some((b) => b !== a && b.skills.includes(s)));
}

function spawns(h: History, st: PolicyState, rng: Rng): Planned[] {
  const c = h.config;
  const out: Planned[] = [];
  const living = h.agents;
  for (const d of [...h.demand].sort((x, y) => y.current - x.current || x.skill.localeCompare(y.skill))) {
    const servers = living.filter((a) => a.skills.includes(d.skill) || a.fitness.some((f) => f.skill === d.skill && f.trials > 0));
    const perAgent = d.current / Math.max(1, servers.length);
    // A rise counts only at one agent's worth of demand: a minor skill going from 15 to 29 tasks is noise.
    const rising = d.current >= 1.5 * d.previous && d.previous > 0 && d.current >= c.spawnDemandPerAgent;
    const threshold = rising ? c.spawnDemandPerAgent / 2 : c.spawnDemandPerAgent;
    if (servers.length > 0 && perAgent < threshold) continue;
    // One young child per skill: it must earn its record before the next is made.
    if (servers.some((a) => a.state === "pending" || (a.generation > 0 && h.now - a.bornAt < c.windowMs && (a.fitness.find((f) => f.skill === d.skill)?.trials ?? 0) < c.minTrials))) continue;
    const parent = bestFor(d.skill, servers.filter((a) => a.state === "alive" && a.spec), c.minTrials);
    const pf = parent?.fitness.find((f) => f.skill === d.skill);
    if (!parent || !pf || pf.success < c.spawnMinSuccess) continue;
    if (living.filter((a) => a.spec?.parent === parent.agentId).length >= c.maxChildrenPerParent) continue;
    const material = h.material(parent);
    const ops = applicable(parent.spec!, material, c.operators);
    if (ops.length === 0) continue;
    const cooling = new Set(st.refusals.filter((r) => r.parent === parent.agentId && h.now - r.at < c.refusalCooldownMs).map((r) => r.nodeId));
    const classesServed = new Set(servers.map((a) => a.deviceClass));
    const nodes = h.nodes
      .filter((n) => n.online && !cooling.has(n.nodeId))
      .map((n) => ({ n, newClass: !classesServed.has(n.deviceClass), hasModel: n.models.includes(parent.spec!.model) }))
      .sort((x, y) => Number(y.newClass) - Number(x.newClass) || Number(y.hasModel) - Number(x.hasModel) || x.n.agents - y.n.agents || x.n.nodeId.localeCompare(y.n.nodeId));
    const target = nodes[0];
    if (!target) continue;
    const op = ops[rng.int(0, ops.length - 1)]!;
    const child = vary(parent.spec!, op, parent.generation + 1, rng, material);
    const where = target.newClass ? `adds device class ${target.n.deviceClass}` : target.hasModel ? "already holds the model" : `hosts the fewest agents (${target.n.agents})`;
    out.push({
      kind: "spawn", agentId: child.genome.id, nodeId: target.n.nodeId, parents: [parent.agentId], variation: op, niche: `${d.skill}@${target.n.deviceClass}`, child,
      reason: `demand for ${d.skill} is ${Math.round(d.current)} tasks in the last window (${Math.round(d.previous)} before) over ${servers.length} agent(s); child of ${parent.agentId} (${pct(pf.success)} over ${pf.trials} trials) by ${op}, on ${target.n.nodeId}, which ${where}`,
    });
  }
  return out;
}

function wakes(h: History): Planned[] {
  const c = h.config;
  const out: Planned[] = [];
  const nextHour = new Date(h.now + HOUR).getUTCHours();
  for (const d of h.demand) {
    const total = d.hourly.reduce((s, x) => s + x, 0);
    if (total < c.keepWarmMinTasks) continue;
    const ratio = (d.hourly[nextHour] ?? 0) / (total / 24);
    if (ratio < c.keepWarmRatio) continue;
    const best = bestFor(d.skill, h.agents.filter((a) => a.state === "alive"), 1);
    if (!best || best.activity !== "asleep") continue;
    out.push({ kind: "wake", agentId: best.agentId, nodeId: best.nodeId, niche: d.skill, holdMs: HOUR, reason: `demand for ${d.skill} in the coming hour (${nextHour}:00 UTC) is ${ratio.toFixed(1)}x its hourly average; ${best.agentId} is its best agent and asleep` });
  }
  return out;
}

function distils(h: History): Planned[] {
  const c = h.config;
  const out: Planned[] = [];
  for (const d of h.demand) {
    const strong = h.agents
      .filter((a) => a.state === "alive")
      .map((a) => ({ a, f: a.fitness.find((x) => x.skill === d.skill) }))
      .filter((x) => x.f && x.f.trials >= c.minTrials * 5 && x.f.success >= c.spawnMinSuccess)
      .sort((x, y) => y.f!.success - x.f!.success);
    if (strong.length < 2) continue;
    const parents = strong.slice(0, 3).map((x) => x.a.agentId);
    out.push({ kind: "distil", agentId: strong[0]!.a.agentId, nodeId: strong[0]!.a.nodeId, parents, niche: d.skill, reason: `${strong.length} agents succeed at ${d.skill} over ${c.minTrials * 5}+ trials: distil their verified experience into one child model` });
  }
  return out;
}

export function plan(h: History): Plan {
  const c = h.config;
  const st: PolicyState = { cycle: h.state.cycle + 1, dominatedSince: { ...h.state.dominatedSince }, recent: h.state.recent.filter((r) => h.now - r.at < HOUR), refusals: h.state.refusals.filter((r) => h.now - r.at < c.refusalCooldownMs) };
  const rng = new Rng(`${h.seed}:${st.cycle}`);
  const decisions: Planned[] = [];
  const heldBack: Plan["heldBack"] = [];
  const used = (kind: Decision["kind"]) => st.recent.filter((r) => r.kind === kind).length + decisions.filter((d) => d.kind === kind).length;
  const budget: Record<Decision["kind"], number> = { spawn: c.spawnsPerHour, retire: c.retiresPerHour, wake: c.wakesPerHour, distil: 1 };

  const take = (d: Planned, extra?: string) => {
    if (extra) return heldBack.push({ decision: d, why: extra });
    if (!c.kinds[d.kind]) return heldBack.push({ decision: d, why: `${d.kind} is turned off` });
    if (used(d.kind) >= budget[d.kind]) return heldBack.push({ decision: d, why: `budget: ${budget[d.kind]} ${d.kind} decisions per hour` });
    decisions.push(d);
  };

  // Retire first (the worst first), so a spawn may take the place it frees.
  let living = h.agents.filter((a) => a.state === "alive" || a.state === "pending");
  for (const d of retirements(h, st).sort((x, y) => (st.dominatedSince[lifeId(x)] ?? Infinity) - (st.dominatedSince[lifeId(y)] ?? Infinity) || lifeId(x).localeCompare(lifeId(y)))) {
    const a = living.find((x) => x.agentId === d.agentId && x.nodeId === d.nodeId)!;
    const protects = lastOfSkill(a, living);
    take(d, protects ? `niche protection: the last agent for skill ${protects}` : undefined);
    if (decisions.includes(d)) living = living.filter((x) => x !== a);
  }
  for (const d of spawns({ ...h, agents: living }, st, rng)) {
    const population = living.length + decisions.filter((x) => x.kind === "spawn").length;
    take(d, population >= c.fleetMaxAgents ? `fleet at its limit of ${c.fleetMaxAgents} agents` : undefined);
  }
  for (const d of wakes(h)) take(d);
  for (const d of distils(h)) take(d);
  return { decisions, heldBack, state: st };
}
