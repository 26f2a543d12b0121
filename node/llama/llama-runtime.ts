/**
 * The one llama.cpp instance of the node process, and the models loaded in it. Agents that use the
 * same GGUF share one loaded model (reference counted); each agent has its own context. A model is
 * disposed, and its memory really freed, when the last agent using it sleeps.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { readGgufHeaderFromFile } from "../../gguf/reader.ts";
import { checkLlamaModel } from "../../gguf/llama-check.ts";
import { metaValue } from "../../gguf/meta.ts";
import { NodeErrors } from "../errors.ts";

export interface LlamaRuntimeOptions {
  /**
   * The most inference threads a context may use (node-llama-cpp's default of 4 is up to 90x slower
   * on 2 cores), and the count for a model that has no calibration.
   */
  threads: number;
  /** The thread count a model runs with, if one is known: its calibration (calibration.ts), the only source. */
  calibratedThreads?: ((file: string) => number | undefined) | undefined;
  /** Layers to offload to a GPU; 0 = CPU only (no GPU backend is even probed). */
  gpuLayers: number;
  /** Where `hf:` model URIs are downloaded to. */
  modelsDir: string;
  logger: Logger;
}

interface Loaded {
  refs: number;
  model: Promise<LlamaModel>;
  sizeMB: number;
}

/** A local path (relative to `baseDir`) or an `hf:` URI resolved by node-llama-cpp (needs internet). */
export async function resolveModelPath(spec: string, baseDir: string, modelsDir: string): Promise<string> {
  if (spec.startsWith("hf:") || spec.startsWith("https://")) {
    // Real path for users with internet; untested offline (no network here).
    const { resolveModelFile } = await import("node-llama-cpp");
    return resolveModelFile(spec, { directory: modelsDir, cli: false });
  }
  return path.resolve(baseDir, spec);
}

/** What a verified model file tells before it is loaded. */
export interface ModelFacts {
  file: string;
  sizeMB: number;
  /** `{arch}.context_length`: the context the model was trained with (undefined if absent). */
  trainContext?: number | undefined;
}

/** Refuses a missing file or a bad GGUF header before llama.cpp ever parses it. */
export async function verifyModelFile(file: string): Promise<ModelFacts> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  try {
    const header = await readGgufHeaderFromFile(file);
    // Structure, vocabulary and tensor shapes: files that pass the reader but that llama.cpp was
    // seen to crash on (duplicate tokens, damaged byte tokens, missing head counts; docs/gguf.md).
    checkLlamaModel(header);
    const arch = metaValue(header.metadata, "general.architecture");
    const ctx = typeof arch === "string" ? metaValue(header.metadata, `${arch}.context_length`) : undefined;
    return { file, sizeMB: size / 2 ** 20, trainContext: typeof ctx === "number" || typeof ctx === "bigint" ? Number(ctx) : undefined };
  } catch (err) {
    const code = err instanceof ColonyError ? `${err.code}: ` : "";
    throw new ColonyError(NodeErrors.MODEL_FILE_INVALID, `model file ${file} is not a valid GGUF model: ${code}${(err as Error).message}`, { file }, { cause: err });
  }
}

export class LlamaRuntime {
  private llama: Llama | undefined;
  private readonly models = new Map<string, Loaded>();
  private closed = false;

  constructor(readonly opts: LlamaRuntimeOptions) {}

  async start(): Promise<void> {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    try {
      this.llama = await getLlama({
        gpu: this.opts.gpuLayers > 0 ? "auto" : false,
        // A missing prebuilt binary must fail fast, not start a many-minute source build.
        build: "never",
        maxThreads: this.opts.threads,
        logLevel: LlamaLogLevel.error,
        logger: (level, message) => this.opts.logger.debug({ level, llama: message.trim() }, "llama.cpp"),
      });
    } catch (err) {
      throw new ColonyError(NodeErrors.LLAMA_UNAVAILABLE, `llama.cpp is not available: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  get instance(): Llama {
    if (!this.llama || this.closed) throw new ColonyError("ALREADY_CLOSED", "llama runtime is not started or closed");
    return this.llama;
  }

  /** The most threads a context may use (the profile's / --threads). */
  get threads(): number {
    return this.opts.threads;
  }

  /** Threads for contexts of this model: its calibration's, else the maximum (never more than the maximum). */
  threadsFor(file: string): number {
    const t = this.opts.calibratedThreads?.(file);
    return t === undefined ? this.opts.threads : Math.max(1, Math.min(this.opts.threads, t));
  }

  isLoaded(file: string): boolean {
    return this.models.has(file);
  }

  loadedModels(): string[] {
    return [...this.models.keys()];
  }

  private readonly verified = new Map<string, string>();

  /**
   * The header check costs a parse of the metadata (tens of ms for a large vocabulary) on every
   * wake; a file whose size and mtime did not change since it passed is not parsed again.
   */
  private async verifyOnce(file: string): Promise<number> {
    let stamp: string | undefined;
    try {
      const s = await stat(file);
      stamp = `${s.size}:${s.mtimeMs}`;
      if (this.verified.get(file) === stamp) return s.size / 2 ** 20;
    } catch {
      // verifyModelFile reports it with a code.
    }
    const { sizeMB } = await verifyModelFile(file);
    if (stamp) this.verified.set(file, stamp);
    return sizeMB;
  }

  /** Loads (or shares) a verified model. Every acquire needs one release. */
  async acquire(file: string): Promise<LlamaModel> {
    let entry = this.models.get(file);
    if (!entry) {
      const sizeMB = await this.verifyOnce(file);
      const again = this.models.get(file);
      if (again) entry = again;
      else {
        const model = this.instance
          .loadModel({ modelPath: file, gpuLayers: this.opts.gpuLayers })
          .catch((err: unknown) => {
            this.models.delete(file);
            throw new ColonyError(NodeErrors.MODEL_LOAD_FAILED, `llama.cpp could not load ${file}: ${(err as Error).message}`, { file }, { cause: err });
          });
        entry = { refs: 0, model, sizeMB };
        this.models.set(file, entry);
      }
    }
    entry.refs++;
    try {
      return await entry.model;
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  async release(file: string): Promise<void> {
    const entry = this.models.get(file);
    if (!entry) return;
    entry.refs--;
    if (entry.refs > 0) return;
    this.models.delete(file);
    const model = await entry.model.catch(() => undefined);
    await model?.dispose();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [file, entry] of [...this.models]) {
      this.models.delete(file);
      const model = await entry.model.catch(() => undefined);
      await model?.dispose().catch(() => {});
    }
    await this.llama?.dispose().catch(() => {});
  }
}
