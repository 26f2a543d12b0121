/**
 * The distillation worker process (started by job.ts with `fork`, through tsx): waits for one
 * "start" message with the spec, runs the pipeline, reports progress, and ends with one "done" or
 * "error" message. A "cancel" message (or the job's end of the IPC channel closing) aborts: training
 * stops after the current step and leaves its checkpoint.
 */
import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { ColonyError } from "../../common/errors.ts";
import { DistilErrors } from "./errors.ts";
import { runDistilPipeline } from "./pipeline.ts";
import { JobMessageSchema, parseDistilSpec, type WorkerMessage } from "./spec.ts";

const abort = new AbortController();
let started = false;

function send(m: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(m, undefined, {}, () => resolve());
  });
}

async function run(rawSpec: unknown): Promise<void> {
  let llama: Llama | undefined;
  try {
    const spec = parseDistilSpec(rawSpec);
    llama = await getLlama({ gpu: false, build: "never", maxThreads: spec.threads, logLevel: LlamaLogLevel.error });
    const result = await runDistilPipeline(spec, { llama, signal: abort.signal, onProgress: (progress) => void send({ type: "progress", progress }) });
    await send({ type: "done", result });
  } catch (err) {
    const code = err instanceof ColonyError ? err.code : DistilErrors.DISTIL_WORKER_FAILED;
    await send({ type: "error", code, message: String((err as Error)?.message ?? err).slice(0, 4096) });
  } finally {
    await llama?.dispose().catch(() => {});
    if (process.connected) process.disconnect();
  }
}

process.on("message", (raw) => {
  const m = JobMessageSchema.safeParse(raw);
  if (!m.success) return;
  if (m.data.type === "cancel") abort.abort();
  else if (!started) {
    started = true;
    void run(m.data.spec);
  }
});
// The job went away (its process died): stop, keeping the checkpoint, rather than train for no one.
process.on("disconnect", () => abort.abort());
// Ctrl-C in a terminal reaches the whole process group: here it means cancel, not die without a checkpoint.
process.on("SIGINT", () => abort.abort());
process.on("SIGTERM", () => abort.abort());
