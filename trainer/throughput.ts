/**
 * How fast this machine trains (docs/mind.md, "Trainer nodes"): a few optimizer steps of a small
 * reference model on random tokens, reported as training FLOP/s (6 x parameters x tokens per
 * second, the usual forward + backward estimate). A trainer node advertises the figure and prices a
 * distillation job with it (node/trainer/quote.ts); the coordinator measures its own host the same
 * way, so the two prices compare like for like.
 *
 * The measurement holds a core for about `minSeconds`: callers run it in a child process
 * (`measureInChild`), never in an event loop that serves MQTT.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import { Rng } from "../common/random.ts";
import type { TrainExample } from "./train.ts";

export interface Throughput {
  flopsPerSecond: number;
  tokensPerSecond: number;
  parameters: number;
  threads: number;
  seconds: number;
}

/** About the seed models' size class (~0.9 M parameters), so a figure is quick and representative. */
const REFERENCE = { vocabSize: 64, dim: 128, nLayers: 4, nHeads: 4, nKvHeads: 4, ffnDim: 384, contextLength: 32, normEps: 1e-5, ropeTheta: 10000 };
const BATCH = 8;

export async function measureTrainingThroughput(o: { threads: number; minSeconds?: number }): Promise<Throughput> {
  // Loaded here, not at import: the coordinator and the node import this file for `measureInChild`
  // only, and the trainer's modules have no business in their processes.
  const [{ setKernelThreads }, { LlamaModel }, { train }] = await Promise.all([import("./kernels.ts"), import("./model.ts"), import("./train.ts")]);
  setKernelThreads(o.threads);
  const model = LlamaModel.init(REFERENCE, new Rng("throughput"));
  const rng = new Rng("throughput-data");
  const T = REFERENCE.contextLength;
  const examples: TrainExample[] = Array.from({ length: BATCH * 2 }, (_, i) => {
    const toks = Array.from({ length: T + 1 }, () => rng.int(3, REFERENCE.vocabSize - 1));
    return { tokens: toks.slice(0, T), targets: toks.slice(1), mask: new Array<number>(T).fill(1), line: i + 1 };
  });
  const run = (steps: number) => train(model, examples, { steps, batchSize: BATCH, lr: 1e-4, seed: 1, config: { ...REFERENCE }, progress: false });
  await run(1); // warm-up: the first step allocates and JIT-compiles
  const minSeconds = o.minSeconds ?? 1;
  let steps = 2;
  for (;;) {
    const r = await run(steps);
    if (r.seconds >= minSeconds || steps >= 4096) {
      const tokensPerSecond = r.tokens / Math.max(r.seconds, 1e-9);
      return { flopsPerSecond: 6 * model.parameterCount * tokensPerSecond, tokensPerSecond, parameters: model.parameterCount, threads: o.threads, seconds: r.seconds };
    }
    steps = Math.min(4096, Math.ceil(steps * Math.max(2, (minSeconds * 1.2) / Math.max(r.seconds, 1e-3))));
  }
}

const WORKER = fileURLToPath(new URL("./throughput-worker.ts", import.meta.url));

/** The same measurement in a child process (through tsx); rejects with TRAINER_MEASURE_FAILED. */
export function measureInChild(o: { threads: number; minSeconds?: number; timeoutMs?: number; signal?: AbortSignal }): Promise<Throughput> {
  let tsx = "tsx";
  try {
    tsx = import.meta.resolve("tsx");
  } catch {}
  const child = fork(WORKER, [String(o.threads), String(o.minSeconds ?? 1)], { execArgv: ["--import", tsx], stdio: ["ignore", "ignore", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new ColonyError(CommonErrors.INTERNAL, `TRAINER_MEASURE_FAILED: ${why}`));
    const timer = setTimeout(() => (child.kill("SIGKILL"), fail("timed out")), o.timeoutMs ?? 60_000);
    child.once("message", (m) => {
      clearTimeout(timer);
      const t = m as Partial<Throughput>;
      if (typeof t.flopsPerSecond === "number" && t.flopsPerSecond > 0 && typeof t.tokensPerSecond === "number") resolve(t as Throughput);
      else fail(`bad answer ${JSON.stringify(m).slice(0, 200)}`);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      fail(`the measuring process exited (${signal ?? `code ${code}`})`);
    });
    child.once("error", (err) => (clearTimeout(timer), fail(err.message)));
    o.signal?.addEventListener("abort", () => child.kill("SIGKILL"), { once: true });
  });
}
