/**
 * Helpers for the node daemon's tests and bench: real tiny llama GGUF files written with the
 * trainer's exporter (random weights, so generation speed is real but the text is noise), and a
 * daemon factory with injectable probe readings.
 */
import path from "node:path";
import { Rng } from "../common/random.ts";
import { silentLogger, type Logger } from "../common/logger.ts";
import { exportModelGguf } from "../trainer/gguf-export.ts";
import { LlamaModel } from "../trainer/model.ts";
import { EOS_ID, Tokenizer } from "../trainer/tokenizer.ts";
import { GenomeSchema, type Genome } from "../node/agent.ts";
import { NodeDaemon } from "../node/daemon.ts";
import { DeviceProbe, type ProbeSnapshot } from "../node/probe.ts";
import { resolveProfile, type DeviceProfile } from "../node/profile.ts";

export const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 =+-,.";

export interface ModelShape {
  dim: number;
  layers: number;
  ffn: number;
  ctx: number;
}
export const TINY: ModelShape = { dim: 32, layers: 1, ffn: 64, ctx: 256 };
/** ~14 MB F32: generation is measurable (a few hundred tokens/s on 2 threads). */
export const SMALL: ModelShape = { dim: 256, layers: 4, ffn: 768, ctx: 1024 };

/**
 * Writes a random llama model. The EOS row of the output matrix is zero, so EOS's logit is exactly 0
 * while the best of the others is positive: greedy generation never stops early and runs to maxTokens.
 */
export async function writeRandomModel(dir: string, name: string, shape: ModelShape = TINY, seed = 1): Promise<string> {
  const tok = Tokenizer.fromTexts([ALPHABET]);
  const model = LlamaModel.init({ vocabSize: tok.vocabSize, dim: shape.dim, nLayers: shape.layers, nHeads: 4, nKvHeads: 4, ffnDim: shape.ffn, contextLength: shape.ctx, normEps: 1e-5, ropeTheta: 10000 }, new Rng(seed));
  model.params.get("output.weight")!.fill(0, EOS_ID * shape.dim, (EOS_ID + 1) * shape.dim);
  const file = path.join(dir, `${name}.gguf`);
  await exportModelGguf(model, tok, file, { name });
  return file;
}

export function genome(id: string, model: string, skills: string[], extra: Partial<Genome> = {}): Genome {
  return GenomeSchema.parse({ id, model, skills, ...extra });
}

/** Static probe readings (no systeminformation), injectable afterwards. */
export function fakeProbe(values: Partial<ProbeSnapshot> = {}): DeviceProbe {
  return new DeviceProbe({ reader: async () => ({ cpuLoad: 0, freeMemMB: 16000, totalMemMB: 24000, ...values }), intervalMs: 60_000 });
}

export async function startNode(opts: {
  nodeId: string;
  url: string;
  cred: { username?: string; password?: string };
  genomes: Genome[];
  dataDir: string;
  profile?: DeviceProfile | string;
  probe?: DeviceProbe;
  threads?: number;
  sleepAfterMs?: number;
  progressIntervalMs?: number;
  calibrate?: boolean;
  freeMemMB?: () => number;
  logger?: Logger;
}): Promise<{ daemon: NodeDaemon; probe: DeviceProbe; close(): Promise<void> }> {
  const probe = opts.probe ?? fakeProbe();
  await probe.start();
  const profile = typeof opts.profile === "object" ? opts.profile : resolveProfile(opts.profile ?? "generic");
  const daemon = new NodeDaemon({
    nodeId: opts.nodeId, url: opts.url, username: opts.cred.username, password: opts.cred.password, profile, threads: opts.threads ?? 1,
    agents: { genomes: opts.genomes, baseDir: "/" }, dataDir: opts.dataDir, probe, logger: opts.logger ?? silentLogger,
    heartbeatMs: 1000, progressIntervalMs: opts.progressIntervalMs ?? 50, calibrate: opts.calibrate ?? true, sleepAfterMs: opts.sleepAfterMs,
    ...(opts.freeMemMB ? { freeMemMB: opts.freeMemMB } : {}),
  });
  try {
    await daemon.start();
  } catch (err) {
    await daemon.close().catch(() => {});
    await probe.close();
    throw err;
  }
  return { daemon, probe, close: async () => { await daemon.close(); await probe.close(); } };
}
