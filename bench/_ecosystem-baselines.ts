/**
 * The ecosystem benchmark's baselines and figures, computed exactly from one agent x task matrix
 * of the sealed set (docs/ecosystem.md). A routing is, for each task, a distribution over agents
 * (a deterministic rule puts all its weight on one); every figure is its expectation over the
 * matrix, so no baseline is run twice and none is sampled. Pure: test/unit/ecosystem-baselines.test.ts.
 */
import { Rng } from "../common/random.ts";

export interface Matrix {
  /** `nodeId/agentId` of each row. */
  agents: string[];
  /** The skill of each column (task). */
  tasks: string[];
  ok: boolean[][];
  seconds: number[][];
  joules: number[][];
}

/** The rows of `agents` (in that order; unknown ones are left out). */
export function subMatrix(m: Matrix, agents: string[]): Matrix {
  const rows = agents.map((a) => m.agents.indexOf(a)).filter((i) => i >= 0);
  return { agents: rows.map((i) => m.agents[i]!), tasks: m.tasks, ok: rows.map((i) => m.ok[i]!), seconds: rows.map((i) => m.seconds[i]!), joules: rows.map((i) => m.joules[i]!) };
}

/** weights[task][agent], each row summing to 1. */
export type Routing = number[][];

export interface Figures {
  accuracy: number;
  /** 95% bootstrap interval of the accuracy (tasks resampled). */
  ci: [number, number];
  joulesPerTask: number;
  secondsPerTask: number;
  /** Successes per kJ: accuracy / joules per task x 1000. */
  accuracyPerKJ: number;
  perSkill: Record<string, { accuracy: number; joulesPerTask: number; secondsPerTask: number }>;
}

const oneHot = (n: number, i: number) => Array.from({ length: n }, (_, k) => (k === i ? 1 : 0));
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Agents whose declared skills include the task's skill (all agents when none does). */
function candidates(m: Matrix, skills: string[][], j: number): number[] {
  const c = m.agents.map((_, i) => i).filter((i) => skills[i]!.includes(m.tasks[j]!));
  return c.length ? c : m.agents.map((_, i) => i);
}

/** Random: each task to an agent drawn uniformly among those that declare its skill (the expectation, not a draw). */
export function randomRouting(m: Matrix, skills: string[][]): Routing {
  return m.tasks.map((_, j) => {
    const c = candidates(m, skills, j);
    return m.agents.map((_, i) => (c.includes(i) ? 1 / c.length : 0));
  });
}

/** Round-robin: each skill's tasks, in order, to its declaring agents in turn. */
export function roundRobinRouting(m: Matrix, skills: string[][]): Routing {
  const turn = new Map<string, number>();
  return m.tasks.map((s, j) => {
    const c = candidates(m, skills, j);
    const k = turn.get(s) ?? 0;
    turn.set(s, k + 1);
    return oneHot(m.agents.length, c[k % c.length]!);
  });
}

/** Per agent: accuracy over all tasks, then joules per task. */
function overall(m: Matrix, i: number): { acc: number; j: number } {
  return { acc: mean(m.ok[i]!.map(Number)), j: mean(m.joules[i]!) };
}

/** The best single agent in hindsight: the one with the highest sealed accuracy (then the least energy) takes every task. */
export function bestSingle(m: Matrix): number {
  let best = 0;
  for (let i = 1; i < m.agents.length; i++) {
    const a = overall(m, i);
    const b = overall(m, best);
    if (a.acc > b.acc || (a.acc === b.acc && a.j < b.j)) best = i;
  }
  return best;
}

export function singleRouting(m: Matrix, agent: number): Routing {
  return m.tasks.map(() => oneHot(m.agents.length, agent));
}

/** Fixed roles (the CrewAI way): one agent per skill, fixed in advance (`roles`: skill -> agent id); a skill without a role goes to the first declaring agent. */
export function fixedRoleRouting(m: Matrix, skills: string[][], roles: Record<string, string>): Routing {
  return m.tasks.map((s, j) => {
    const r = roles[s] !== undefined ? m.agents.indexOf(roles[s]!) : -1;
    return oneHot(m.agents.length, r >= 0 ? r : candidates(m, skills, j)[0]!);
  });
}

/** The oracle: each task to the cheapest agent that gets it right (the cheapest agent when none does). */
export function oracleRouting(m: Matrix): Routing {
  return m.tasks.map((_, j) => {
    const rows = m.agents.map((_, i) => i);
    const right = rows.filter((i) => m.ok[i]![j]);
    const pool = right.length ? right : rows;
    return oneHot(m.agents.length, pool.reduce((a, b) => (m.joules[b]![j]! < m.joules[a]![j]! ? b : a)));
  });
}

/**
 * The market's routing as observed on the stream: each task goes to the agents that won the
 * stream's tasks of the same skill key in the proportions they won them. `keyOf(j)` is the task's key
 * (its skill, or the niche the coordinator would put its prompt in); `shares` maps key -> agent -> wins.
 * A key the stream never showed falls back to `fallback`.
 */
export function shareRouting(m: Matrix, keyOf: (j: number) => string, shares: Map<string, Map<string, number>>, fallback: Routing): Routing {
  return m.tasks.map((_, j) => {
    const s = shares.get(keyOf(j));
    const w = m.agents.map((a) => s?.get(a) ?? 0);
    const total = w.reduce((a, b) => a + b, 0);
    return total > 0 ? w.map((x) => x / total) : fallback[j]!;
  });
}

/** A routing's figures over the matrix; the interval from `boot` bootstrap resamples of the tasks (seeded). */
export function figures(m: Matrix, r: Routing, seed: number | string, boot = 1000): Figures {
  const acc: number[] = [];
  const jl: number[] = [];
  const sec: number[] = [];
  m.tasks.forEach((_, j) => {
    let a = 0, e = 0, s = 0;
    r[j]!.forEach((w, i) => {
      if (w === 0) return;
      a += w * Number(m.ok[i]![j]);
      e += w * m.joules[i]![j]!;
      s += w * m.seconds[i]![j]!;
    });
    acc.push(a);
    jl.push(e);
    sec.push(s);
  });
  const rng = new Rng(`ecosystem-bootstrap:${seed}`);
  const draws: number[] = [];
  for (let b = 0; b < boot; b++) {
    let t = 0;
    for (let k = 0; k < acc.length; k++) t += acc[rng.int(0, acc.length - 1)]!;
    draws.push(t / acc.length);
  }
  draws.sort((a, b) => a - b);
  const perSkill: Figures["perSkill"] = {};
  for (const s of [...new Set(m.tasks)]) {
    const idx = m.tasks.map((t, j) => (t === s ? j : -1)).filter((j) => j >= 0);
    perSkill[s] = { accuracy: mean(idx.map((j) => acc[j]!)), joulesPerTask: mean(idx.map((j) => jl[j]!)), secondsPerTask: mean(idx.map((j) => sec[j]!)) };
  }
  const accuracy = mean(acc);
  const joulesPerTask = mean(jl);
  return {
    accuracy,
    ci: [draws[Math.floor(0.025 * boot)] ?? accuracy, draws[Math.min(boot - 1, Math.floor(0.975 * boot))] ?? accuracy],
    joulesPerTask,
    secondsPerTask: mean(sec),
    accuracyPerKJ: joulesPerTask > 0 ? (accuracy / joulesPerTask) * 1000 : 0,
    perSkill,
  };
}

/** (fleet - best single) / (gen-0 oracle - best single); undefined when the oracle is no better than the best single agent. */
export function gapClosed(fleet: number, best: number, oracle0: number): number | undefined {
  return oracle0 > best ? (fleet - best) / (oracle0 - best) : undefined;
}

/**
 * Calibration of the market's accuracy estimates on the tasks it would route: `estimate[task][agent]`
 * is the market's expected accuracy for that agent on the task's key. Brier score and expected
 * calibration error (10 equal-width bins), both weighted by the routing.
 */
export function calibration(m: Matrix, r: Routing, estimate: number[][]): { brier: number; ece: number } {
  const bins = Array.from({ length: 10 }, () => ({ w: 0, p: 0, y: 0 }));
  let brier = 0;
  let total = 0;
  m.tasks.forEach((_, j) => {
    r[j]!.forEach((w, i) => {
      if (w === 0) return;
      const p = estimate[j]![i]!;
      const y = Number(m.ok[i]![j]);
      brier += w * (p - y) ** 2;
      total += w;
      const b = bins[Math.min(9, Math.floor(p * 10))]!;
      b.w += w;
      b.p += w * p;
      b.y += w * y;
    });
  });
  const ece = bins.reduce((e, b) => (b.w > 0 ? e + (b.w / total) * Math.abs(b.p / b.w - b.y / b.w) : e), 0);
  return { brier: total > 0 ? brier / total : 0, ece };
}

/** Accuracy of one agent on one skill's tasks (undefined when the matrix has no such agent). */
export function agentSkillAccuracy(m: Matrix, agent: string, skill: string): number | undefined {
  const i = m.agents.indexOf(agent);
  if (i < 0) return undefined;
  return mean(m.tasks.map((s, j) => (s === skill ? Number(m.ok[i]![j]) : -1)).filter((x) => x >= 0));
}
