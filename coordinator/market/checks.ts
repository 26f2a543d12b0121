/**
 * A task's check decides success from the output alone. It is validated once at submit, so a bad
 * regex or schema is a `rejected` event (CHECK_INVALID) instead of a failure after the work is done.
 *
 * Exact checks are a string comparison and run in place. Regex and JSON-schema checks are the
 * submitter's code, in effect: a catastrophic regex (`^(a+)+$`, also as a JSON-schema `pattern`)
 * can run for ever. They run in worker threads (check-worker.mjs) under a hard timeout: a check
 * still running after CHECK_TIMEOUT_MS is given up ("timeout"), and its worker is terminated and
 * replaced, so the coordinator's event loop (bids, awards, every other task) never waits for one.
 * A timeout is the check's fault, not the agent's: the task ends CHECK_TIMEOUT and the agent is not
 * blamed. The budget is wall time, so it is generous: on a loaded 2-core host a trivial check can
 * wait 100 ms and more for a core, and an honest agent must never fail for that.
 */
import { Worker } from "node:worker_threads";
import { Ajv } from "ajv";
import type { Counters } from "../../common/counters.ts";
import { ColonyError } from "../../common/errors.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Check } from "../../common/protocol.ts";
import { MarketErrors } from "./errors.ts";

export const CHECK_TIMEOUT_MS = 1000;

/** A check's verdict on an output; "timeout": it ran out of time (or its worker died). */
export type CheckOutcome = boolean | "timeout";

// Shared, and nothing kept per submit: `addUsedSchema: false` keeps `$id`s out of it and each
// schema is removed after its trial compile (a new Ajv per submit costs ~15 ms).
const ajv = new Ajv({ allErrors: false, strict: false, addUsedSchema: false });

/** Throws CHECK_INVALID for a check that cannot compile. */
export function validateCheck(check: Check): void {
  try {
    if (check.type === "regex") new RegExp(check.pattern, check.flags ?? "");
    else if (check.type === "json-schema") {
      try {
        ajv.compile(check.schema);
      } finally {
        ajv.removeSchema(check.schema);
      }
    }
  } catch (err) {
    const what = check.type === "regex" ? "regex does not compile" : "JSON schema is invalid";
    throw new ColonyError(MarketErrors.CHECK_INVALID, `check ${what}: ${(err as Error).message}`);
  }
}

export function exactCheck(check: Extract<Check, { type: "exact" }>, output: string): boolean {
  return check.trim === false ? output === check.value : output.trim() === check.value.trim();
}

interface Job {
  id: number;
  check: Check;
  output: string;
  resolve: (ok: CheckOutcome) => void;
}

/** One worker and the job it runs now; the others wait in its queue. */
class Lane {
  private worker: Worker | undefined;
  /** The worker has loaded: a job's time budget runs from when it reaches a ready worker. */
  private ready = false;
  private running: { job: Job; timer: NodeJS.Timeout } | undefined;
  private readonly queue: Job[] = [];

  constructor(private readonly timeoutMs: number, private readonly onTimeout: () => void) {}

  get load(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  submit(job: Job): void {
    this.queue.push(job);
    this.next();
  }

  /** Starts the worker ahead of the first check. */
  warm(): void {
    this.worker ??= this.spawn();
  }

  private spawn(): Worker {
    this.ready = false;
    const w = new Worker(new URL("./check-worker.mjs", import.meta.url));
    w.unref();
    w.on("message", (m: { id: number; ok: boolean } | { ready: true }) => {
      if ("ready" in m) {
        if (w === this.worker) this.ready = true;
        return this.next();
      }
      if (this.running?.job.id !== m.id) return;
      clearTimeout(this.running.timer);
      const { job } = this.running;
      this.running = undefined;
      job.resolve(m.ok);
      this.next();
    });
    // A worker that dies (out of memory on a hostile schema) fails its job like a timeout.
    w.on("error", () => this.fail());
    return w;
  }

  private next(): void {
    if (this.running || this.queue.length === 0) return;
    this.worker ??= this.spawn();
    if (!this.ready) return;
    const job = this.queue.shift()!;
    this.running = { job, timer: setTimeout(() => this.fail(), this.timeoutMs) };
    this.worker.postMessage({ id: job.id, check: job.check, output: job.output });
  }

  /** The running check took too long (or its worker died): it fails, and the worker is replaced. */
  private fail(): void {
    const r = this.running;
    this.running = undefined;
    if (r) {
      clearTimeout(r.timer);
      this.onTimeout();
      r.job.resolve("timeout");
    }
    void this.worker?.terminate();
    this.worker = undefined;
    this.next();
  }

  async close(): Promise<void> {
    if (this.running) clearTimeout(this.running.timer);
    for (const j of [this.running?.job, ...this.queue.splice(0)]) j?.resolve("timeout");
    this.running = undefined;
    await this.worker?.terminate();
    this.worker = undefined;
  }
}

export class CheckRunner implements Lifecycle {
  private readonly lanes: Lane[];
  private nextId = 0;
  /** Checks that run out of time are counted as `checks.timeout` (shown by `colony status`). */
  constructor(private readonly counters: Pick<Counters, "inc">, opts: { workers?: number; timeoutMs?: number } = {}) {
    this.lanes = Array.from({ length: Math.max(1, opts.workers ?? 2) }, () => new Lane(opts.timeoutMs ?? CHECK_TIMEOUT_MS, () => this.counters.inc("checks.timeout")));
  }

  async start(): Promise<void> {
    for (const l of this.lanes) l.warm();
  }

  /** Whether `output` passes `check`, or "timeout" when the check runs out of time. */
  run(check: Check, output: string): Promise<CheckOutcome> {
    if (check.type === "exact") return Promise.resolve(exactCheck(check, output));
    const lane = this.lanes.reduce((a, b) => (b.load < a.load ? b : a));
    return new Promise((resolve) => lane.submit({ id: ++this.nextId, check, output, resolve }));
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}
