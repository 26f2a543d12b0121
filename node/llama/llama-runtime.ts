/**
 * The one llama.cpp instance of the node process, and the models loaded in it. Agents that use the
 * same GGUF share one loaded model (reference counted); each agent has its own context. A model is
 * disposed, and its memory really freed, when the last agent using it sleeps. llama.cpp only ever
 * loads a verified private copy of a model file (verified-models.ts), never the path it was given.
 */
import path from "node:path";
import type { Llama, LlamaModel } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { NodeErrors } from "../errors.ts";
import { checkAdapterFits, verifyAdapterFile } from "./adapter-file.ts";
import { VerifiedModelStore, type VerifiedModel } from "./verified-models.ts";

export { verifyModelFile, type ModelFacts } from "./model-file.ts";

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
  /** The private folder of verified model copies (emptied at start). Default: `modelsDir/verified`. */
  verifiedDir?: string | undefined;
  /** Load models the gate does not model after the basic checks (a warning is logged). Default false. */
  allowUncheckedModels?: boolean | undefined;
  logger: Logger;
}

interface Loaded {
  refs: number;
  model: Promise<LlamaModel>;
  sizeMB: number;
  /** The verified copy llama.cpp loaded. */
  verifiedFile: string;
}

export class LlamaRuntime {
  private llama: Llama | undefined;
  private readonly models = new Map<string, Loaded>();
  private closed = false;
  private readonly store: VerifiedModelStore;
  /** LoRA adapters (genome.adapter): copied and checked like models, in a folder of their own. */
  private readonly adapters: VerifiedModelStore;
  private readonly warned = new Set<string>();

  constructor(readonly opts: LlamaRuntimeOptions) {
    const dir = opts.verifiedDir ?? path.join(opts.modelsDir, "verified");
    this.store = new VerifiedModelStore(dir, {
      allowUnchecked: opts.allowUncheckedModels === true,
      inUse: () => new Set([...this.models.values()].map((m) => m.verifiedFile)),
    });
    // llama.cpp reads an adapter into the model's memory when a context applies it: no copy stays mapped.
    this.adapters = new VerifiedModelStore(path.join(dir, "adapters"), { allowUnchecked: false, inUse: () => new Set(), check: verifyAdapterFile });
  }

  async start(): Promise<void> {
    // Copies from an earlier run are not trusted to be current: each model is verified again.
    await this.store.clear();
    await this.adapters.clear();
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

  /**
   * Checks a model file and makes the verified copy llama.cpp will load (verified-models.ts);
   * `sha256` pins its content (a `#sha256=` model reference) for this and every later load.
   * Throws MODEL_FILE_INVALID, MODEL_UNSUPPORTED or MODEL_HASH_MISMATCH.
   */
  async verify(file: string, sha256?: string): Promise<VerifiedModel> {
    const v = await this.store.pin(file, sha256);
    if (v.coverage === "basic" && !this.warned.has(v.verifiedFile)) {
      this.warned.add(v.verifiedFile);
      this.opts.logger.warn({ file, reason: v.uncheckedReason }, "model not fully checked by the model gate (allowUncheckedModels)");
    }
    return v;
  }

  /** A model file the node has verified with this sha256 since it started (a pinned genome may use it under any path). */
  sourceFor(sha256: string): string | undefined {
    return this.store.sourceFor(sha256);
  }

  /**
   * Checks a LoRA adapter against the model `base` (a verified model) and returns its verified copy,
   * the file a context applies. Throws ADAPTER_INVALID or MODEL_HASH_MISMATCH.
   */
  async verifyAdapter(file: string, sha256: string | undefined, base: VerifiedModel): Promise<VerifiedModel> {
    const v = await this.adapters.pin(file, sha256);
    await checkAdapterFits(v.verifiedFile, base.verifiedFile, file);
    return v;
  }

  /** Loads (or shares) a verified model. Every acquire needs one release. */
  async acquire(file: string): Promise<LlamaModel> {
    let entry = this.models.get(file);
    if (!entry) {
      // Re-verified (copied again) only if the file changed since; the copy is what llama.cpp opens.
      const { sizeMB, verifiedFile } = await this.verify(file);
      const again = this.models.get(file);
      if (again) entry = again;
      else {
        const model = this.instance
          .loadModel({ modelPath: verifiedFile, gpuLayers: this.opts.gpuLayers })
          .catch((err: unknown) => {
            this.models.delete(file);
            throw new ColonyError(NodeErrors.MODEL_LOAD_FAILED, `llama.cpp could not load ${file}: ${(err as Error).message}`, { file }, { cause: err });
          });
        entry = { refs: 0, model, sizeMB, verifiedFile };
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
