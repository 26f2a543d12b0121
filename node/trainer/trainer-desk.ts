/**
 * The node's trainer (docs/mind.md, "Trainer nodes"), on only when the node's config offers it
 * (`trainer`). It measures the device's training speed once at start in a child process
 * (trainer/throughput.ts) and advertises it in the node's status; then it answers the coordinator's
 * training commands (common/protocol/training.ts):
 *
 * - `train-quote`: a price from the measured speed (trainer/price.ts); refused while another job trains;
 * - `train`: fetches the parents' signed models (verified like any pushed model) and the job's
 *   experiences (checked against the command's sha256), trains in its own worker process
 *   (trainer/distil/job.ts `startTrainJob`: no gate, the coordinator gates), uploads the
 *   child in chunk frames on `train-upload`, one at a time at QoS 1, then reports `trained`.
 *   The same command again is idempotent: a running job goes on; a finished one uploads and reports
 *   again (the coordinator restarted, or missed the end); one that failed or stopped starts again in
 *   the same folder, so training resumes from its checkpoint (also after this node restarted);
 * - `train-cancel`: stops after the current step (the checkpoint stays).
 *
 * One job at a time: a trainer holds its cores for minutes. A new job's start removes the folders
 * of earlier ones.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { every, type Clock, type Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { ColonyError, CommonErrors } from "../../common/errors.ts";
import { sha256File } from "../../common/file-hash.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, encodeChunkFrame, MAX_MODEL_CHUNK, topics, type Command, type CommandAck, type Outbox, type TrainerCapability, type TrainProgress, type Trained } from "../../common/protocol.ts";
import { startTrainJob, type DistilJob } from "../../trainer/distil/job.ts";
import type { TrainOutput } from "../../trainer/distil/spec.ts";
import { measureInChild, type Throughput } from "../../trainer/throughput.ts";
import { NodeErrors } from "../errors.ts";
import { priceJob } from "../../trainer/price.ts";

type TrainCommand = Extract<Command, { kind: "train" }>;
type Outcome = Pick<CommandAck, "status" | "error" | "quote">;

export interface TrainerDeskOptions {
  nodeId: string;
  /** Job folders: `<dir>/<jobId>` (inputs, dataset, checkpoint, child). */
  dir: string;
  threads: number;
  /** Watts while training (the profile's active power), for the energy in a quote. */
  watts?: number | undefined;
  /** The node's model fetcher: signed models by sha256, and plain files offered to this node. */
  fetcher: { ensure(sha256: string): Promise<{ file: string }>; fetchFile(sha256: string, bytes: number, dest: string): Promise<void> };
  /** Hashes of models the node already holds (a quote leaves their transfer out). */
  holds: (sha256: string) => boolean;
  out: Outbox;
  /** QoS 1 publish of a binary frame, resolved at the PUBACK (link.ts publishBytes). */
  publishBytes: (topic: string, payload: Buffer) => Promise<void>;
  /** Called once the speed is measured (the status carries it). */
  onCapability: () => void;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  /** Tests inject a figure instead of measuring. */
  measure?: () => Promise<Throughput>;
  /** Tests replace the worker process. */
  startJob?: typeof startTrainJob;
}

interface Job {
  jobId: string;
  command: TrainCommand;
  state: "running" | "trained" | "failed" | "cancelled";
  run?: DistilJob<TrainOutput>;
  trained?: Trained & { file: string };
  cancelled: boolean;
  /** The latest progress (sent again by the keep-alive). */
  last?: NonNullable<TrainProgress["progress"]>;
  keepAlive?: Timer;
}

/** A running job's progress goes out at least this often (the coordinator's silence limit is 120 s). */
export const KEEPALIVE_MS = 30_000;

/** Chunk frames of the upload: the coordinator holds at most one in memory per trainer. */
const UPLOAD_CHUNK = MAX_MODEL_CHUNK;

export class TrainerDesk implements Lifecycle {
  private cap: TrainerCapability | undefined;
  private job: Job | undefined;
  private running: Promise<void> | undefined;
  private seq = 0;
  private closed = false;
  /** Stops a speed measurement still running at close. */
  private readonly stopping = new AbortController();

  constructor(private readonly o: TrainerDeskOptions) {}

  /** The parents' models of a job that is running: kept out of the node's model garbage collection. */
  modelsInUse(): string[] {
    return this.job?.state === "running" ? this.job.command.inputs.parents.map((p) => p.sha256) : [];
  }

  get capability(): TrainerCapability | undefined {
    return this.cap;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    // Not awaited: the node serves tasks while its training speed is measured (a few seconds on one core).
    (this.o.measure ?? (() => measureInChild({ threads: this.o.threads, signal: this.stopping.signal })))()
      .then((t) => {
        if (this.closed) return;
        this.cap = { flopsPerSecond: Math.round(t.flopsPerSecond), threads: this.o.threads, ...(this.o.watts !== undefined ? { watts: this.o.watts } : {}), measuredAt: this.o.clock.now() };
        this.o.logger.info({ gflops: +(t.flopsPerSecond / 1e9).toFixed(2), tokensPerSecond: Math.round(t.tokensPerSecond), threads: this.o.threads }, "trainer ready: training speed measured");
        this.o.onCapability();
      })
      .catch((err: Error) => !this.closed && this.o.logger.error({ err: { message: err.message } }, "measuring the training speed failed: this node offers no training"));
  }

  /** Stops a job after its current step (its checkpoint stays; the coordinator's `train` resumes it). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    await this.job?.run?.cancel().catch(() => {});
    await this.running?.catch(() => {});
  }

  /** A training command; the caller acks the outcome (agents/lifecycle.ts). */
  async onCommand(c: Extract<Command, { kind: "train-quote" | "train" | "train-cancel" }>): Promise<Outcome> {
    if (c.kind === "train-quote") {
      if (!this.cap) throw new ColonyError(NodeErrors.TRAINER_NOT_READY, `${this.o.nodeId} is still measuring its training speed`);
      if (this.job?.state === "running" && this.job.jobId !== c.agentId) throw this.busy();
      return { status: "quoted", quote: priceJob(c.work, this.cap, this.o.holds) };
    }
    if (c.kind === "train-cancel") {
      const j = this.job;
      if (!j || j.jobId !== c.agentId || j.state !== "running") return { status: "absent" };
      j.cancelled = true;
      await j.run?.cancel();
      return { status: "cancelled" };
    }
    const j = this.job;
    if (j?.jobId === c.agentId) {
      if (j.state === "running") return { status: "exists" };
      if (j.state === "trained") {
        this.begin(j, () => this.deliver(j));
        return { status: "exists" };
      }
    } else if (j?.state === "running") {
      throw this.busy();
    }
    const job: Job = { jobId: c.agentId, command: c, state: "running", cancelled: false };
    this.job = job;
    this.begin(job, () => this.train(job));
    return { status: "training" };
  }

  private busy(): ColonyError {
    return new ColonyError(NodeErrors.TRAINER_BUSY, `${this.o.nodeId} is training job ${this.job!.jobId}`);
  }

  private begin(job: Job, fn: () => Promise<void>): void {
    job.state = "running";
    this.keepAlive(job);
    const p = fn().finally(() => job.keepAlive?.cancel()).catch((err: unknown) => {
      // The node is shutting down (its fetcher closes first): not a failure to report; the
      // coordinator sends the job again when the node is back, and it resumes.
      if (this.closed || (err as ColonyError)?.code === CommonErrors.ALREADY_CLOSED) return;
      if (job.trained) {
        // Trained, but the upload was cut (the coordinator or the link went away): the child stays, and
        // the coordinator's next `train` for the job uploads it again.
        job.state = "trained";
        this.o.logger.warn({ jobId: job.jobId, err: { message: (err as Error)?.message } }, "the child's upload was cut; it is sent again when the coordinator asks");
        return;
      }
      const e = err instanceof ColonyError ? err : new ColonyError(CommonErrors.INTERNAL, (err as Error)?.message ?? String(err));
      job.state = e.code === "DISTIL_CANCELLED" || job.cancelled ? "cancelled" : "failed";
      this.o.counters.inc(`trainer.jobs.${job.state}`);
      this.o.logger.warn({ jobId: job.jobId, code: e.code, err: { message: e.message } }, "training job ended without a child");
      this.report(job, job.state === "cancelled" ? { state: "cancelled" } : { state: "failed", error: { code: e.code.slice(0, 64), message: e.message.slice(0, 4000) } });
    });
    this.running = p;
  }

  private async train(job: Job): Promise<void> {
    const c = job.command;
    const dir = path.join(this.o.dir, job.jobId);
    // The coordinator runs one job at a time: an earlier job's folder (inputs, checkpoint, child) is done with.
    for (const old of await readdir(this.o.dir)) if (old !== job.jobId) await rm(path.join(this.o.dir, old), { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    this.progress(job, "fetch", 0, c.inputs.parents.length + 1);
    const parents = [];
    for (const [i, p] of c.inputs.parents.entries()) {
      const { file } = await this.o.fetcher.ensure(p.sha256);
      parents.push({ agentId: p.agentId, modelFile: file, ...(p.skills ? { skills: p.skills } : {}) });
      this.progress(job, "fetch", i + 1, c.inputs.parents.length + 1);
    }
    const experiences = path.join(dir, "experiences.jsonl");
    const have = await sha256File(experiences).catch(() => undefined);
    if (have !== c.inputs.experiences.sha256) await this.o.fetcher.fetchFile(c.inputs.experiences.sha256, c.inputs.experiences.bytes, experiences);
    if (this.closed) return;
    const s = c.spec;
    const run = (this.o.startJob ?? startTrainJob)(
      {
        jobId: job.jobId, jobDir: dir, experiences, parents, skills: s.skills, mode: s.mode, steps: s.steps, batch: s.batch, seed: s.seed, threads: this.o.threads,
        ...(s.lr !== undefined ? { lr: s.lr } : {}), ...(s.sampling ? { sampling: s.sampling } : {}), gate: s.gate,
        out: path.join(dir, s.mode === "lora" ? "child.lora.gguf" : "child.gguf"),
      },
      { onProgress: (p) => p.phase !== "gate" && this.progress(job, p.phase, p.step, p.total, p.loss, p.tokensPerSecond) },
    );
    job.run = run;
    if (job.cancelled || this.closed) await run.cancel();
    const r = await run.done;
    const { size } = await stat(r.childFile);
    job.trained = { file: r.childFile, sha256: await sha256File(r.childFile), bytes: size, format: r.format, datasetSha256: r.datasetSha256, counts: r.counts, steps: r.steps, seconds: r.seconds, tokensPerSecond: r.tokensPerSecond };
    this.o.counters.inc("trainer.jobs.trained");
    await this.deliver(job);
  }

  /** Uploads the child (one frame at a time, each at its PUBACK) and reports `trained`. */
  private async deliver(job: Job): Promise<void> {
    const t = job.trained!;
    const fd = await open(t.file, "r");
    try {
      for (let offset = 0; offset < t.bytes || offset === 0; ) {
        if (this.closed) return;
        const length = Math.min(UPLOAD_CHUNK, t.bytes - offset);
        const data = Buffer.alloc(length);
        const { bytesRead } = await fd.read(data, 0, length, offset);
        if (bytesRead !== length) throw new ColonyError(CommonErrors.INTERNAL, `the child ${t.file} changed while it was uploaded`);
        const chunkSha256 = createHash("sha256").update(data).digest("hex");
        await this.o.publishBytes(topics.nodeTrainUpload(this.o.nodeId), encodeChunkFrame({ requestId: job.jobId, sha256: t.sha256, offset, length, total: t.bytes, chunkSha256 }, data));
        offset += length;
        this.progress(job, "upload", offset, t.bytes);
        if (t.bytes === 0) break;
      }
    } finally {
      await fd.close();
    }
    job.state = "trained";
    const { file: _file, ...trained } = t;
    this.report(job, { state: "trained", trained });
    this.o.logger.info({ jobId: job.jobId, sha256: t.sha256, bytes: t.bytes, steps: t.steps }, "trained child uploaded");
  }

  private progress(job: Job, phase: NonNullable<TrainProgress["progress"]>["phase"], step: number, total: number, loss: number | null = null, tokensPerSecond = 0): void {
    job.last = { phase, step, total, loss, tokensPerSecond };
    this.report(job, { state: "running", progress: job.last }, 0);
  }

  /**
   * While a job runs, its latest progress goes out again every KEEPALIVE_MS even when nothing moved
   * (a long model fetch, a slow sampling step): the coordinator takes silence for a lost trainer.
   */
  private keepAlive(job: Job): void {
    job.keepAlive?.cancel();
    job.keepAlive = every(this.o.clock, KEEPALIVE_MS, () => {
      if (!this.closed && job.state === "running" && this.job === job && job.last) this.report(job, { state: "running", progress: job.last }, 0);
    });
  }

  private report(job: Job, body: Pick<TrainProgress, "state" | "progress" | "trained" | "error">, qos: 0 | 1 = 1): void {
    if (this.closed) return;
    const msg: TrainProgress = { nodeId: this.o.nodeId, jobId: job.jobId, seq: this.seq++, ...body, at: this.o.clock.now() };
    this.o.out.send(channels.nodeTrainProgress, [this.o.nodeId], msg, { qos });
  }
}
