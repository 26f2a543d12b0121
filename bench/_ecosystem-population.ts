/**
 * The ecosystem benchmark's world (docs/ecosystem.md): the generation-0 fleet (nodes with device
 * profiles and injected probe readings, agents on the seed models plus weaker or narrower ones),
 * the under-trained checkpoint that makes one skill weak for every gen-0 agent, and the three
 * disjoint task splits (stream, gate, sealed) drawn from the skill generators.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Rng } from "../common/random.ts";
import { getSkill, heldOutInstances, trainingInstances } from "../skills/index.ts";
import type { SkillInstance as Instance } from "../skills/types.ts";
import { encodePairs } from "../trainer/dataset.ts";
import { exportModelGguf } from "../trainer/gguf-export.ts";
import { LlamaModel } from "../trainer/model.ts";
import { SEED_CONTEXT, seedTokenizer } from "../trainer/seed-eval.ts";
import { train } from "../trainer/train.ts";

export const SKILLS = ["add", "reverse", "sort", "count", "max"] as const;
export type SkillName = (typeof SKILLS)[number];
/** Every gen-0 agent is weak on it: its specialist is replaced by an under-trained checkpoint. */
export const WEAK_SKILL: SkillName = "add";
/** The seed the distillation gate draws its held-out instances with (trainer/distil/spec.ts default). */
export const GATE_SEED = "distil-gate";

export interface AgentSpec {
  id: string;
  /** A seed model name (models/seed-manifest.json) or "weak-add" (the under-trained checkpoint). */
  model: string;
  skills: SkillName[];
  /** > 0: "poor sampling" (the seed models are trained for greedy decoding). */
  temperature?: number;
  /** What the agent claims; default its model's measured held-out accuracy (the seed manifest's), as the default agents file does. */
  claim?: number;
}

export interface NodeSpec {
  nodeId: string;
  profile: string;
  /** Probe readings pinned over the measured ones (node config `injectProbe`). */
  inject: Record<string, number | boolean>;
  agents: AgentSpec[];
}

/**
 * Four device classes. Every skill has agents of different quality or price, so routing matters;
 * on each device class some agents compete in the same niche (the architect compares agents within
 * a class, docs/evolution.md): the hot agents sample at a temperature the greedy-trained models were
 * not made for, and `count-as-max` is the count model claiming max (narrow and wrong).
 */
export function population(): NodeSpec[] {
  return [
    { nodeId: "pi4", profile: "raspberry-pi-4", inject: { totalMemMB: 3800, cpuLoad: 5 }, agents: [
      { id: "seed-count", model: "seed-count", skills: ["count"] },
      { id: "weak-add", model: "weak-add", skills: ["add"], claim: 0.6 },
      { id: "weak-add-hot", model: "weak-add", skills: ["add"], temperature: 1.0, claim: 0.6 },
    ] },
    { nodeId: "pi5", profile: "raspberry-pi-5", inject: { totalMemMB: 7800, cpuLoad: 5 }, agents: [
      { id: "seed-max-sort", model: "seed-max-sort", skills: ["max", "sort"] },
      { id: "seed-reverse", model: "seed-reverse", skills: ["reverse"] },
      { id: "reverse-hot", model: "seed-reverse", skills: ["reverse"], temperature: 1.2 },
    ] },
    { nodeId: "orin", profile: "jetson-orin-nano", inject: { totalMemMB: 7600, cpuLoad: 5 }, agents: [
      { id: "max-sort-orin", model: "seed-max-sort", skills: ["max", "sort"] },
      { id: "count-orin", model: "seed-count", skills: ["count"] },
    ] },
    { nodeId: "laptop", profile: "x86-laptop", inject: { totalMemMB: 15800, cpuLoad: 10, batteryPercent: 70, charging: false }, agents: [
      { id: "max-sort-laptop", model: "seed-max-sort", skills: ["max", "sort"] },
      { id: "count-as-max", model: "seed-count", skills: ["max"] },
      { id: "reverse-laptop", model: "seed-reverse", skills: ["reverse"] },
    ] },
  ];
}

/** A model file and its content hash (genomes pin it: the coordinator finds parents' models by content). */
export interface ModelFile {
  file: string;
  sha256: string;
  /** Measured held-out accuracy per skill (the seed manifest's). */
  heldOut?: Record<string, number> | undefined;
}

export function sha256Of(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/**
 * The weak add agent: the seed-add shape trained from scratch for only `steps` steps (seed-add had
 * 3000; with seed 1, 600 steps gave 57% and 700 88.5% on 200 held-out add instances). Deterministic for (seed, steps), so it
 * is cached under `cacheDir` and reused by later runs.
 */
export async function weakModel(cacheDir: string, seed: number, steps: number, log: (s: string) => void): Promise<ModelFile> {
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `weak-add-s${seed}-${steps}.gguf`);
  if (!existsSync(file)) {
    const t0 = performance.now();
    const tokenizer = seedTokenizer();
    const config = { vocabSize: tokenizer.vocabSize, dim: 64, nLayers: 3, nHeads: 4, nKvHeads: 4, ffnDim: 192, contextLength: SEED_CONTEXT, normEps: 1e-5, ropeTheta: 10000 };
    const model = LlamaModel.init(config, new Rng(seed));
    const pairs = trainingInstances(getSkill(WEAK_SKILL), 20000, `ecosystem-weak:${seed}`).map((i, n) => ({ prompt: i.prompt, completion: i.answer, line: n + 1 }));
    await train(model, encodePairs(pairs, tokenizer, SEED_CONTEXT), { steps, batchSize: 32, lr: 5e-3, seed, config: { ...config }, progress: false });
    await exportModelGguf(model, tokenizer, file, { name: "weak-add" });
    log(`weak add model: ${steps} steps trained in ${((performance.now() - t0) / 1000).toFixed(0)} s -> ${file}`);
  }
  return { file, sha256: sha256Of(file) };
}

export interface Task extends Instance {
  skill: SkillName;
}

/**
 * The stream of one generation: `n` training-split instances whose mix shifts with the generation
 * (the focus skill takes 40%, the others 15% each; the focus moves one skill per generation, and
 * generation 0 starts on the weak skill).
 */
export function streamOf(seed: number, generation: number, n: number): Task[] {
  const rng = new Rng(`ecosystem-stream-mix:${seed}:${generation}`);
  const focus = SKILLS[generation % SKILLS.length]!;
  const pools = new Map(SKILLS.map((s) => [s, trainingInstances(getSkill(s), n, `ecosystem-stream:${seed}:${generation}:${s}`)] as const));
  const used = new Map(SKILLS.map((s) => [s, 0]));
  const out: Task[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    const skill = r < 0.4 ? focus : SKILLS.filter((s) => s !== focus)[Math.min(3, Math.floor((r - 0.4) / 0.15))]!;
    const k = used.get(skill)!;
    used.set(skill, k + 1);
    out.push({ ...pools.get(skill)![k]!, skill });
  }
  return out;
}

/**
 * The sealed test set: `perSkill` held-out instances per skill that are not in the gate's held-out
 * set (`gatePerSkill` instances drawn with GATE_SEED), so the distillation gate never sees them; the
 * coordinator never sees them either (they are never submitted).
 */
export function sealedSet(seed: number, perSkill: number, gatePerSkill: number): Task[] {
  const out: Task[] = [];
  for (const s of SKILLS) {
    const skill = getSkill(s);
    const gate = new Set(heldOutInstances(skill, gatePerSkill, GATE_SEED).map((i) => i.prompt));
    const pool = heldOutInstances(skill, perSkill + gatePerSkill, `ecosystem-sealed:${seed}`).filter((i) => !gate.has(i.prompt));
    out.push(...pool.slice(0, perSkill).map((i) => ({ ...i, skill: s })));
  }
  return out;
}
