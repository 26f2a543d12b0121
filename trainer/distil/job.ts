/**
 * A distillation job in its own process: `startDistilJob` validates the spec, forks worker.ts
 * through tsx, and turns the worker's IPC messages (validated here, where they cross the process
 * boundary) into progress callbacks and one result. Training never runs in the caller's event loop.
 *
 * Failure codes the `done` promise rejects with: the worker's own (ColonyError codes of the trainer
 * or of distil/errors.ts), DISTIL_CANCELLED after cancel(), DISTIL_WORKER_CRASHED when the worker
 * exits without a result (SIGKILL, out of memory), DISTIL_IPC_INVALID for a malformed message.
 * Starting the same job again (same jobDir and spec) resumes from its checkpoint.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ColonyError } from "../../common/errors.ts";
import { DistilErrors } from "./errors.ts";
import { parseDistilSpec, WorkerMessageSchema, type DistilProgress, type DistilResult, type DistilSpecInput, type TrainOutput } from "./spec.ts";

export interface DistilJobOptions {
  /** Called for each progress message (phase, step, total, loss, tokens/s). Default: none. */
  onProgress?: (p: DistilProgress) => void;
}

export interface DistilJob<R = DistilResult> {
  /** Resolves with the result (a failed gate is a result: gate.passed false), rejects with a ColonyError. */
  readonly done: Promise<R>;
  /** The worker's process id (tests kill it to simulate a crash). */
  readonly pid: number | undefined;
  /** Asks the worker to stop after the current step (it leaves a checkpoint) and waits for it to exit. Safe to call twice. */
  cancel(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

function tsxImport(): string {
  try {
    return import.meta.resolve("tsx");
  } catch {
    return "tsx";
  }
}

export function startDistilJob(input: DistilSpecInput, opts: DistilJobOptions = {}): DistilJob<DistilResult> {
  if (input.stage === "train") throw new ColonyError(DistilErrors.DISTIL_SPEC_INVALID, "a job of stage \"train\" has no gate: start it with startTrainJob");
  return start(input, opts, (r) => ("gate" in r && r.gate ? (r as DistilResult) : undefined));
}

/** A trainer node's job: curate, sample, train and export, without the gate (the coordinator runs it). */
export function startTrainJob(input: DistilSpecInput, opts: DistilJobOptions = {}): DistilJob<TrainOutput> {
  return start({ ...input, stage: "train" }, opts, (r) => r);
}

function start<R>(input: DistilSpecInput, opts: DistilJobOptions, accept: (r: TrainOutput | DistilResult) => R | undefined): DistilJob<R> {
  const spec = parseDistilSpec(input);
  // The worker's stdout goes to our stderr: a CLI's stdout is for its result line only.
  const child: ChildProcess = fork(WORKER, [], { execArgv: ["--import", tsxImport()], stdio: ["ignore", 2, "inherit", "ipc"] });
  let settled = false;
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => { exited = true; resolve(); }));
  const done = new Promise<R>((resolve, reject) => {
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    child.on("message", (raw) => {
      const m = WorkerMessageSchema.safeParse(raw);
      if (!m.success) {
        settle(() => reject(new ColonyError(DistilErrors.DISTIL_IPC_INVALID, `worker sent an invalid message: ${m.error.issues[0]?.message ?? "?"}`)));
        child.kill("SIGKILL");
        return;
      }
      const msg = m.data;
      if (msg.type === "progress") opts.onProgress?.(msg.progress);
      else if (msg.type === "done") {
        const r = accept(msg.result);
        settle(() => (r === undefined ? reject(new ColonyError(DistilErrors.DISTIL_IPC_INVALID, "worker's result has no gate report")) : resolve(r)));
      }
      else settle(() => reject(new ColonyError(msg.code, msg.message)));
    });
    child.once("error", (err) => settle(() => reject(new ColonyError(DistilErrors.DISTIL_WORKER_CRASHED, `cannot run the distillation worker: ${err.message}`))));
    child.once("exit", (code, signal) => {
      settle(() => reject(new ColonyError(DistilErrors.DISTIL_WORKER_CRASHED, `distillation worker ${child.pid} exited (${signal ?? `code ${code}`}) without a result; start the job again to resume from its checkpoint`)));
    });
  });
  // A caller that only cancels must not see an unhandled rejection; its own handlers still run.
  done.catch(() => {});
  child.send({ type: "start", spec });
  const cancel = async (): Promise<void> => {
    if (!exited && child.connected) child.send({ type: "cancel" });
    await exit;
  };
  return { done, pid: child.pid, cancel, [Symbol.asyncDispose]: cancel };
}
