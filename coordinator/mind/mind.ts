/**
 * The collective mind's coordinator part: experience -> distilled child model -> gate -> signed
 * model -> spawned child agent (docs/mind.md). It listens to requests (the architect's `distil`
 * decisions, `colony distil` on `mind/distil`) and never trains in the coordinator's event loop:
 * each job runs in its own process (distil/job.ts). One job at a time; the others wait in order.
 *
 * A job's life, kept in the store (section `mind`) and on the retained `mind/jobs` topic:
 *   queued -> running (prepare: parents' models from the model store and their verified
 *   successes from the cold cache, written to the job's folder; then the worker: curate, sample,
 *   train, export, gate) -> passed (signed into the model store, then spawned as a child agent on a
 *   node, which fetches and verifies the model before it loads it) | failed (the gate said no: the
 *   report is recorded, nothing ships) | error | cancelled.
 * The coordinator stopping mid-job leaves it `running` with its spec: the next start resumes it from
 * the worker's checkpoint in the same folder.
 */
import { access, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { sha256File } from "../../common/file-hash.ts";
import { ColonyError } from "../../common/errors.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, decode, decodeChunkFrame, SkillSchema, type Decision, type DistilStart, type MindJob, type MindJobsSnapshot, type TrainProgress, type WireError } from "../../common/protocol.ts";
import type { Evolution } from "../evolution/evolution.ts";
import type { CoordinatorLink } from "../link.ts";
import type { TaskStore } from "../market/task-store.ts";
import type { ModelStore } from "../models/model-store.ts";
import type { Registry } from "../registry.ts";
import { startDistilJob, type DistilJob } from "../../trainer/distil/job.ts";
import type { DistilProgress, DistilResult, DistilSpecInput } from "../../trainer/distil/spec.ts";
import { RemoteJob, remoteJobFor, type RemoteJobOptions } from "./remote-job.ts";
import { jobWork, type Trainers } from "./trainers.ts";
import { MindErrors } from "./errors.ts";
import type { ExperienceStore } from "./experiences.ts";
import { birthNode, childGenome, gateSummary, resolveParents, strongestParent, type ResolvedParent } from "./offspring.ts";
import type { MindSettings } from "./settings.ts";

/** A job as stored: what the wire shows, plus the request and the worker's spec (to resume identically). */
interface JobRecord extends MindJob {
  /** The trainer node of a job placed on one (kept so a restart resumes with it); `trainer` on the wire too. */
  request: DistilStart;
  spec?: DistilSpecInput;
}

export interface MindOptions {
  store: TaskStore;
  /** Job folders go under `<dataDir>/mind-jobs/<jobId>` (dataset, checkpoint, child). */
  dataDir: string;
  experiences: Pick<ExperienceStore, "verifiedSuccesses">;
  /** Absent in an insecure fleet: nothing can be signed, so nothing is distilled. */
  models: ModelStore | undefined;
  evolution: Evolution;
  registry: Registry;
  link: CoordinatorLink;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  settings: MindSettings;
  /** Tests replace the worker process. */
  startJob?: typeof startDistilJob;
  /** Trainer nodes (trainers.ts) and the model server's offers of job inputs (served-files.ts); absent: every job trains here. */
  trainers?: Trainers | undefined;
}

const SNAPSHOT_JOBS = 20;
const UNFINISHED = new Set(["queued", "running"]);
const jobKey = (id: string) => `job:${id}`;

export class Mind implements Lifecycle {
  private section!: ReturnType<TaskStore["section"]>;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly queue: string[] = [];
  private current: { jobId: string; job?: DistilJob | RemoteJob; cancelled: boolean } | undefined;
  private loop: Promise<void> | undefined;
  private publishTimer: Timer | undefined;
  private closed = false;
  private subscribed = false;

  constructor(private readonly o: MindOptions) {}

  private readonly onMessage = (topic: string, payload: Buffer, packet?: { retain?: boolean }): void => {
    if (topic !== channels.mindDistil.topic()) return;
    if (packet?.retain) return this.o.counters.drop("retained", { topic });
    const d = decode(channels.mindDistil.schema, payload);
    if (!d.ok) return this.o.counters.drop(`mind-distil.${d.code.toLowerCase()}`);
    if ("cancel" in d.value) void this.cancel(d.value.jobId);
    else void this.request(d.value, "operator").catch((err) => this.o.logger.error({ err }, "distillation request failed"));
  };

  async start(): Promise<void> {
    this.section = this.o.store.section("mind");
    const resume: JobRecord[] = [];
    for await (const [, v] of this.section.iterator({ gte: "job:", lt: "job:\uffff" })) {
      const rec = v as JobRecord;
      this.jobs.set(rec.jobId, rec);
      if (UNFINISHED.has(rec.state)) resume.push(rec);
    }
    // Jobs cut off by a stop resume in the order they were asked for (running first).
    resume.sort((a, b) => Number(b.state === "running") - Number(a.state === "running") || a.createdAt - b.createdAt);
    for (const r of resume) this.queue.push(r.jobId);
    this.o.link.client.on("message", this.onMessage);
    await this.o.link.client.subscribeAsync(channels.mindDistil.topic(), { qos: 1 });
    this.subscribed = true;
    this.publishNow();
    this.kick();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.publishTimer?.cancel();
    try {
      this.o.link.client.off("message", this.onMessage);
      if (this.subscribed) await this.o.link.client.unsubscribeAsync(channels.mindDistil.topic()).catch(() => {});
    } catch {
      // The link is already closed.
    }
    // The worker stops after its current step and leaves a checkpoint; the job stays `running` in the
    // store. A trainer node trains on: the next start sends it the job again.
    const job = this.current?.job;
    if (job instanceof RemoteJob) job.detach();
    else await job?.cancel().catch(() => {});
    await this.loop?.catch(() => {});
  }

  /** The newest jobs first (tests, `colony distil --list` through the retained topic). */
  list(): MindJob[] {
    return [...this.jobs.values()].sort((a, b) => b.createdAt - a.createdAt || b.jobId.localeCompare(a.jobId)).map(wire);
  }

  get(jobId: string): MindJob | undefined {
    const r = this.jobs.get(jobId);
    return r && wire(r);
  }

  /** Queues a job; a request that cannot run is recorded as a job in state `error` with the reason. */
  async request(req: DistilStart, by: MindJob["by"], reason = req.reason ?? "asked by an operator"): Promise<MindJob> {
    const now = this.o.clock.now();
    if (this.jobs.has(req.jobId)) {
      this.o.counters.inc("mind.requests.duplicate");
      return wire(this.jobs.get(req.jobId)!);
    }
    const rec: JobRecord = { jobId: req.jobId, state: "queued", by, skills: req.skills, parents: req.parents.map((p) => ({ agentId: p.agentId, ...(p.nodeId ? { nodeId: p.nodeId } : {}) })), reason: reason.slice(0, 1024), createdAt: now, updatedAt: now, request: req };
    if (!this.o.settings.enabled || !this.o.models) {
      rec.state = "error";
      rec.error = { code: MindErrors.MIND_UNAVAILABLE, message: !this.o.models ? "an insecure coordinator has no signing key: it cannot ship distilled models" : "distillation is off (mind.enabled false)" };
    }
    await this.save(rec);
    this.o.counters.inc(`mind.requests.${by}`);
    if (rec.state === "queued") {
      this.queue.push(rec.jobId);
      this.kick();
    }
    return wire(rec);
  }

  /** The architect's `distil` decision: one job for its skill and parents, unless one is already waiting or running. */
  async fromDecision(d: Decision): Promise<void> {
    // Only named skills: an unlabeled niche ("~c3") has no held-out set the gate could judge a child on.
    const skills = d.niche && SkillSchema.safeParse(d.niche.split("@")[0]).success ? [d.niche.split("@")[0]!] : [];
    const parents = (d.parents ?? [d.agentId]).map((agentId) => ({ agentId }));
    const same = [...this.jobs.values()].find((j) => UNFINISHED.has(j.state) && j.skills.join() === skills.join() && j.parents.map((p) => p.agentId).join() === parents.map((p) => p.agentId).join());
    if (same || skills.length === 0) return;
    const jobId = `distil-${skills.join("-")}-${this.o.clock.now().toString(36)}`;
    await this.request({ jobId, skills, parents }, "architect", d.reason);
  }

  async cancel(jobId: string): Promise<void> {
    const rec = this.jobs.get(jobId);
    if (!rec || !UNFINISHED.has(rec.state)) return;
    if (this.current?.jobId === jobId) {
      this.current.cancelled = true;
      await this.current.job?.cancel().catch(() => {});
      return;
    }
    const i = this.queue.indexOf(jobId);
    if (i >= 0) this.queue.splice(i, 1);
    await this.update(rec, { state: "cancelled" });
  }

  private kick(): void {
    if (this.loop || this.closed) return;
    this.loop = this.drain().finally(() => {
      this.loop = undefined;
      if (this.queue.length && !this.closed) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.queue.length) {
      const rec = this.jobs.get(this.queue.shift()!);
      if (!rec || !UNFINISHED.has(rec.state)) continue;
      this.current = { jobId: rec.jobId, cancelled: false };
      try {
        await this.run(rec);
      } catch (err) {
        if (this.closed) {
          this.o.logger.info({ jobId: rec.jobId }, "distillation job interrupted by shutdown; it resumes at the next start");
        } else {
          const error: WireError = err instanceof ColonyError ? { code: err.code, message: err.message.slice(0, 4096) } : { code: MindErrors.MIND_JOB_FAILED, message: String((err as Error)?.message ?? err).slice(0, 4096) };
          const state = error.code === "DISTIL_CANCELLED" || this.current.cancelled ? "cancelled" : "error";
          this.o.counters.inc(`mind.jobs.${state}`);
          this.o.logger.warn({ jobId: rec.jobId, error }, "distillation job ended without a child");
          await this.update(rec, { state, error });
        }
      } finally {
        this.current = undefined;
      }
    }
  }

  private async run(rec: JobRecord): Promise<void> {
    const s = this.o.settings;
    const models = this.o.models!;
    const req = rec.request;
    await this.update(rec, { state: "running", progress: { phase: "prepare", step: 0, total: 0, loss: null, tokensPerSecond: 0 } });
    const parents = resolveParents(req.parents, this.o.evolution.lineage.all(), (sha) => models.get(sha)?.file);
    rec.parents = parents.map((p) => ({ agentId: p.life.agentId, nodeId: p.life.nodeId }));
    const jobDir = path.join(this.o.dataDir, "mind-jobs", rec.jobId);
    await mkdir(jobDir, { recursive: true, mode: 0o700 });
    const experiences = path.join(jobDir, "experiences.jsonl");
    // A resumed job trains on the dataset it started with.
    if (!rec.spec || !(await exists(experiences))) {
      const agents = parents.map((p) => ({ nodeId: p.life.nodeId, agentId: p.life.agentId }));
      const found = await this.o.experiences.verifiedSuccesses(agents, req.skills, s.maxExperiencesPerSkill);
      const sampling = req.sampling ?? (s.sampling === false ? undefined : s.sampling);
      for (const skill of req.skills) {
        const n = found.filter((e) => e.skill === skill).length;
        if (n < s.minExperiencesPerSkill && !sampling) {
          throw new ColonyError(MindErrors.MIND_TOO_FEW_EXPERIENCES, `the parents have ${n} verified successes on ${skill} in the cold cache; a job needs ${s.minExperiencesPerSkill} (mind.minExperiencesPerSkill) or verified sampling`);
        }
      }
      await writeFile(experiences, found.map((e) => JSON.stringify(e)).join("\n") + (found.length ? "\n" : ""), { mode: 0o600 });
      rec.spec = {
        jobId: rec.jobId, jobDir, experiences, skills: req.skills, mode: req.mode ?? "full",
        parents: parents.map((p) => ({ agentId: p.life.agentId, modelFile: p.modelFile, skills: p.spec.skills.filter((k) => req.skills.includes(k)), genome: p.life.genome })),
        steps: req.steps ?? s.steps, batch: s.batch, seed: 1, threads: s.threads,
        ...(sampling ? { sampling } : {}),
        gate: { perSkill: req.gatePerSkill ?? s.gatePerSkill, margin: req.margin ?? s.margin, seed: `gate-${rec.jobId}` },
      };
      await this.save(rec);
    }
    const onProgress = (p: DistilProgress): void => {
      rec.progress = p;
      rec.updatedAt = this.o.clock.now();
      this.publishSoon();
    };
    let result: DistilResult | undefined;
    const remote = await this.placeRemote(rec, parents);
    if (remote) result = await this.runRemote(rec, parents, remote, onProgress);
    if (!result) {
      const job = (this.o.startJob ?? startDistilJob)(rec.spec, { onProgress });
      this.current!.job = job;
      if (this.current!.cancelled) await job.cancel();
      result = await job.done;
    }
    await this.finish(rec, parents, result);
  }

  /**
   * Whether the job trains on a trainer node (docs/mind.md, "Trainer nodes"): the node it already
   * trains on after a coordinator restart, else the fastest quote if it beats this host. The choice
   * and its reason are recorded with the job.
   */
  private async placeRemote(rec: JobRecord, parents: ResolvedParent[]): Promise<string | undefined> {
    const { trainers } = this.o;
    if (!trainers || !rec.spec) return undefined;
    if (rec.trainer) return rec.trainer;
    const work = await jobWork(rec.spec, parents);
    const placed = await trainers.choose(rec.jobId, work, this.o.settings.quoteWindowMs);
    this.o.logger.info({ jobId: rec.jobId, where: placed.where === "node" ? placed.nodeId : "coordinator", why: placed.why }, "distillation job placed");
    if (placed.where === "coordinator") {
      // Trainer nodes were asked: the job's record (the `mind/jobs` snapshot, `colony distil`'s JSON) says why none got it.
      if (placed.asked) await this.update(rec, { reason: `${rec.reason}; trained here (${placed.why})`.slice(0, 1024) });
      return undefined;
    }
    this.o.counters.inc("mind.trainers.awarded");
    await this.update(rec, { trainer: placed.nodeId, reason: `${rec.reason}; trained on ${placed.nodeId} (${placed.why})`.slice(0, 1024) });
    return placed.nodeId;
  }

  /** The job on a trainer node; undefined when the node failed it (the caller then trains here). */
  private async runRemote(rec: JobRecord, parents: ResolvedParent[], nodeId: string, onProgress: (p: DistilProgress) => void): Promise<DistilResult | undefined> {
    const job = (
      await remoteJobFor(rec.spec as RemoteJobOptions["spec"], parents, nodeId, {
        commands: this.o.evolution.commands, served: this.o.trainers!.served, registry: this.o.registry, clock: this.o.clock, counters: this.o.counters,
        logger: this.o.logger, onProgress, offlineGraceMs: this.o.settings.trainerOfflineMs, ...(this.o.startJob ? { startGate: this.o.startJob } : {}),
      })
    ).start();
    this.current!.job = job;
    if (this.current!.cancelled) await job.cancel();
    try {
      return await job.done;
    } catch (err) {
      const code = (err as ColonyError).code;
      if (this.closed || code === "DISTIL_CANCELLED" || this.current!.cancelled) throw err;
      // The node failed the job: nothing is lost, this host trains it (from the same dataset).
      this.o.counters.inc("mind.trainers.fallback");
      this.o.logger.warn({ jobId: rec.jobId, nodeId, code, err: { message: (err as Error).message } }, "trainer node failed the job: training it here");
      await this.update(rec, { trainer: undefined, reason: `${rec.reason}; ${nodeId} failed it (${code}), trained here`.slice(0, 1024) });
      return undefined;
    }
  }

  /** A trainer node's `train-progress` (inbound.ts checked the node). */
  onTrainProgress(p: TrainProgress): void {
    const job = this.current?.job;
    if (job instanceof RemoteJob && job.jobId === p.jobId && job.nodeId === p.nodeId) return job.onProgress(p);
    this.o.counters.drop("train-progress.unknown-job", { nodeId: p.nodeId });
  }

  /** A chunk frame on a trainer node's `train-upload`. */
  onTrainUpload(nodeId: string, payload: Buffer): void {
    const f = decodeChunkFrame(payload);
    if (!f.ok) return this.o.counters.drop(`train-upload.${f.code}`, { nodeId });
    const job = this.current?.job;
    if (job instanceof RemoteJob && job.jobId === f.header.requestId && job.nodeId === nodeId) return job.onFrame(f.header, f.data);
    this.o.counters.drop("train-upload.unknown-job", { nodeId });
  }

  private async finish(rec: JobRecord, parents: ResolvedParent[], result: DistilResult): Promise<void> {
    const req = rec.request;
    const summary = gateSummary(result.gate);
    const base = { gate: result.gate, counts: result.counts };
    if (!result.gate.passed) {
      this.o.counters.inc("mind.jobs.failed");
      this.o.logger.info({ jobId: rec.jobId, reasons: result.gate.reasons }, `distilled child ${summary}: recorded, not shipped`);
      await this.update(rec, { ...base, state: "failed", reason: `${rec.reason}; the child ${summary}` });
      return;
    }
    await this.update(rec, { ...base, progress: { phase: "sign", step: 0, total: 0, loss: null, tokensPerSecond: 0 } });
    // An adapter only fits the model it was trained on (the job's strongest parent, result.base): that
    // parent's genome carries it, and the store names that base by content.
    const adapterBase = result.format === "gguf-lora" ? parents.find((p) => p.modelFile === result.base) : undefined;
    if (result.format === "gguf-lora" && !adapterBase) throw new ColonyError(MindErrors.MIND_JOB_FAILED, `the adapter's base ${result.base ?? "(none)"} is none of the parents' models`);
    const strongest = adapterBase ?? strongestParent(parents, result.gate);
    const generation = Math.max(...parents.map((p) => p.life.generation)) + 1;
    const lineage = `distil-${[...req.skills].sort().join("-")}`.slice(0, 128);
    // The child's id names its model, and comes from its genome, which names the model by content.
    const child = childGenome(strongest, { sha256: await sha256File(result.childFile), format: result.format }, req.skills, result.gate, generation);
    const signed = await this.o.models!.add(result.childFile, {
      name: child.genome.id, lineage, format: result.format, ...(adapterBase ? { base: adapterBase.modelSha } : {}),
      parents: parents.map((p) => ({ agentId: p.life.agentId, ...(p.life.genome ? { genome: p.life.genome } : {}), model: p.modelSha })),
      skills: req.skills, datasetSha256: result.datasetSha256, gate: result.gate,
    });
    const m = signed.manifest;
    const model = { sha256: m.sha256, name: m.name, lineage: m.lineage, version: m.version };
    this.o.counters.inc("mind.jobs.passed");
    this.o.logger.info({ jobId: rec.jobId, model }, `distilled child ${summary}: signed`);
    if (req.spawn === false) {
      await this.update(rec, { ...base, model, state: "passed" });
      return;
    }
    const online = this.o.registry.list().filter((n) => n.online).map((n) => n.nodeId);
    const nodeId = birthNode(parents, strongest, online);
    if (!nodeId) {
      await this.update(rec, { ...base, model, state: "passed", error: { code: MindErrors.MIND_NO_NODE, message: "no node is online to host the child" } });
      return;
    }
    await this.update(rec, { ...base, model, progress: { phase: "spawn", step: 0, total: 0, loss: null, tokensPerSecond: 0 } });
    if (child.genome.model !== `colony:${m.sha256}` && child.genome.adapter !== `colony:${m.sha256}`) throw new Error(`the store signed ${m.sha256}, not the file the child was named for`);
    const why = `distilled from ${parents.map((p) => p.life.agentId).join(", ")} on ${req.skills.join(", ")} (job ${rec.jobId}, ${result.steps} steps on ${Object.values(result.counts).reduce((a, b) => a + b, 0)} pairs): ${summary}`;
    const outcome = await this.o.evolution.spawnChild(nodeId, child, { parents: parents.map((p) => p.life.agentId), generation, reason: why });
    const ok = outcome.status === "created" || outcome.status === "exists";
    await this.update(rec, {
      ...base, model, state: "passed", child: { agentId: child.genome.id, nodeId, status: outcome.status },
      ...(ok ? {} : { error: outcome.status === "refused" && outcome.error ? outcome.error : { code: MindErrors.MIND_SPAWN_UNANSWERED, message: `node ${nodeId} did not answer the spawn` } }),
    });
  }

  private async update(rec: JobRecord, patch: Partial<JobRecord>): Promise<void> {
    Object.assign(rec, patch, { updatedAt: this.o.clock.now() });
    if (!UNFINISHED.has(rec.state)) delete rec.progress;
    await this.save(rec);
  }

  private async save(rec: JobRecord): Promise<void> {
    this.jobs.set(rec.jobId, rec);
    const ops: { type: "put" | "del"; key: string; value?: unknown }[] = [{ type: "put", key: jobKey(rec.jobId), value: rec }];
    // Forget the oldest finished jobs beyond keepJobs (their folders stay for an operator to inspect).
    const finished = [...this.jobs.values()].filter((j) => !UNFINISHED.has(j.state)).sort((a, b) => a.createdAt - b.createdAt);
    for (const old of finished.slice(0, Math.max(0, finished.length - this.o.settings.keepJobs))) {
      this.jobs.delete(old.jobId);
      ops.push({ type: "del", key: jobKey(old.jobId) });
    }
    await this.section.batch(ops as never);
    this.publishSoon();
  }

  private publishSoon(): void {
    if (this.closed) return;
    this.publishTimer ??= this.o.clock.setTimer(250, () => {
      this.publishTimer = undefined;
      this.publishNow();
    });
  }

  private publishNow(): void {
    if (this.closed) return;
    const snapshot: MindJobsSnapshot = { at: this.o.clock.now(), jobs: this.list().slice(0, SNAPSHOT_JOBS) };
    this.o.link.outbox.send(channels.mindJobs, [], snapshot);
  }
}

function wire(r: JobRecord): MindJob {
  const { request: _r, spec: _s, ...job } = r;
  return job;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
