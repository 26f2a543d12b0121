/**
 * Variation operators: pure functions (parent genome, seeded random, material) -> child genome.
 * Each names itself, so a lineage says how every child differs from its parent. The child's id is
 * made here too: `{root}-g{generation}-{8 hex of its genome hash}` (ids are topic-safe, <= 128).
 *
 * - sampling: nudges temperature, top-k and top-p (a greedy parent gets a little temperature);
 * - fewshot: prepends up to `maxExemplars` of the parent's verified successes to its prompt
 *   template, as worked examples (for real models that benefit from them: opt in per fleet,
 *   `evolution.operators`, since a tiny character-level model is thrown off by them);
 * - adapter: swaps the LoRA adapter for another known on the same base model, or adds one;
 * - distilled: a new model from the collective mind (issue 10): the genome with that model.
 */
import { genomeHash, type Genome } from "../../common/genome.ts";
import type { Rng } from "../../common/random.ts";

export type Operator = "sampling" | "fewshot" | "adapter" | "distilled";

export interface Material {
  /** The parent's verified successes, newest last (exemplars.ts). */
  exemplars?: readonly { prompt: string; output: string }[];
  /** LoRA adapters known to fit the parent's base model (references with #sha256=). */
  adapters?: readonly string[];
  /** A distilled model reference for the `distilled` operator. */
  model?: string;
  /**
   * The parent's measured success per skill (its fitness): the child claims these instead of the
   * parent's own claim, so it starts from what its parent proved, as a claim worth the market's
   * PRIOR_STRENGTH (2) observations and capped at CLAIM_CAP (docs/scoring.md), then earns its record.
   */
  claims?: Readonly<Record<string, number>>;
  maxExemplars?: number;
}

export interface Child {
  genome: Genome;
  hash: string;
  variation: Operator;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** Which operators can apply to this parent with this material (the architect picks among them). */
export function applicable(parent: Genome, m: Material, enabled: readonly Operator[]): Operator[] {
  return enabled.filter((op) => {
    if (op === "fewshot") return (m.exemplars?.length ?? 0) > 0 && parent.promptTemplate.length < 6000;
    if (op === "adapter") return (m.adapters ?? []).some((a) => a !== parent.adapter);
    if (op === "distilled") return m.model !== undefined && m.model !== parent.model;
    return true;
  });
}

export function childId(parent: Genome, generation: number, hash: string): string {
  const root = parent.id.replace(/-g\d+-[0-9a-f]{8}$/, "").slice(0, 96);
  return `${root}-g${generation}-${hash.slice(0, 8)}`;
}

function sampling(parent: Genome, rng: Rng): Genome {
  const s = parent.sampling;
  const temperature = s.temperature === 0 ? round(0.1 + 0.4 * rng.next()) : round(clamp(s.temperature * (0.6 + 0.8 * rng.next()), 0, 2));
  const topK = rng.next() < 0.5 ? rng.int(5, 60) : s.topK;
  const topP = rng.next() < 0.5 ? round(clamp(0.7 + 0.3 * rng.next(), 0.5, 1)) : s.topP;
  return { ...parent, sampling: { ...s, temperature, ...(topK !== undefined ? { topK } : {}), ...(topP !== undefined ? { topP } : {}) } };
}

function fewshot(parent: Genome, rng: Rng, m: Material): Genome {
  const pool = [...(m.exemplars ?? [])];
  const n = Math.min(pool.length, m.maxExemplars ?? 3);
  const picked: { prompt: string; output: string }[] = [];
  for (let i = 0; i < n; i++) picked.push(pool.splice(rng.int(0, pool.length - 1), 1)[0]!);
  // The examples are worked the way the model is asked: the template around the prompt, then the answer.
  const shots = picked.map((e) => parent.promptTemplate.split("{prompt}").join(e.prompt) + e.output).join("\n");
  return { ...parent, promptTemplate: `${shots}\n${parent.promptTemplate}`.slice(0, 8192) };
}

function adapter(parent: Genome, rng: Rng, m: Material): Genome {
  const choices = (m.adapters ?? []).filter((a) => a !== parent.adapter);
  return { ...parent, adapter: choices[rng.int(0, choices.length - 1)]! };
}

/**
 * The child of `parent` by `op`, generation `generation`. It claims what its parent proved (`claims`),
 * else its parent's claim; its record starts empty, so the market's exploration tries it (a node tries
 * an agent it has never bid with first: node/bidder.ts) and its own verdicts decide from there. (With
 * a neutral claim a child of a 0.86 parent started at 0.65 and, in the evolution benchmark, won almost
 * nothing before it was retired as idle.)
 */
export function vary(parent: Genome, op: Operator, generation: number, rng: Rng, m: Material = {}): Child {
  let g: Genome;
  if (op === "sampling") g = sampling(parent, rng);
  else if (op === "fewshot") g = fewshot(parent, rng, m);
  else if (op === "adapter") g = adapter(parent, rng, m);
  else g = { ...parent, model: m.model ?? parent.model, adapter: undefined };
  const { adapter: a, ...rest } = g;
  const body: Genome = { ...rest, ...(a !== undefined ? { adapter: a } : {}), parent: parent.id, accuracyPrior: inheritedClaim(parent, m.claims) };
  const hash = genomeHash(body);
  return { genome: { ...body, id: childId(parent, generation, hash) }, hash, variation: op };
}

/** The parent's claim with its measured skills replaced by what it proved (rounded: claims are not records). */
function inheritedClaim(parent: Genome, claims: Readonly<Record<string, number>> | undefined): Genome["accuracyPrior"] {
  const measured = Object.entries(claims ?? {}).filter(([skill]) => parent.skills.includes(skill));
  if (measured.length === 0) return parent.accuracyPrior;
  const base = typeof parent.accuracyPrior === "number" ? Object.fromEntries(parent.skills.map((s) => [s, parent.accuracyPrior as number])) : { ...parent.accuracyPrior };
  for (const [skill, c] of measured) base[skill] = Math.round(c * 1000) / 1000;
  return base;
}
