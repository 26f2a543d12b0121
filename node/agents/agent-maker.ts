/**
 * Makes an Agent from a genome: finds its model (and adapter) on this node, verifies them through
 * the runtime (the model gate, the adapter gate, pinned hashes) and never loads anything: a new
 * agent is asleep. Shared by the daemon's start (the agents file and the stored spawned agents) and
 * by spawn commands (lifecycle.ts).
 *
 * Where a spawned genome's model comes from, in order: a file the node already verified with the
 * reference's `#sha256=` (any path: the coordinator need not know where the node keeps it), the
 * local path (relative to the agents file's folder), a `colony:<sha256>` model fetched from the
 * coordinator's store over MQTT (node/models/model-fetcher.ts), or a download (`hf:`, https) into the node's
 * models folder when it fits the free disk space.
 */
import { existsSync } from "node:fs";
import { stat, statfs } from "node:fs/promises";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import type { Genome } from "../../common/genome.ts";
import { NodeErrors } from "../errors.ts";
import type { LlamaRuntime, ModelFacts } from "../llama/llama-runtime.ts";
import { isColonyModel, isRemoteModel, parseModelRef, resolveModel } from "../llama/model-ref.ts";
import { Agent } from "./agent.ts";
import type { LocalFiles } from "./agent-store.ts";

export interface AgentMakerOptions {
  runtime: LlamaRuntime;
  /** Folder that relative model paths are resolved against (the agents file's). */
  baseDir: string;
  /** Where downloaded models go. */
  modelsDir: string;
  /** Facts of every verified model, by file (the pool's memory estimates read them). */
  facts: Map<string, ModelFacts>;
  now: () => number;
  /** Free bytes on the disk holding `dir` (tests inject). Default: fs.statfs. */
  freeDiskBytes?: ((dir: string) => Promise<number>) | undefined;
  /** Mirror for `hf:` downloads (model-ref.ts). Default: node-llama-cpp's. */
  hfEndpoint?: string | undefined;
  /**
   * Gets a `colony:<sha256>` model: fetched from the coordinator and verified, or already held
   * (node/models/model-fetcher.ts). Refusals keep their codes. Default: none (MODEL_MISSING).
   */
  colony?: ((sha256: string) => Promise<{ file: string }>) | undefined;
}

export interface Located {
  file: string;
  sha256?: string | undefined;
}

async function diskFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

export class AgentMaker {
  constructor(private readonly o: AgentMakerOptions) {}

  /**
   * An agent of the agents file: resolved as the node always did (a missing file is
   * MODEL_FILE_INVALID at start, a download has no disk check: the operator chose the file).
   */
  async fromFile(genome: Genome): Promise<Agent> {
    if (isColonyModel(genome.model)) return this.finish(genome, 0, await this.locate(genome.model, "model"));
    const m = await resolveModel(genome.model, this.o.baseDir, this.o.modelsDir, { hfEndpoint: this.o.hfEndpoint });
    return this.finish(genome, 0, m);
  }

  /**
   * A spawned agent (a spawn command, or one stored from an earlier run with the files it used
   * then). `signal` aborts a download (the node is shutting down).
   */
  async spawned(genome: Genome, generation: number, files: LocalFiles = {}, signal?: AbortSignal): Promise<Agent> {
    return this.finish(genome, generation, await this.locate(genome.model, "model", files.model, signal), files.adapter, signal);
  }

  private async finish(genome: Genome, generation: number, m: Located, adapterFile?: string, signal?: AbortSignal): Promise<Agent> {
    const { runtime } = this.o;
    const facts = await runtime.verify(m.file, m.sha256);
    this.o.facts.set(m.file, facts);
    let adapter: Located | undefined;
    if (genome.adapter) {
      adapter = await this.locate(genome.adapter, "adapter", adapterFile, signal);
      await runtime.verifyAdapter(adapter.file, adapter.sha256, facts);
    }
    return new Agent(genome, facts, runtime, this.o.now, { generation, adapter });
  }

  /** A model or adapter reference to a local file; MODEL_MISSING (ADAPTER_INVALID for an adapter) when the node cannot get it. */
  async locate(spec: string, what: "model" | "adapter", usedBefore?: string, signal?: AbortSignal): Promise<Located> {
    const ref = parseModelRef(spec);
    // Only a pinned reference may move to another file: its content is still checked against the pin.
    if (usedBefore && ref.sha256 && existsSync(usedBefore)) return { file: usedBefore, sha256: ref.sha256 };
    const missing = (why: string) => new ColonyError(what === "model" ? NodeErrors.MODEL_MISSING : NodeErrors.ADAPTER_INVALID, `${what} ${ref.source.slice(0, 200)} ${why}`, { [what]: ref.source.slice(0, 200) });
    if (ref.sha256) {
      const known = this.o.runtime.sourceFor(ref.sha256);
      if (known) return { file: known, sha256: ref.sha256 };
    }
    if (isColonyModel(ref.source)) {
      if (!this.o.colony) throw missing("is a colony: model and this node fetches none");
      return { file: (await this.o.colony(ref.sha256!)).file, sha256: ref.sha256 };
    }
    if (!isRemoteModel(ref.source)) {
      const file = path.resolve(this.o.baseDir, ref.source);
      if (!existsSync(file)) throw missing(`is not on this node (${ref.sha256 ? "no file with its sha256, and " : ""}no file at ${file})`);
      return { file, sha256: ref.sha256 };
    }
    return { file: await this.download(ref.source, missing, signal), sha256: ref.sha256 };
  }

  /** Downloads into the models folder, refusing with DISK_BUDGET what would not fit (a file already there of the right size is kept). */
  private async download(source: string, missing: (why: string) => ColonyError, signal?: AbortSignal): Promise<string> {
    const { createModelDownloader } = await import("node-llama-cpp");
    const endpoints = this.o.hfEndpoint ? { endpoints: { huggingFace: this.o.hfEndpoint } } : {};
    let d: Awaited<ReturnType<typeof createModelDownloader>>;
    try {
      d = await createModelDownloader({ modelUri: source, dirPath: this.o.modelsDir, skipExisting: true, showCliProgress: false, ...endpoints });
    } catch (err) {
      throw missing(`cannot be downloaded: ${(err as Error).message}`);
    }
    const total = d.totalSize;
    const have = await stat(d.entrypointFilePath).then((s) => s.size, () => -1);
    if (have !== total) {
      const free = await (this.o.freeDiskBytes ?? diskFree)(this.o.modelsDir);
      if (total > free) {
        await d.cancel({ deleteTempFile: true }).catch(() => {});
        throw new ColonyError(NodeErrors.DISK_BUDGET, `${source.slice(0, 200)} is ${Math.ceil(total / 2 ** 20)} MB; ${Math.floor(free / 2 ** 20)} MB free in ${this.o.modelsDir}`, { bytes: total, freeBytes: free });
      }
    }
    try {
      return await d.download({ signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw missing(`could not be downloaded: ${(err as Error).message}`);
    }
  }
}
