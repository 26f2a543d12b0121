/**
 * What the worker process runs (worker.ts): curate -> verified sampling -> train -> export -> gate.
 * It runs in the worker, never in the coordinator's event loop: training holds a core for minutes.
 *
 * Resume: the dataset is written to the job dir with the key of the spec parts that shaped it, and
 * the trainer checkpoints to `<jobDir>/train.ckpt`; a new start of the same job (same dir, same
 * spec) reuses the dataset and continues from the checkpoint (trainer/train.ts resumeFrom), after a
 * cancel or a crash alike.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Llama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { Rng } from "../../common/random.ts";
import { meta } from "../../gguf/meta.ts";
import { hasSkill, skillAlphabet } from "../../skills/index.ts";
import { encodePairs, type Example } from "../dataset.ts";
import { exportModelGguf, loadModelGguf } from "../gguf-export.ts";
import { setKernelThreads } from "../kernels.ts";
import type { LlamaConfig } from "../llama/config.ts";
import { exportLoraGguf, LoraModel } from "../lora.ts";
import { LlamaModel } from "../model.ts";
import { Tokenizer } from "../tokenizer.ts";
import { train, type Trainable } from "../train.ts";
import { canonicalJsonl, curate, experienceCandidate, parseExperienceLines, type DistilPair } from "./curate.ts";
import { DistilErrors } from "./errors.ts";
import { gateSets, runGate } from "./gate.ts";
import { verifiedSamples } from "./sample.ts";
import type { DistilProgress, DistilResult, DistilSpec, TrainOutput } from "./spec.ts";
import type { GateReport } from "../../common/gate-report.ts";
import { checkModel } from "../../gguf/llama-check.ts";
import { checkLoraAdapter } from "../../gguf/lora-check.ts";
import { readGgufHeaderFromFile } from "../../gguf/reader.ts";

export interface PipelineContext {
  llama: Llama;
  signal: AbortSignal;
  onProgress: (p: DistilProgress) => void;
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

function cancelled(what: string): ColonyError {
  return new ColonyError(DistilErrors.DISTIL_CANCELLED, `distillation cancelled during ${what}`);
}

interface Dataset {
  key: string;
  sha256: string;
  counts: Record<string, number>;
  pairs: DistilPair[];
}

/** The parents' claimed skills among the job's (all of them when a parent claims none). */
function claimed(spec: DistilSpec, p: DistilSpec["parents"][number]): string[] {
  return p.skills === undefined ? [...spec.skills] : spec.skills.filter((s) => p.skills!.includes(s));
}

async function buildDataset(spec: DistilSpec, ctx: PipelineContext, exclude: Map<string, Set<string>>, experiencesText: string): Promise<Dataset> {
  const key = sha256(JSON.stringify({ experiences: sha256(experiencesText), parents: spec.parents, skills: spec.skills, seed: spec.seed, curate: spec.curate, sampling: spec.sampling ?? null, gate: spec.gate }));
  const dataFile = path.join(spec.jobDir, "dataset.jsonl");
  const metaFile = path.join(spec.jobDir, "dataset.json");
  if (existsSync(metaFile) && existsSync(dataFile)) {
    const m = JSON.parse(readFileSync(metaFile, "utf8")) as Omit<Dataset, "pairs">;
    const text = readFileSync(dataFile, "utf8");
    if (m.key === key && sha256(text) === m.sha256) {
      const pairs = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as DistilPair);
      return { ...m, pairs };
    }
  }
  ctx.onProgress({ phase: "curate", step: 0, total: 1, loss: null, tokensPerSecond: 0 });
  const experiences = parseExperienceLines(experiencesText, spec.experiences);
  const candidates = experiences.map(experienceCandidate);
  const sampled = spec.sampling ? spec.skills.filter(hasSkill) : [];
  if (spec.sampling && sampled.length > 0 && spec.sampling.prompts > 0) {
    const s = spec.sampling;
    const parents = spec.parents.map((p) => ({ agentId: p.agentId, modelFile: p.modelFile, skills: claimed(spec, p).filter(hasSkill) }));
    try {
      const r = await verifiedSamples(ctx.llama, {
        parents, skills: sampled, candidates: s.candidates, temperature: s.temperature, prompts: s.prompts, seed: spec.seed, threads: spec.threads, signal: ctx.signal,
        onProgress: (step, total) => ctx.onProgress({ phase: "sample", step, total, loss: null, tokensPerSecond: 0 }),
      });
      candidates.push(...r.candidates);
    } catch (err) {
      if (ctx.signal.aborted) throw cancelled("verified sampling");
      throw err;
    }
  }
  // Experiences count for the skills their agent claims.
  const claims = new Map(spec.parents.map((p) => [p.agentId, new Set(claimed(spec, p))]));
  const own = candidates.filter((c) => claims.get(c.agentId)?.has(c.skill) !== false);
  const cur = curate(own, {
    skills: spec.skills, agents: new Set(spec.parents.map((p) => p.agentId)), exclude, seed: spec.seed, balanceFactor: spec.curate.balanceFactor,
    ...(spec.curate.perSkillCap !== undefined ? { perSkillCap: spec.curate.perSkillCap } : {}),
  });
  if (cur.pairs.length === 0) throw new ColonyError(DistilErrors.DISTIL_NO_DATA, `nothing to train on: ${JSON.stringify(cur.dropped)}`);
  const text = canonicalJsonl(cur.pairs);
  writeFileSync(dataFile, text);
  writeFileSync(metaFile, JSON.stringify({ key, sha256: cur.sha256, counts: cur.counts, dropped: cur.dropped }) + "\n");
  return { key, sha256: cur.sha256, counts: cur.counts, pairs: cur.pairs };
}

/** Encodes pairs, leaving out the few that do not fit the context instead of failing the job. */
function encodeFitting(pairs: readonly DistilPair[], tokenizer: Tokenizer, context: number): Example[] {
  const out: Example[] = [];
  for (const [i, p] of pairs.entries()) {
    try {
      out.push(...encodePairs([{ prompt: p.prompt, completion: p.completion, line: i + 1 }], tokenizer, context));
    } catch (err) {
      if ((err as ColonyError).code !== "TRAIN_EXAMPLE_TOO_LONG") throw err;
    }
  }
  return out;
}

/**
 * Stage "gate" opens a child this process did not make (a trainer node uploaded it): the model
 * gate (gguf/llama-check.ts, the one every node runs) must pass before llama.cpp opens the file.
 */
async function checkForeignChild(spec: DistilSpec, childFile: string, baseFile: string): Promise<void> {
  try {
    const header = await readGgufHeaderFromFile(childFile);
    if (spec.mode === "lora") checkLoraAdapter(header, await readGgufHeaderFromFile(baseFile));
    else checkModel(header);
  } catch (err) {
    const e = err instanceof ColonyError ? err : new ColonyError(DistilErrors.DISTIL_CHILD_INVALID, String((err as Error)?.message ?? err));
    throw new ColonyError(DistilErrors.DISTIL_CHILD_INVALID, `the child to gate is not a model llama.cpp may open (${e.code}): ${e.message}`.slice(0, 2000));
  }
}

export async function runDistilPipeline(spec: DistilSpec, ctx: PipelineContext): Promise<DistilResult | TrainOutput> {
  mkdirSync(spec.jobDir, { recursive: true });
  setKernelThreads(spec.threads);
  let experiencesText: string;
  try {
    experiencesText = readFileSync(spec.experiences, "utf8");
  } catch (err) {
    throw new ColonyError(DistilErrors.DISTIL_EXPERIENCES_INVALID, `cannot read experiences ${spec.experiences}: ${(err as Error).message}`);
  }
  const experiences = parseExperienceLines(experiencesText, spec.experiences);
  const sets = gateSets(spec.skills, spec.gate.perSkill, spec.gate.seed, experiences);
  const exclude = new Map(sets.sets.map((s) => [s.skill, new Set(s.instances.map((i) => i.prompt))]));
  const data = spec.stage === "gate" ? undefined : await buildDataset(spec, ctx, exclude, experiencesText);

  // The strongest parent: claims most of the job's skills, then the most parameters.
  const loaded = [];
  for (const p of spec.parents) {
    try {
      loaded.push({ p, ...(await loadModelGguf(p.modelFile)), sha: sha256(readFileSync(p.modelFile)) });
    } catch (err) {
      throw new ColonyError(DistilErrors.DISTIL_PARENT_INVALID, `parent ${p.agentId}: cannot read ${p.modelFile}: ${(err as Error).message}`);
    }
  }
  loaded.sort((a, b) => claimed(spec, b.p).length - claimed(spec, a.p).length || b.model.parameterCount - a.model.parameterCount);
  const strongest = loaded[0]!;
  if (spec.stage === "gate") {
    const childFile = spec.out!;
    await checkForeignChild(spec, childFile, strongest.p.modelFile);
    const t = spec.trained!;
    const gate = await gateChild(spec, ctx, sets, childFile, strongest.p.modelFile, loaded.map((l) => l.model.config.contextLength), t.tokensPerSecond);
    return { childFile, format: spec.mode === "lora" ? "gguf-lora" : "gguf-model", ...(spec.mode === "lora" ? { base: strongest.p.modelFile } : {}), ...t, gate };
  }
  if (!data) throw new Error("unreachable: a training stage without a dataset");
  const sameVocab = loaded.every((l) => JSON.stringify(l.tokenizer.tokens) === JSON.stringify(strongest.tokenizer.tokens));

  let model: Trainable;
  let tokenizer: Tokenizer;
  let config: Record<string, unknown>;
  let init: string;
  let weightDecay: number | undefined;
  if (spec.mode === "lora") {
    tokenizer = strongest.tokenizer;
    const lora = LoraModel.create(strongest.model, { rank: spec.loraRank, targets: "all" }, new Rng(spec.seed));
    model = lora;
    init = `lora:${strongest.sha}`;
    config = { ...strongest.model.config, lora: { rank: spec.loraRank, alpha: lora.alpha, targets: "all", baseSha256: strongest.sha } };
    weightDecay = 0;
  } else if (sameVocab) {
    tokenizer = strongest.tokenizer;
    model = strongest.model;
    init = `warm:${strongest.sha}`;
    config = { ...strongest.model.config };
  } else {
    tokenizer = Tokenizer.fromTexts([skillAlphabet().join(""), ...data.pairs.flatMap((p) => [p.prompt, p.completion])]);
    const c: LlamaConfig = { ...strongest.model.config, vocabSize: tokenizer.vocabSize };
    model = LlamaModel.init(c, new Rng(spec.seed));
    init = "scratch";
    config = { ...c };
  }
  const contextLength = strongest.model.config.contextLength;
  const examples = encodeFitting(data.pairs, tokenizer, contextLength);
  if (examples.length === 0) throw new ColonyError(DistilErrors.DISTIL_NO_DATA, `no training pair fits the context of ${contextLength} tokens`);

  const ckpt = path.join(spec.jobDir, "train.ckpt");
  let last = 0;
  let trained = 0;
  const t0 = performance.now();
  const r = await train(model, examples, {
    steps: spec.steps, batchSize: spec.batch, lr: spec.lr, seed: spec.seed,
    ...(weightDecay !== undefined ? { weightDecay } : {}),
    // The dataset and the starting weights are part of the run's identity: a resume on other data is refused.
    config: { ...config, distil: { init, dataset: data.sha256 } },
    checkpointPath: ckpt, checkpointEvery: spec.checkpointEvery,
    ...(existsSync(ckpt) ? { resumeFrom: ckpt } : {}),
    progress: false, signal: ctx.signal,
    onStep: (s) => {
      trained += s.tokens;
      const now = performance.now();
      if (now - last < 100 && s.step < spec.steps) return;
      last = now;
      ctx.onProgress({ phase: "train", step: s.step, total: spec.steps, loss: s.loss, tokensPerSecond: Math.round((trained * 1000) / Math.max(1, now - t0)) });
    },
  });
  if (ctx.signal.aborted && r.step < spec.steps) throw cancelled(`training at step ${r.step} of ${spec.steps} (checkpoint ${ckpt})`);
  const tokensPerSecond = r.seconds > 0 ? Math.round(r.tokens / r.seconds) : 0;

  ctx.onProgress({ phase: "export", step: r.step, total: spec.steps, loss: r.losses.at(-1) ?? null, tokensPerSecond });
  const childFile = spec.out ?? path.join(spec.jobDir, spec.mode === "lora" ? "child.lora.gguf" : "child.gguf");
  if (spec.mode === "lora") {
    await exportLoraGguf(model as LoraModel, strongest.model, childFile, { name: `distil-${spec.jobId}` });
  } else {
    await exportModelGguf(model as LlamaModel, tokenizer, childFile, {
      name: `distil-${spec.jobId}`,
      extraMetadata: [["colony.skills", meta.strs([...spec.skills])], ["colony.distil.parents", meta.strs(spec.parents.map((p) => p.agentId))], ["colony.distil.dataset", meta.str(data.sha256)]],
    });
  }

  const out: TrainOutput = {
    childFile, format: spec.mode === "lora" ? "gguf-lora" : "gguf-model",
    ...(spec.mode === "lora" ? { base: strongest.p.modelFile } : {}),
    datasetSha256: data.sha256, counts: data.counts, steps: r.step,
    seconds: Number(r.seconds.toFixed(3)), tokensPerSecond,
  };
  if (spec.stage === "train") return out;
  const gate = await gateChild(spec, ctx, sets, childFile, strongest.p.modelFile, loaded.map((l) => l.model.config.contextLength), tokensPerSecond);
  return { ...out, gate };
}

async function gateChild(spec: DistilSpec, ctx: PipelineContext, sets: ReturnType<typeof gateSets>, childFile: string, baseFile: string, contexts: number[], tokensPerSecond: number): Promise<GateReport> {
  ctx.onProgress({ phase: "gate", step: 0, total: 1 + spec.parents.length, loss: null, tokensPerSecond });
  try {
    return await runGate(ctx.llama, {
      child: spec.mode === "lora" ? { id: "child", modelFile: baseFile, lora: childFile } : { id: "child", modelFile: childFile },
      parents: spec.parents.map((p) => ({ id: p.agentId, modelFile: p.modelFile })),
      sets, perSkill: spec.gate.perSkill, seed: spec.gate.seed, margin: spec.gate.margin, threads: spec.threads, signal: ctx.signal,
      // Room for the longest prompt any parent was trained to take (64 covers the seed models' 32).
      contextSize: Math.max(64, ...contexts),
    });
  } catch (err) {
    if (ctx.signal.aborted) throw cancelled("the gate");
    throw err;
  }
}
