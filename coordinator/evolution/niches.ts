/**
 * Niches of tasks without a skill label, learned from their prompts: a pure, deterministic online
 * clusterer (docs/scoring.md, "Tasks without a skill: niches"). Each prompt becomes a hashed bag of
 * cheap features in a fixed vector; it joins the nearest cluster by cosine when that is similar
 * enough, else it opens a new one (up to `maxClusters`, then the nearest). Centroids move with a
 * running mean. The cluster's key ("~c1", "~c2", ...) is the task's track-record key, so routing of
 * unlabeled tasks is learned from verdicts, like that of labeled ones. The same prompts in the same
 * order always give the same keys; `toJSON`/`fromJSON` carry the state over a restart.
 */

/** Prefix of every niche key: "~" cannot start a skill name ([a-z0-9_-]), so keys never collide. */
export const NICHE_PREFIX = "~c";

export interface NicheOptions {
  /** Length of the hashed feature vector. Default 256. */
  dims: number;
  /**
   * Least cosine similarity to a centroid for a prompt to join its cluster. Measured on the five
   * built-in skills (test/unit/evolution-niches.test.ts): a prompt's similarity to its own skill's
   * centroid is >= 0.92 (two prompts of one skill: >= 0.85), to another skill's <= 0.44 (reverse vs
   * count, whose prompts both carry a random word). Default 0.6.
   */
  threshold: number;
  /** Most clusters; beyond, a prompt joins the nearest one whatever its similarity. Default 32. */
  maxClusters: number;
  /**
   * The running mean counts at most this many prompts, so a centroid keeps following a niche whose
   * prompts drift instead of freezing. Default 1000.
   */
  maxWeight: number;
}

export const DEFAULT_NICHE_OPTIONS: Readonly<NicheOptions> = Object.freeze({ dims: 256, threshold: 0.6, maxClusters: 32, maxWeight: 1000 });

/** Only the first characters are read: features stay cheap for a 48 KiB prompt. */
const MAX_FEATURE_CHARS = 1024;
/** The first word names the operation in most short prompts ("add", "reverse"): it counts most. */
const FIRST_WORD_WEIGHT = 3;
const WORD_WEIGHT = 1;
const SHAPE_WEIGHT = 0.5;
const LENGTH_WEIGHT = 1;

/** 32-bit FNV-1a: a fixed hash, so features land in the same dimension on every machine and run. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function addFeature(v: Float64Array, feature: string, weight: number): void {
  const h = fnv1a(feature);
  // A sign bit from the high half keeps collisions unbiased (the hashing trick).
  v[h % v.length]! += (h & 0x80000000 ? -1 : 1) * weight;
}

/** One character's class in the prompt's shape: a letter, a digit, a space, or itself. */
function shapeOf(c: string): string {
  const k = c.charCodeAt(0);
  // ASCII first: the text is lower-cased, and a regex per character costs more than the rest.
  if (k >= 97 && k <= 122) return "a";
  if (k >= 48 && k <= 57) return "9";
  if (k === 32 || (k >= 9 && k <= 13)) return " ";
  if (k < 128) return c;
  if (/\p{L}/u.test(c)) return "a";
  if (/\p{N}/u.test(c)) return "9";
  if (/\s/.test(c)) return " ";
  return c;
}

/**
 * The unit-length feature vector of a prompt: word tokens (letter runs, digit runs as "#", any other
 * character alone), the first word again with more weight, character trigrams of the prompt's shape
 * (each character as its class, runs collapsed: "add 12 34 =" -> "a 9 9 ="), and a length bucket
 * (log2 of the length).
 */
export function promptFeatures(prompt: string, dims: number): Float64Array {
  const v = new Float64Array(dims);
  const text = prompt.slice(0, MAX_FEATURE_CHARS).toLowerCase();
  const tokens = text.match(/\p{L}+|\p{N}+|[^\s\p{L}\p{N}]/gu) ?? [];
  for (const t of tokens) addFeature(v, `w:${/^\p{N}/u.test(t) ? "#" : t}`, WORD_WEIGHT);
  const first = tokens[0];
  if (first !== undefined) addFeature(v, `f:${/^\p{N}/u.test(first) ? "#" : first}`, FIRST_WORD_WEIGHT);
  let shape = "^";
  for (const c of text.trim()) {
    const s = shapeOf(c);
    if (!shape.endsWith(s)) shape += s;
  }
  shape += "$";
  for (let i = 0; i + 3 <= shape.length; i++) addFeature(v, `s:${shape.slice(i, i + 3)}`, SHAPE_WEIGHT);
  addFeature(v, `l:${Math.floor(Math.log2(prompt.length + 1))}`, LENGTH_WEIGHT);
  const norm = Math.hypot(...v);
  if (norm > 0) for (let i = 0; i < dims; i++) v[i]! /= norm;
  return v;
}

/** Serialized state (`toJSON`): options, the next cluster number, and each cluster's centroid. */
export interface NicheState {
  version: 1;
  dims: number;
  threshold: number;
  maxClusters: number;
  maxWeight: number;
  next: number;
  clusters: { id: number; n: number; centroid: number[] }[];
}

interface Cluster {
  id: number;
  /** Prompts in the running mean, at most maxWeight. */
  n: number;
  centroid: Float64Array;
  norm: number;
}

export interface Assignment {
  key: string;
  /** Cosine similarity to the cluster's centroid before the prompt joined it (1 for a new cluster). */
  similarity: number;
  /** The prompt opened a new cluster. */
  opened: boolean;
}

export class NicheClusterer {
  readonly options: Readonly<NicheOptions>;
  private clusters: Cluster[] = [];
  private next: number;

  /** `firstId`: the number of the first new cluster (a state that could not be restored keeps its numbers' successors). */
  constructor(options: Partial<NicheOptions> = {}, firstId = 1) {
    this.options = Object.freeze({ ...DEFAULT_NICHE_OPTIONS, ...options });
    this.next = Math.max(1, Math.floor(firstId));
  }

  /** How many clusters there are. */
  get size(): number {
    return this.clusters.length;
  }

  /** The nearest cluster of a prompt without learning from it (undefined while there is none). */
  nearest(prompt: string): { key: string; similarity: number } | undefined {
    const best = this.best(promptFeatures(prompt, this.options.dims));
    return best && { key: keyOf(best.cluster.id), similarity: best.similarity };
  }

  /** The prompt's niche key; the prompt joins that cluster (its centroid moves) or opens a new one. */
  assign(prompt: string): Assignment {
    const o = this.options;
    const x = promptFeatures(prompt, o.dims);
    const best = this.best(x);
    if (!best || (best.similarity < o.threshold && this.clusters.length < o.maxClusters)) {
      const c: Cluster = { id: this.next++, n: 1, centroid: x, norm: 1 };
      this.clusters.push(c);
      return { key: keyOf(c.id), similarity: 1, opened: true };
    }
    const c = best.cluster;
    c.n = Math.min(c.n + 1, o.maxWeight);
    for (let i = 0; i < o.dims; i++) c.centroid[i]! += (x[i]! - c.centroid[i]!) / c.n;
    c.norm = Math.hypot(...c.centroid);
    return { key: keyOf(c.id), similarity: best.similarity, opened: false };
  }

  /** Highest cosine similarity; ties go to the older cluster, so the result never depends on more than the state. */
  private best(x: Float64Array): { cluster: Cluster; similarity: number } | undefined {
    let best: { cluster: Cluster; similarity: number } | undefined;
    for (const c of this.clusters) {
      let dot = 0;
      for (let i = 0; i < x.length; i++) dot += x[i]! * c.centroid[i]!;
      const similarity = c.norm > 0 ? dot / c.norm : 0;
      if (!best || similarity > best.similarity) best = { cluster: c, similarity };
    }
    return best;
  }

  toJSON(): NicheState {
    const { dims, threshold, maxClusters, maxWeight } = this.options;
    return { version: 1, dims, threshold, maxClusters, maxWeight, next: this.next, clusters: this.clusters.map((c) => ({ id: c.id, n: c.n, centroid: [...c.centroid] })) };
  }

  /**
   * Restores a state written by `toJSON`; throws on anything else (the caller starts afresh).
   * `options` may change the threshold, maxClusters and maxWeight of a stored state, not its dims.
   */
  static fromJSON(state: unknown, options: Partial<NicheOptions> = {}): NicheClusterer {
    const s = state as Partial<NicheState> | null;
    const okNum = (v: unknown, min: number): v is number => typeof v === "number" && Number.isFinite(v) && v >= min;
    if (!s || s.version !== 1 || !okNum(s.dims, 1) || !okNum(s.threshold, -1) || !okNum(s.maxClusters, 1) || !okNum(s.maxWeight, 1) || !okNum(s.next, 1) || !Array.isArray(s.clusters)) {
      throw new Error("not a niche state (version 1)");
    }
    if (options.dims !== undefined && options.dims !== s.dims) throw new Error(`the stored niches have ${s.dims} dims, not ${options.dims}`);
    const c = new NicheClusterer({ dims: s.dims, threshold: s.threshold, maxClusters: s.maxClusters, maxWeight: s.maxWeight, ...options });
    for (const k of s.clusters) {
      if (!okNum(k?.id, 1) || k.id >= s.next || !okNum(k.n, 1) || !Array.isArray(k.centroid) || k.centroid.length !== s.dims || !k.centroid.every((x) => okNum(x, -Infinity))) {
        throw new Error("a niche cluster in the stored state is malformed");
      }
      const centroid = Float64Array.from(k.centroid);
      c.clusters.push({ id: k.id, n: k.n, centroid, norm: Math.hypot(...centroid) });
    }
    c.next = s.next;
    return c;
  }
}

const keyOf = (id: number): string => `${NICHE_PREFIX}${id}`;
