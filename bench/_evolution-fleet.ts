/**
 * The simulated fleet of bench/evolution.ts (docs/evolution-bench.md): device classes, founders and
 * the shifting task stream. Numbers here are the simulation's assumptions, not measurements.
 *
 * Devices. Power comes from the real profiles (firmware-configs/*.json, through the node's own cost
 * model, node/cost-model.ts: joules = (active W at the thread count - idle W) x compute time). Speed
 * is assumed: a calibration per device class for a seed-sized model (a ~1 MB character-level GGUF),
 * scaled from the Pi 4 by the usual single-board ratios (Pi 5 ~2.5x, Orin Nano with the GPU ~5x,
 * a laptop ~7x). What one task costs (32-character prompt, 16 generated tokens; asleep adds the
 * model's load, paid in time and joules), from estimateCost:
 *
 *   class              awake             asleep
 *   raspberry-pi-4     483 ms  1.74 J   1383 ms  4.98 J
 *   raspberry-pi-5     193 ms  0.93 J    593 ms  2.85 J
 *   jetson-orin-nano    93 ms  0.93 J    693 ms  6.93 J
 *   x86-laptop          68 ms  1.09 J    318 ms  5.09 J
 *
 * Agents. A genome (GenomeSchema, so the real variation operators work on it) and a hidden true
 * accuracy per skill; the market only sees outcomes sampled from it. A child's hidden accuracy is
 * its parent's plus N(-0.03, 0.05) per skill, clamped to [0.05, 0.99]: mostly a little worse,
 * better about 27% of the time (P(N(-0.03, 0.05) > 0)), so selection has something to do.
 */
import { readFileSync } from "node:fs";
import { GenomeSchema, type Genome } from "../common/genome.ts";
import type { Rng } from "../common/random.ts";
import type { Calibration } from "../node/cost-model.ts";
import type { DeviceProfile } from "../node/profile.ts";

export const SKILLS = ["add", "count", "max", "sort", "reverse"] as const;
export type Skill = (typeof SKILLS)[number];

export interface DeviceClass {
  name: string;
  profile: DeviceProfile;
  calibration: Omit<Calibration, "threads">;
  threads: number;
  /** Agents one node of this class hosts; a spawn beyond it is refused (POPULATION_LIMIT). */
  maxAgents: number;
}

// A profile file as shipped; the node validates it (node/profile.ts), the simulation only reads it.
const profile = (name: string): DeviceProfile => JSON.parse(readFileSync(new URL(`../firmware-configs/${name}.json`, import.meta.url), "utf8")) as DeviceProfile;

export function deviceClasses(): DeviceClass[] {
  return [
    { name: "raspberry-pi-4", profile: profile("raspberry-pi-4"), threads: 4, maxAgents: 2, calibration: { loadMs: 900, promptTokensPerS: 400, genTokensPerS: 40, charsPerToken: 1, at: 0 } },
    { name: "raspberry-pi-5", profile: profile("raspberry-pi-5"), threads: 4, maxAgents: 3, calibration: { loadMs: 400, promptTokensPerS: 1000, genTokensPerS: 100, charsPerToken: 1, at: 0 } },
    { name: "jetson-orin-nano", profile: profile("jetson-orin-nano"), threads: 6, maxAgents: 4, calibration: { loadMs: 600, promptTokensPerS: 2500, genTokensPerS: 200, charsPerToken: 1, at: 0 } },
    // "auto" threads on a 4-core laptop.
    { name: "x86-laptop", profile: profile("x86-laptop"), threads: 4, maxAgents: 6, calibration: { loadMs: 250, promptTokensPerS: 3000, genTokensPerS: 280, charsPerToken: 1, at: 0 } },
  ];
}

/** Six nodes: two Pi 4, two Pi 5, an Orin Nano and a laptop (20 agent places in all). */
export const NODES: readonly { nodeId: string; deviceClass: string }[] = [
  { nodeId: "pi4-a", deviceClass: "raspberry-pi-4" },
  { nodeId: "pi4-b", deviceClass: "raspberry-pi-4" },
  { nodeId: "pi5-a", deviceClass: "raspberry-pi-5" },
  { nodeId: "pi5-b", deviceClass: "raspberry-pi-5" },
  { nodeId: "orin-a", deviceClass: "jetson-orin-nano" },
  { nodeId: "laptop-a", deviceClass: "x86-laptop" },
];

/** The seed specialists (models/seed-manifest.json), with invented hidden accuracies below 1 so children can beat them. */
export const FOUNDERS: readonly { nodeId: string; genome: Genome; accuracy: Partial<Record<Skill, number>> }[] = [
  founder("pi4-a", "seed-add", ["add"], { add: 0.86 }),
  founder("pi5-a", "seed-count", ["count"], { count: 0.8 }),
  founder("orin-a", "seed-max-sort", ["max", "sort"], { max: 0.88, sort: 0.78 }),
  founder("pi4-b", "seed-reverse", ["reverse"], { reverse: 0.82 }),
];

function founder(nodeId: string, id: string, skills: Skill[], accuracy: Partial<Record<Skill, number>>) {
  // The claim is the (rounded) held-out figure, as a seed manifest gives it.
  return { nodeId, accuracy, genome: GenomeSchema.parse({ id, model: `models/${id}.gguf`, skills, contextSize: 256, accuracyPrior: accuracy }) };
}

/** Shape of the child's hidden accuracy: documented above and in docs/evolution-bench.md. */
export const CHILD_DELTA = { mean: -0.03, sd: 0.05, min: 0.05, max: 0.99 };

export function childAccuracy(parent: Partial<Record<Skill, number>>, rng: Rng): Partial<Record<Skill, number>> {
  const out: Partial<Record<Skill, number>> = {};
  for (const s of SKILLS) {
    const p = parent[s];
    if (p !== undefined) out[s] = Math.min(CHILD_DELTA.max, Math.max(CHILD_DELTA.min, p + rng.normal(CHILD_DELTA.mean, CHILD_DELTA.sd)));
  }
  return out;
}

export interface Phase {
  name: string;
  /** Share of each skill in the phase's tasks (sums to 1). */
  mix: Record<Skill, number>;
}

/** The demand moves: mostly add, then mostly reverse, then mostly sort (60% of tasks, 10% each other). */
export function shiftingPhases(): Phase[] {
  const mostly = (skill: Skill): Phase => ({ name: `mostly ${skill}`, mix: Object.fromEntries(SKILLS.map((s) => [s, s === skill ? 0.6 : 0.1])) as Record<Skill, number> });
  return [mostly("add"), mostly("reverse"), mostly("sort")];
}

export function dominantSkill(p: Phase): Skill {
  return SKILLS.reduce((a, b) => (p.mix[b] > p.mix[a] ? b : a));
}
