/**
 * Where a distillation job trains (docs/mind.md, "Trainer nodes"): the coordinator's host, or an
 * online node that offers the `trainer` capability and quotes for it, like a bid for a task.
 *
 * - `estimateWork` (pure): the job's compute from its spec and inputs, in FLOPs (6 x parameters x
 *   tokens for training, 2 x parameters x tokens for verified sampling), with parameters read off
 *   the strongest parent's size (4 bytes each: the f32 GGUF files the trainer writes; a quantized
 *   model is priced low, for every candidate alike) and tokens from the experiences' lengths;
 * - `Trainers.choose`: asks each trainer node for a quote (`train-quote`, within `quoteWindowMs`),
 *   prices this host the same way from its own measured speed (trainer/throughput.ts, measured once
 *   in a child process), and takes the fastest; a tie stays here (nothing to move).
 */
import { readFile, stat } from "node:fs/promises";
import type { Counters } from "../../common/counters.ts";
import type { Logger } from "../../common/logger.ts";
import type { TrainQuote, TrainWork } from "../../common/protocol.ts";
import type { DistilSpecInput } from "../../trainer/distil/spec.ts";
import { measureInChild, type Throughput } from "../../trainer/throughput.ts";
import { priceJob } from "../../trainer/price.ts";
import type { Commands } from "../evolution/commands.ts";
import type { Registry } from "../registry.ts";
import type { ServedFiles } from "./served-files.ts";
import type { MindSettings } from "./settings.ts";

export interface WorkInputs {
  steps: number;
  batch: number;
  /** Mean characters of prompt + completion over the experiences (character-level seeds: ~tokens). */
  meanChars: number;
  /** Verified sampling: prompts per skill x skills x candidates x sampling parents; 0 without. */
  samples: number;
  /** The parents' models; the largest sets the parameter count. */
  models: { sha256: string; bytes: number }[];
  /** The experiences file (fetched by a trainer node). */
  experiencesBytes: number;
}

/** 4 bytes per parameter (f32). */
const BYTES_PER_PARAMETER = 4;

export function estimateWork(w: WorkInputs): TrainWork {
  const bytes = Math.max(0, ...w.models.map((m) => m.bytes));
  const parameters = bytes / BYTES_PER_PARAMETER;
  const tokens = Math.min(4096, Math.max(1, w.meanChars + 2));
  return {
    trainFlops: 6 * parameters * w.steps * w.batch * tokens,
    sampleFlops: 2 * parameters * w.samples * tokens,
    // The experiences there and a child of the strongest parent's size back.
    transferBytes: w.experiencesBytes + bytes,
    models: w.models.map((m) => ({ sha256: m.sha256, bytes: m.bytes })),
  };
}

/** The work of a job from its spec (the coordinator's paths): the experiences' mean length, the sampling, the parents' model sizes. */
export async function jobWork(spec: DistilSpecInput, parents: readonly { modelSha: string; modelFile: string }[]): Promise<TrainWork> {
  const text = await readFile(spec.experiences, "utf8");
  const chars = text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const e = JSON.parse(l) as { prompt?: string; output?: string };
      return (e.prompt?.length ?? 0) + (e.output?.length ?? 0);
    });
  const meanChars = chars.length ? chars.reduce((a, b) => a + b, 0) / chars.length : 16;
  const samples = spec.sampling ? (spec.sampling.prompts ?? 200) * spec.skills.length * (spec.sampling.candidates ?? 4) * spec.parents.length : 0;
  const models = await Promise.all(parents.map(async (p) => ({ sha256: p.modelSha, bytes: (await stat(p.modelFile)).size })));
  return estimateWork({ steps: spec.steps ?? 300, batch: spec.batch ?? 32, meanChars, samples, models, experiencesBytes: Buffer.byteLength(text) });
}

/** `asked`: trainer nodes were asked for quotes (the job's record then says why it stayed here). */
export type Placement = { where: "coordinator"; seconds?: number; why: string; asked?: true } | { where: "node"; nodeId: string; quote: TrainQuote; why: string };

export interface TrainersOptions {
  registry: Pick<Registry, "list">;
  /** The model server's source: a placed job's experiences are offered there to its trainer. */
  served: ServedFiles;
  commands: Pick<Commands, "send"> | undefined;
  settings: Pick<MindSettings, "trainOn" | "threads">;
  counters: Counters;
  logger: Logger;
  /** This host's training speed; default measured once in a child process. Tests inject. */
  measure?: () => Promise<Throughput>;
}

export class Trainers {
  private own: Promise<Throughput> | undefined;

  readonly served: ServedFiles;

  constructor(private readonly o: TrainersOptions) {
    this.served = o.served;
  }

  /** Online nodes whose status offers training. */
  candidates(): string[] {
    return this.o.registry.list().filter((n) => n.online && n.status?.trainer).map((n) => n.nodeId).sort();
  }

  async choose(jobId: string, work: TrainWork, quoteWindowMs: number): Promise<Placement> {
    const nodes = this.o.settings.trainOn === "coordinator" || !this.o.commands ? [] : this.candidates();
    if (nodes.length === 0) return { where: "coordinator", why: this.o.settings.trainOn === "coordinator" ? "mind.trainOn is \"coordinator\"" : "no online node offers training" };
    const commands = this.o.commands!;
    const asked = nodes.map(async (nodeId) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((r) => (timer = setTimeout(r, quoteWindowMs, undefined)));
      const ack = await Promise.race([commands.send(nodeId, { kind: "train-quote", agentId: jobId, work }), timeout]).finally(() => clearTimeout(timer));
      if (ack && ack.status === "quoted" && "quote" in ack && ack.quote) return { nodeId, quote: ack.quote };
      if (ack && ack.status === "refused") this.o.logger.info({ jobId, nodeId, code: "error" in ack ? ack.error?.code : undefined }, "trainer node declined to quote");
      return undefined;
    });
    const ownSeconds = this.o.settings.trainOn === "nodes" ? undefined : this.ownPrice(work);
    const [quotes, own] = await Promise.all([Promise.all(asked), ownSeconds]);
    const got = quotes.filter((q): q is { nodeId: string; quote: TrainQuote } => q !== undefined).sort((a, b) => a.quote.seconds - b.quote.seconds || a.nodeId.localeCompare(b.nodeId));
    this.o.counters.inc("mind.trainers.quotes", got.length);
    const best = got[0];
    const list = got.map((q) => `${q.nodeId} ${q.quote.seconds.toFixed(1)} s`).join(", ") || "none";
    if (!best) return { where: "coordinator", ...(own !== undefined ? { seconds: own } : {}), why: `no trainer node quoted (asked ${nodes.join(", ")})`, asked: true };
    if (own !== undefined && own <= best.quote.seconds) return { where: "coordinator", seconds: own, why: `this host's ${own.toFixed(1)} s beats the quotes (${list})`, asked: true };
    return { where: "node", nodeId: best.nodeId, quote: best.quote, why: `fastest quote of ${list}${own !== undefined ? ` vs this host's ${own.toFixed(1)} s` : ""}` };
  }

  /** This host's price for the work (no transfer), or undefined when its speed cannot be measured. */
  private async ownPrice(work: TrainWork): Promise<number | undefined> {
    this.own ??= (this.o.measure ?? (() => measureInChild({ threads: this.o.settings.threads })))();
    try {
      const t = await this.own;
      return priceJob({ ...work, transferBytes: 0 }, { flopsPerSecond: t.flopsPerSecond }, () => true).seconds;
    } catch (err) {
      this.own = undefined;
      this.o.logger.warn({ err: { message: (err as Error).message } }, "measuring this host's training speed failed");
      return undefined;
    }
  }
}
