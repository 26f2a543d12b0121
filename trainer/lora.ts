/**
 * LoRA (low-rank adaptation) on a frozen LlamaModel: each adapted weight W [out, in] becomes
 * W + (alpha / rank) * B A with A [rank, in] and B [out, rank], the form llama.cpp applies to a GGUF
 * adapter at scale 1. Only A and B train: `params` holds them, keyed `<weight name>.lora_a|.lora_b`,
 * the tensor names of the adapter GGUF.
 *
 * LoraModel has the LlamaModel surface (forward, forwardBackward, generate, params), so the training
 * loop runs it unchanged; createGrads(lora) gives adapter-only gradient buffers and the backward pass
 * skips every base-weight gradient.
 */
import { ColonyError } from "../common/errors.ts";
import type { Rng } from "../common/random.ts";
import { meta } from "../gguf/meta.ts";
import { GgmlType, type GgufTensor, type GgufValue } from "../gguf/types.ts";
import { writeGgufFile } from "../gguf/writer.ts";
import { ModelErrors } from "./llama/errors.ts";
import { readModelFile } from "./llama/gguf-load.ts";
import type { LoraAdapter } from "./llama/network.ts";
import { LlamaModel, tensorShapes } from "./model.ts";

/** Weight kinds an adapter can target (the token embedding is a lookup, not a matmul: not adaptable). */
export const LORA_TARGET_KINDS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "output"] as const;
export type LoraTargetKind = (typeof LORA_TARGET_KINDS)[number];

export interface LoraOptions {
  /** Rank r of A [r, in] and B [out, r]. */
  rank: number;
  /** Scaling numerator: the update is (alpha / rank) * B A. Default: rank (scale 1). */
  alpha?: number;
  /** Which weights get adapters, in every layer. Default ["attn_q", "attn_v"]. "all" = every kind above. */
  targets?: readonly LoraTargetKind[] | "all";
}

function bad(message: string): ColonyError {
  return new ColonyError(ModelErrors.LORA_OPTIONS_INVALID, message);
}

/** Full weight names targeted by `kinds` in `base`. */
function targetNames(base: LlamaModel, kinds: readonly string[]): string[] {
  const names: string[] = [];
  for (const k of kinds) {
    if (!(LORA_TARGET_KINDS as readonly string[]).includes(k)) throw bad(`unknown LoRA target ${k}; use ${LORA_TARGET_KINDS.join(", ")}`);
    if (k === "output") names.push("output.weight");
    else for (let l = 0; l < base.config.nLayers; l++) names.push(`blk.${l}.${k}.weight`);
  }
  return names;
}

export class LoraModel extends LlamaModel {
  /** The trainable adapter tensors A (`.lora_a`, [rank, in]) and B (`.lora_b`, [out, rank]). */
  declare readonly params: Map<string, Float32Array>;
  readonly base: LlamaModel;
  readonly rank: number;
  readonly alpha: number;
  /** Base weight names that carry an adapter. */
  readonly targets: readonly string[];

  /** Wraps `base` with existing adapter tensors (validated against the base shapes). */
  constructor(base: LlamaModel, adapters: Map<string, Float32Array>, rank: number, alpha: number) {
    super(base.config, base.params);
    if (!Number.isInteger(rank) || rank < 1) throw bad(`rank must be an integer >= 1, got ${rank}`);
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw bad(`alpha must be > 0, got ${alpha}`);
    const shapes = tensorShapes(base.config);
    const map = new Map<string, LoraAdapter>();
    for (const key of adapters.keys()) {
      const m = /^(.*)\.lora_([ab])$/.exec(key);
      if (!m) throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `adapter tensor ${key} is not named <weight>.lora_a|b`);
      const w = m[1]!;
      if (map.has(w)) continue;
      const shape = shapes.get(w);
      if (!shape || shape[0] === 1 || w === "token_embd.weight") throw bad(`adapter for ${w}, which is not an adaptable weight`);
      const a = adapters.get(w + ".lora_a");
      const b = adapters.get(w + ".lora_b");
      if (!a || !b) throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `adapter for ${w} lacks lora_a or lora_b`);
      const [out, inn] = shape;
      if (a.length !== rank * inn || b.length !== out * rank) {
        throw new ColonyError(ModelErrors.MODEL_PARAMS_INVALID, `adapter ${w}: A has ${a.length} values (want ${rank}x${inn}), B ${b.length} (want ${out}x${rank})`);
      }
      map.set(w, { a, b, rank, scale: alpha / rank });
    }
    if (map.size === 0) throw bad("no adapter tensors");
    this.base = base;
    this.rank = rank;
    this.alpha = alpha;
    this.targets = Object.freeze([...map.keys()]);
    this.params = adapters;
    this.net.adapters = map;
  }

  /**
   * Fresh adapters: A ~ normal(0, 1/sqrt(in)), B = 0, so the adapted model starts equal to the base
   * (the usual LoRA initialisation; training moves B first).
   */
  static create(base: LlamaModel, opts: LoraOptions, rng: Rng): LoraModel {
    const rank = opts.rank;
    const alpha = opts.alpha ?? rank;
    if (!Number.isInteger(rank) || rank < 1) throw bad(`rank must be an integer >= 1, got ${rank}`);
    const kinds = opts.targets === "all" ? LORA_TARGET_KINDS : (opts.targets ?? ["attn_q", "attn_v"]);
    if (kinds.length === 0) throw bad("no LoRA targets");
    const shapes = tensorShapes(base.config);
    const adapters = new Map<string, Float32Array>();
    for (const w of targetNames(base, kinds)) {
      const [out, inn] = shapes.get(w)!;
      const a = new Float32Array(rank * inn);
      const sd = 1 / Math.sqrt(inn);
      for (let i = 0; i < a.length; i++) a[i] = rng.normal(0, sd);
      adapters.set(w + ".lora_a", a);
      adapters.set(w + ".lora_b", new Float32Array(out * rank));
    }
    return new LoraModel(base, adapters, rank, alpha);
  }

  /** Gradients of a LoRA model are for its adapter tensors only. */
  protected override gradTarget(name: string): Float32Array | undefined {
    return this.params.get(name);
  }

  /** A plain model with the adapters folded in: W + (alpha/rank) B A (for a standalone GGUF). */
  merge(): LlamaModel {
    const merged = new Map<string, Float32Array>();
    for (const [name, w] of this.base.params) merged.set(name, Float32Array.from(w));
    const shapes = tensorShapes(this.config);
    for (const w of this.targets) {
      const [out, inn] = shapes.get(w)!;
      const ad = this.net.adapters!.get(w)!;
      const dst = merged.get(w)!;
      for (let o = 0; o < out; o++) {
        for (let r = 0; r < this.rank; r++) {
          const bv = ad.scale * ad.b[o * this.rank + r]!;
          if (bv === 0) continue;
          for (let i = 0; i < inn; i++) dst[o * inn + i]! += bv * ad.a[r * inn + i]!;
        }
      }
    }
    return new LlamaModel(this.config, merged);
  }
}

/**
 * Writes the adapters as a GGUF LoRA file llama.cpp loads with `createContext({ lora: ... })`:
 * general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per weight `<name>.lora_a`
 * (ne [in, rank]) and `<name>.lora_b` (ne [rank, out]), F32.
 */
export async function exportLoraGguf(lora: LoraModel, baseModel: LlamaModel, path: string, opts: { name?: string } = {}): Promise<void> {
  if (JSON.stringify(baseModel.config) !== JSON.stringify(lora.base.config)) {
    throw bad("the LoRA was made for a base model of another shape");
  }
  const shapes = tensorShapes(baseModel.config);
  const metadata: Array<[string, GgufValue]> = [
    // llama.cpp refuses an adapter whose architecture differs from the model's.
    ["general.architecture", meta.str("llama")],
    ["general.type", meta.str("adapter")],
    ["general.name", meta.str(opts.name ?? "colony-lora")],
    ["general.alignment", meta.u32(32)],
    ["adapter.type", meta.str("lora")],
    ["adapter.lora.alpha", meta.f32(lora.alpha)],
  ];
  const tensors: GgufTensor[] = [];
  for (const w of lora.targets) {
    const [out, inn] = shapes.get(w)!;
    tensors.push({ name: w + ".lora_a", dims: [inn, lora.rank], type: GgmlType.F32, data: lora.params.get(w + ".lora_a")! });
    tensors.push({ name: w + ".lora_b", dims: [lora.rank, out], type: GgmlType.F32, data: lora.params.get(w + ".lora_b")! });
  }
  await writeGgufFile(path, { metadata, tensors });
}

/** Reads an adapter written by exportLoraGguf back onto `base`. */
export async function loadLoraGguf(path: string, base: LlamaModel): Promise<LoraModel> {
  const { metadata, tensors } = await readModelFile(path);
  if (metadata.get("general.type") !== "adapter" || metadata.get("adapter.type") !== "lora") {
    throw new ColonyError(ModelErrors.MODEL_GGUF_INVALID, `${path} is not a LoRA adapter (general.type / adapter.type)`);
  }
  const alpha = Number(metadata.get("adapter.lora.alpha"));
  const adapters = new Map<string, Float32Array>();
  let rank = 0;
  for (const [name, t] of tensors) {
    adapters.set(name, t.data);
    if (name.endsWith(".lora_a")) rank = t.dims[1] ?? 0;
  }
  return new LoraModel(base, adapters, rank, alpha);
}
