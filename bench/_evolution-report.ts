/**
 * What one run of the evolution simulation (bench/_evolution-sim.ts) reports, and the summary of a
 * run: how fast each shift was followed, whether the new agents did any of the work, the budgets
 * and niche-protection checks, and the totals (docs/evolution-bench.md).
 */
import type { EvolutionSettings } from "../coordinator/architect/settings.ts";
import { dominantSkill, type Phase, type Skill } from "./_evolution-fleet.ts";

const HOUR = 3600_000;

/** One task won: by an agent born in `bornWindow` (-1: a founder) of generation `generation`. */
export interface Win {
  skill: Skill;
  window: number;
  bornWindow: number;
  generation: number;
}

export interface DecisionRecord {
  window: number;
  at: number;
  kind: string;
  agentId: string;
  nodeId: string;
  niche?: string | undefined;
  reason: string;
  /** Set when the node refused the spawn. */
  refused?: string | undefined;
  /** A spawned child's skills. */
  skills?: readonly string[] | undefined;
  /** The dominant skill of the phase it was decided in. */
  phaseSkill: Skill;
}

export interface WindowReport {
  window: number;
  phase: string;
  tasks: number;
  successes: number;
  energyJ: number;
  accuracy: number;
  joulesPerTask: number;
  successesPerKJ: number;
  /** After the window's decisions. */
  population: number;
  agentsPerSkill: Record<Skill, number>;
  /** skill x device class pairs with a living agent. */
  niches: number;
  skillsCovered: number;
  taken: number;
  heldBack: number;
  heldBackWhy: string[];
  /** Tasks won by agents the architect made (generation > 0). */
  wonByChildren: number;
}

export interface ShiftReport {
  window: number;
  phase: string;
  skill: Skill;
  agentsBefore: number;
  /** Windows from the shift until a child with the skill was spawned (1 = by the first plan after it); null = never within the phase. */
  followedAfter: number | null;
  agentsAtPhaseEnd: number;
  /** Windows from the shift until an agent born since the shift won a task of the skill; null = never within the phase. */
  servedAfter: number | null;
  /** Share of the skill's tasks in the phase won by agents born since the shift. */
  childShare: number;
}

export interface ChildrenReport {
  born: number;
  /** Children that won at least one task. */
  everWon: number;
  /** Children retired without ever winning a task. */
  retiredNeverWon: number;
  /** Tasks won by children, of all tasks. */
  share: number;
}

export interface SimResult {
  settings: EvolutionSettings;
  windows: WindowReport[];
  shifts: ShiftReport[];
  decisions: DecisionRecord[];
  budgets: { spawnsPerHour: number; retiresPerHour: number; maxSpawnsInAnHour: number; maxRetiresInAnHour: number; ok: boolean };
  /** Plans after which a skill had no living agent (must stay empty). */
  lastAgentLost: { window: number; skill: Skill }[];
  children: ChildrenReport;
  /** Spawns for a skill that was not the phase's dominant one (10% of tasks: ~24 per window, half the spawn threshold). */
  minorSpawns: number;
  totals: { tasks: number; successes: number; energyJ: number; accuracy: number; joulesPerTask: number; successesPerKJ: number };
}

export interface RunData {
  settings: EvolutionSettings;
  phases: readonly Phase[];
  perPhase: number;
  windows: WindowReport[];
  decisions: DecisionRecord[];
  wins: readonly Win[];
  lastAgentLost: SimResult["lastAgentLost"];
  foundersWith: (skill: Skill) => number;
  children: Omit<ChildrenReport, "share">;
}

export function summarise(d: RunData): SimResult {
  const { windows, decisions, wins, perPhase } = d;
  const shifts: ShiftReport[] = d.phases.map((phase, i) => {
    const s = i * perPhase;
    const skill = dominantSkill(phase);
    const inPhase = windows.slice(s, s + perPhase);
    const first = decisions.find((x) => x.kind === "spawn" && !x.refused && x.window >= s && x.window < s + perPhase && x.skills?.includes(skill));
    const served = wins.filter((x) => x.skill === skill && x.window >= s && x.window < s + perPhase);
    const byNew = served.filter((x) => x.bornWindow >= s);
    return {
      window: s, phase: phase.name, skill, agentsBefore: s === 0 ? d.foundersWith(skill) : windows[s - 1]!.agentsPerSkill[skill],
      followedAfter: first ? first.window - s + 1 : null, agentsAtPhaseEnd: inPhase.at(-1)!.agentsPerSkill[skill],
      servedAfter: byNew.length ? byNew[0]!.window - s + 1 : null, childShare: served.length ? byNew.length / served.length : 0,
    };
  });
  // Decisions happen at plan instants: the most of a kind within any hour ending at one of them.
  const inAnHour = (kind: string) => Math.max(0, ...decisions.filter((x) => x.kind === kind).map((x) => decisions.filter((y) => y.kind === kind && y.at > x.at - HOUR && y.at <= x.at).length));
  const maxSpawnsInAnHour = inAnHour("spawn");
  const maxRetiresInAnHour = inAnHour("retire");
  const c = d.settings;
  const tasks = windows.reduce((s, r) => s + r.tasks, 0);
  const successes = windows.reduce((s, r) => s + r.successes, 0);
  const energyJ = windows.reduce((s, r) => s + r.energyJ, 0);
  return {
    settings: c, windows, shifts, decisions, lastAgentLost: d.lastAgentLost,
    children: { ...d.children, share: wins.filter((x) => x.generation > 0).length / Math.max(1, wins.length) },
    minorSpawns: decisions.filter((x) => x.kind === "spawn" && !x.refused && !x.niche?.startsWith(`${x.phaseSkill}@`)).length,
    budgets: { spawnsPerHour: c.spawnsPerHour, retiresPerHour: c.retiresPerHour, maxSpawnsInAnHour, maxRetiresInAnHour, ok: maxSpawnsInAnHour <= c.spawnsPerHour && maxRetiresInAnHour <= c.retiresPerHour },
    totals: { tasks, successes, energyJ, accuracy: successes / tasks, joulesPerTask: energyJ / tasks, successesPerKJ: energyJ > 0 ? (successes / energyJ) * 1000 : 0 },
  };
}
