/**
 * A distillation job trained on a trainer node (docs/mind.md, "Trainer nodes"), with the same face
 * as a local job (trainer/distil/job.ts `DistilJob`), so the mind runs both alike:
 *
 * 1. the job's experiences are offered to that node only (served-files.ts) and `train` is sent
 *    (a life cycle command: re-sent until acked; the node acks `training`, or `exists`);
 * 2. the node's `train-progress` becomes the job's progress; its chunk frames fill the child file
 *    (child-upload.ts); its `trained` says what the file must be;
 * 3. the coordinator checks the file (size, sha256), then runs stage "gate" of the pipeline in a
 *    local worker: the model gate before llama.cpp opens it, then the held-out gate against the
 *    parents. The result is a `DistilResult` like a local job's.
 *
 * A node that goes offline and comes back is sent `train` again: it resumes from its checkpoint (or
 * uploads again, if it had finished). Offline longer than `offlineGraceMs`, or silent for
 * `silenceMs` after two re-sends, the job fails with MIND_TRAINER_LOST and the mind trains locally.
 * `detach()` (the coordinator stopping) lets the node train on: the next start resumes with it.
 */
import path from "node:path";
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import type { ModelChunkHeader, RemoteTrainSpec, TrainInputs, TrainProgress } from "../../common/protocol.ts";
import { startDistilJob, type DistilJob, type DistilJobOptions } from "../../trainer/distil/job.ts";
import type { DistilProgress, DistilResult, DistilSpecInput } from "../../trainer/distil/spec.ts";
import type { Commands } from "../evolution/commands.ts";
import type { Registry } from "../registry.ts";
import { ChildUpload } from "./child-upload.ts";
import { MindErrors } from "./errors.ts";
import { shareableExperiences, type ServedFiles } from "./served-files.ts";

export interface RemoteJobOptions {
  nodeId: string;
  /** The job as it runs here for the gate: the coordinator's paths to the parents and the experiences. */
  spec: DistilSpecInput & { jobId: string; jobDir: string };
  command: { spec: RemoteTrainSpec; inputs: TrainInputs };
  experiences: { file: string; sha256: string; bytes: number };
  commands: Pick<Commands, "send">;
  served: ServedFiles;
  registry: Pick<Registry, "isOnline">;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  onProgress?: DistilJobOptions["onProgress"];
  /** Largest child accepted. Default 8 GiB. */
  maxChildBytes?: number;
  /** Offline longer than this: MIND_TRAINER_LOST. Default 120 000 ms. */
  offlineGraceMs?: number;
  /** No word from the node this long: `train` is sent again; a third silence is MIND_TRAINER_LOST. Default 120 000 ms. */
  silenceMs?: number;
  /** Tests replace the gate's worker. */
  startGate?: typeof startDistilJob;
}

const WATCH_MS = 1000;

/**
 * A remote job for `spec` on `nodeId`: its `train` command (the training part of the spec, the
 * parents' models and the experiences by content) and the experiences file it may share (private
 * tasks' left out: served-files.ts). Not started.
 */
export async function remoteJobFor(
  spec: RemoteJobOptions["spec"],
  parents: readonly { life: { agentId: string }; spec: { skills: readonly string[] }; modelSha: string }[],
  nodeId: string,
  deps: Omit<RemoteJobOptions, "nodeId" | "spec" | "command" | "experiences">,
): Promise<RemoteJob> {
  const shared = await shareableExperiences(spec.experiences);
  const command: RemoteJobOptions["command"] = {
    spec: {
      skills: spec.skills, mode: spec.mode ?? "full", steps: spec.steps ?? 300, batch: spec.batch ?? 32, seed: spec.seed ?? 1,
      ...(spec.sampling ? { sampling: { candidates: spec.sampling.candidates ?? 4, temperature: spec.sampling.temperature ?? 0.8, prompts: spec.sampling.prompts ?? 200 } } : {}),
      gate: { perSkill: spec.gate?.perSkill ?? 200, margin: spec.gate?.margin ?? 0.01, seed: spec.gate?.seed ?? "distil-gate" },
    },
    inputs: { experiences: { sha256: shared.sha256, bytes: shared.bytes }, parents: parents.map((p) => ({ agentId: p.life.agentId, sha256: p.modelSha, skills: p.spec.skills.filter((k) => spec.skills.includes(k)) })) },
  };
  return new RemoteJob({ ...deps, nodeId, spec, command, experiences: shared });
}

export class RemoteJob implements DistilJob<DistilResult> {
  readonly done: Promise<DistilResult>;
  readonly pid = undefined;
  private resolve!: (r: DistilResult) => void;
  private reject!: (e: Error) => void;
  private settled = false;
  private readonly upload: ChildUpload;
  private gate: DistilJob<DistilResult> | undefined;
  private lastSeq = -1;
  private heardAt: number;
  private offlineSince: number | undefined;
  private resends = 0;
  private watch: Timer | undefined;
  private trained = false;

  constructor(private readonly o: RemoteJobOptions) {
    this.done = new Promise<DistilResult>((resolve, reject) => ((this.resolve = resolve), (this.reject = reject)));
    this.done.catch(() => {});
    const lora = o.command.spec.mode === "lora";
    this.upload = new ChildUpload(path.join(o.spec.jobDir, lora ? "remote-child.lora.gguf" : "remote-child.gguf"), o.maxChildBytes ?? 8 * 2 ** 30);
    this.heardAt = o.clock.now();
  }

  get jobId(): string {
    return this.o.spec.jobId;
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  /** Offers the inputs and sends `train`; the watch re-sends it when the node comes back. */
  start(): this {
    const e = this.o.experiences;
    this.o.served.offer(e.sha256, { file: e.file, bytes: e.bytes, nodeId: this.o.nodeId });
    this.send();
    const tick = () => {
      this.watch = this.o.clock.setTimer(WATCH_MS, () => {
        if (this.settled) return;
        this.check();
        tick();
      });
    };
    tick();
    return this;
  }

  private send(): void {
    // A node that restarted numbers its messages from 0 again.
    this.lastSeq = -1;
    void this.o.commands.send(this.o.nodeId, { kind: "train", agentId: this.jobId, ...this.o.command }).then((ack) => {
      if (this.settled) return;
      if (ack.status === "training" || ack.status === "exists") return void (this.heardAt = this.o.clock.now());
      if (ack.status === "no-answer") return this.check();
      const err = ack.status === "refused" && ack.error ? ack.error : { code: MindErrors.MIND_TRAINER_LOST, message: `node ${this.o.nodeId} answered ${ack.status}` };
      this.fail(new ColonyError(err.code, `trainer ${this.o.nodeId}: ${err.message}`));
    });
  }

  private check(): void {
    if (this.trained) return;
    const now = this.o.clock.now();
    const online = this.o.registry.isOnline(this.o.nodeId);
    if (!online) {
      this.offlineSince ??= now;
      if (now - this.offlineSince > (this.o.offlineGraceMs ?? 120_000)) this.fail(new ColonyError(MindErrors.MIND_TRAINER_LOST, `trainer ${this.o.nodeId} has been offline for ${Math.round((now - this.offlineSince) / 1000)} s`));
      return;
    }
    if (this.offlineSince !== undefined) {
      // Back after a restart or a drop: the same job again (it resumes from its checkpoint there).
      this.offlineSince = undefined;
      this.o.counters.inc("mind.trainers.resent");
      this.o.logger.info({ jobId: this.jobId, nodeId: this.o.nodeId }, "trainer is back: training resumes there");
      this.heardAt = now;
      return this.send();
    }
    if (now - this.heardAt > (this.o.silenceMs ?? 120_000)) {
      if (this.resends >= 2) return this.fail(new ColonyError(MindErrors.MIND_TRAINER_LOST, `trainer ${this.o.nodeId} has said nothing of job ${this.jobId} for ${Math.round((now - this.heardAt) / 1000)} s`));
      this.resends++;
      this.heardAt = now;
      this.o.counters.inc("mind.trainers.resent");
      this.send();
    }
  }

  /** A chunk frame of this job from its node (mind.ts has matched both). */
  onFrame(header: ModelChunkHeader, data: Buffer): void {
    if (this.settled || this.trained) return;
    this.heardAt = this.o.clock.now();
    const why = this.upload.onFrame(header, data);
    if (why) this.o.counters.drop("train-upload.refused", { nodeId: this.o.nodeId, why: why.slice(0, 200) });
  }

  /** The node's `train-progress` for this job. */
  onProgress(p: TrainProgress): void {
    if (this.settled || (p.state === "running" && p.seq <= this.lastSeq)) return;
    this.lastSeq = Math.max(this.lastSeq, p.seq);
    this.heardAt = this.o.clock.now();
    this.resends = 0;
    if (p.state === "running" && p.progress) {
      const q = p.progress;
      // The job's phases: fetching inputs is part of preparing it; uploading the child, of its export.
      const phase: DistilProgress["phase"] = q.phase === "fetch" ? "curate" : q.phase === "upload" ? "export" : q.phase;
      this.o.onProgress?.({ phase, step: q.step, total: q.total, loss: q.loss, tokensPerSecond: q.tokensPerSecond });
      return;
    }
    if (p.state === "failed") return this.fail(new ColonyError(p.error?.code ?? MindErrors.MIND_TRAINER_LOST, `trainer ${this.o.nodeId}: ${p.error?.message ?? "failed"}`));
    if (p.state === "cancelled") return this.fail(new ColonyError("DISTIL_CANCELLED", `trainer ${this.o.nodeId} cancelled job ${this.jobId}`));
    if (p.state === "trained" && p.trained && !this.trained) {
      this.trained = true;
      void this.gateChild(p.trained).catch((err: Error) => this.fail(err));
    }
  }

  private async gateChild(t: NonNullable<TrainProgress["trained"]>): Promise<void> {
    const why = await this.upload.complete(t.sha256, t.bytes);
    if (why) {
      this.o.counters.inc("mind.trainers.bad-upload");
      throw new ColonyError(MindErrors.MIND_TRAINER_LOST, `the child trainer ${this.o.nodeId} uploaded is not what it reports: ${why}`);
    }
    this.o.served.withdraw(this.o.experiences.sha256);
    this.o.logger.info({ jobId: this.jobId, nodeId: this.o.nodeId, sha256: t.sha256, bytes: t.bytes, steps: t.steps }, "child trained on a node: gating it here");
    const { sha256: _s, bytes: _b, format: _f, ...trained } = t;
    this.gate = (this.o.startGate ?? startDistilJob)({ ...this.o.spec, stage: "gate", out: this.upload.file, trained }, { ...(this.o.onProgress ? { onProgress: this.o.onProgress } : {}) });
    const r = await this.gate.done;
    this.finish(() => this.resolve(r));
  }

  private fail(err: Error): void {
    this.finish(() => this.reject(err));
  }

  private finish(f: () => void): void {
    if (this.settled) return;
    this.settled = true;
    this.watch?.cancel();
    this.o.served.withdraw(this.o.experiences.sha256);
    void this.upload.close();
    f();
  }

  /** Stops the job on the node (after its current step) and here. */
  async cancel(): Promise<void> {
    if (this.settled) return;
    void this.o.commands.send(this.o.nodeId, { kind: "train-cancel", agentId: this.jobId });
    await this.gate?.cancel();
    this.fail(new ColonyError("DISTIL_CANCELLED", `job ${this.jobId} cancelled`));
  }

  /** The coordinator stops: the node trains on; the next start sends `train` again and picks it up. */
  detach(): void {
    void this.gate?.cancel();
    this.fail(new ColonyError("MIND_DETACHED", "the coordinator is stopping"));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel();
  }
}
