/**
 * The node daemon's root: it wires the parts of one device and starts them in order, closing them
 * in reverse (common/lifecycle.ts):
 *
 *   store -> caches -> runtime -> agents -> calibration -> link -> presence -> bids -> jobs -> lifecycle -> fetching
 *
 * - store: the node's LevelDB (calibrations, hot cache, the coordinator's records of its agents);
 * - runtime: the one llama.cpp of the process (llama/llama-runtime.ts); agents: the pool that
 *   sleeps and wakes them (agents/); calibration: measures models (recalibrator.ts);
 * - link: the MQTT session, the only way in or out (link.ts); every other part publishes through
 *   its typed outbox;
 * - presence: retained status and heartbeats; bids: announce -> bid (bid-desk.ts); jobs: award ->
 *   run -> done (jobs.ts); lifecycle: the coordinator's spawn / retire / wake commands
 *   (agents/lifecycle.ts), whose outcome agents/agent-store.ts keeps across restarts;
 * - fetching: pushed models fetched over MQTT, verified and kept (models/, docs/node.md "Pushed models");
 * - trainer: when the config offers it, distillation jobs the coordinator awards (trainer/, docs/mind.md).
 *
 * Time comes from the injected clock, so a node whose clock is wrong can be run in a test.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { systemClock, type Clock } from "../common/clock.ts";
import { Counters } from "../common/counters.ts";
import { PartGroup, type Lifecycle, type NamedPart } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import { channels, type Verdict } from "../common/protocol.ts";
import type { Genome } from "./agents/agent.ts";
import { AgentMaker } from "./agents/agent-maker.ts";
import { AgentPool } from "./agents/agent-pool.ts";
import { AgentStore } from "./agents/agent-store.ts";
import { AgentLifecycle } from "./agents/lifecycle.ts";
import { RecordCache } from "./agents/record-cache.ts";
import { BidDesk } from "./bid-desk.ts";
import type { BidderNode } from "./bidder.ts";
import { detectMeter, EnergyAccount, type EnergyMeter } from "./energy-meter.ts";
import { HotCache } from "./hot-cache.ts";
import { JobRunner } from "./jobs.ts";
import { CalibrationStore } from "./llama/calibration.ts";
import { LlamaRuntime, type ModelFacts } from "./llama/llama-runtime.ts";
import { NodeLink } from "./link.ts";
import { NodePresence } from "./presence.ts";
import type { DeviceProbe } from "./probe.ts";
import { maxAgentsFor, type DeviceProfile } from "./profile.ts";
import { Recalibrator } from "./recalibrator.ts";
import { verifyAdapterFile } from "./llama/adapter-file.ts";
import { verifyModelFile } from "./llama/model-file.ts";
import { parseModelRef } from "./llama/model-ref.ts";
import { ModelFetcher, type ModelFetcherOptions } from "./models/model-fetcher.ts";
import { NodeModelStore } from "./models/model-store.ts";
import { ModelVersions } from "./models/model-versions.ts";
import { TrainerDesk, type TrainerDeskOptions } from "./trainer/trainer-desk.ts";

export interface NodeDaemonOptions {
  nodeId: string;
  /** Broker URL (already discovered or configured). */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  profile: DeviceProfile;
  /** The most inference threads a model may use; each model runs with its calibrated count. */
  threads: number;
  agents: { genomes: Genome[]; baseDir: string };
  dataDir: string;
  probe: DeviceProbe;
  logger: Logger;
  heartbeatMs?: number;
  progressIntervalMs?: number;
  hotCacheSize?: number;
  calibrate?: boolean;
  sleepAfterMs?: number | undefined;
  /** Re-measure a model whose calibration is older than this, when the node is idle. Default 6 h. */
  recalibrateAfterMs?: number | undefined;
  /** Free memory reader for the pool (tests inject); default the probe's live value. */
  freeMemMB?: () => number;
  /** A real energy meter, or "model" for none; default: detected (RAPL, else a battery, else none: energy is modelled). */
  energyMeter?: EnergyMeter | "model" | undefined;
  /** Load models the model gate does not model, after its basic checks (config allowUncheckedModels). Default false. */
  allowUncheckedModels?: boolean | undefined;
  /** How long a retire command waits for the agent's accepted tasks before AGENT_BUSY. Default 120 s. */
  retireWaitMs?: number | undefined;
  /**
   * The fleet's model public key (base64url ed25519, the node credential's `modelKey`): pushed
   * models must be signed with it. Default none: every pushed model is refused with MODEL_KEY_MISSING.
   */
  modelKey?: string | undefined;
  /** Offer to train distillation jobs with this many threads (node/trainer/). Default: off. */
  trainer?: { threads: number; measure?: TrainerDeskOptions["measure"]; startJob?: TrainerDeskOptions["startJob"] } | undefined;
  /** Tuning of the model fetcher (chunk size, window, timeouts; node/models/model-fetcher.ts). */
  modelFetch?: Pick<ModelFetcherOptions, "chunkBytes" | "window" | "requestTimeoutMs" | "retries"> | undefined;
  clock?: Clock;
}

export class NodeDaemon implements Lifecycle {
  private readonly log: Logger;
  private readonly clock: Clock;
  readonly counters: Counters;
  private parts: PartGroup | undefined;
  runtime!: LlamaRuntime;
  pool!: AgentPool;
  calibrations!: CalibrationStore;
  hot!: HotCache;
  records!: RecordCache;
  recalibrator!: Recalibrator;
  link!: NodeLink;
  presence!: NodePresence;
  bids!: BidDesk;
  jobs!: JobRunner;
  agentStore!: AgentStore;
  lifecycle!: AgentLifecycle;
  models!: NodeModelStore;
  fetcher!: ModelFetcher;
  trainer: TrainerDesk | undefined;

  constructor(private readonly opts: NodeDaemonOptions) {
    this.log = opts.logger.child({ nodeId: opts.nodeId });
    this.clock = opts.clock ?? systemClock;
    this.counters = new Counters(this.log, () => this.clock.now());
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  /** Running and queued tasks (tests, bench). */
  get activeJobs(): number {
    return this.jobs?.active ?? 0;
  }

  async start(): Promise<void> {
    const o = this.opts;
    const { clock, log, counters } = this;
    // The store opens first: every cache below is a sublevel of it.
    await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
    const { Level } = await import("level");
    const db = new Level<string, unknown>(path.join(o.dataDir, "db"), { valueEncoding: "json" });
    await db.open();
    const store: Lifecycle = { start: async () => {}, close: () => db.close() };
    this.calibrations = new CalibrationStore(db);
    this.hot = new HotCache(db, o.hotCacheSize ?? 200);
    this.records = new RecordCache(db);
    this.agentStore = new AgentStore(db, log);
    // Pushed models (node/models/): content-addressed, within the profile's modelDiskMB.
    const modelsDir = path.join(o.dataDir, "colony-models");
    this.models = new NodeModelStore(modelsDir, { quotaBytes: o.profile.modelDiskMB !== undefined ? o.profile.modelDiskMB * 2 ** 20 : undefined });
    const versions = new ModelVersions(modelsDir);
    const caches: Lifecycle = {
      start: async () => (await this.hot.start(), await this.records.start(), await this.agentStore.start(), await this.models.open(), await versions.load()),
      close: async () => {},
    };

    this.runtime = new LlamaRuntime({
      threads: o.threads, gpuLayers: o.profile.gpuLayers, modelsDir: path.join(o.dataDir, "models"), logger: log,
      verifiedDir: path.join(o.dataDir, "verified-models"), allowUncheckedModels: o.allowUncheckedModels,
      calibratedThreads: (file) => this.calibrations.get(file)?.threads,
    });
    const facts = new Map<string, ModelFacts>();
    this.pool = new AgentPool(this.runtime, {
      memoryReserveMB: o.profile.memoryReserveMB,
      sleepAfterMs: o.sleepAfterMs ?? o.profile.sleepAfterMs,
      logger: log,
      freeMemMB: o.freeMemMB ?? (() => o.probe.snapshot().freeMemMB),
      modelNeedMB: (file) => Math.max(this.calibrations.get(file)?.residentMB ?? 0, (facts.get(file)?.sizeMB ?? 0) * 1.1) + 16,
      clock,
    });
    const maker = new AgentMaker({
      runtime: this.runtime, baseDir: o.agents.baseDir, modelsDir: path.join(o.dataDir, "models"), facts, now: () => clock.now(),
      colony: (sha256) => this.fetcher.ensure(sha256),
    });
    const agents: Lifecycle = {
      start: async () => {
        // The agents file less what the coordinator retired, plus what it spawned (agent-store.ts).
        for (const m of this.agentStore.population(o.agents.genomes)) {
          if (!m.spawned) {
            this.pool.add(await maker.fromFile(m.genome));
            continue;
          }
          // A spawned agent whose model went away must not keep the node down; its record stays.
          try {
            this.pool.add(await maker.spawned(m.genome, m.generation, m.files));
          } catch (err) {
            log.error({ err, agentId: m.genome.id }, "a spawned agent cannot be hosted again: skipped");
          }
        }
        await this.pool.start();
      },
      close: () => this.pool.close(),
    };
    this.recalibrator = new Recalibrator({
      pool: this.pool, runtime: this.runtime, calibrations: this.calibrations, calibrateAtStart: o.calibrate !== false,
      maxAgeMs: o.recalibrateAfterMs ?? 6 * 3600_000, idle: () => this.activeJobs === 0, clock, logger: log,
    });

    this.link = new NodeLink({ nodeId: o.nodeId, url: o.url, username: o.username, password: o.password, clock, counters, logger: log });
    const out = this.link.outbox;
    this.fetcher = new ModelFetcher({
      nodeId: o.nodeId, store: this.models, versions, modelKey: () => o.modelKey, inUse: () => this.modelsInUse(), counters, logger: log, now: () => clock.now(),
      send: (req) => out.send(channels.nodeModelFetch, [o.nodeId], req),
      report: (r) => out.send(channels.nodeModelReport, [o.nodeId], r),
      // Bytes at QoS 0 (the next supersedes them); a change of state at QoS 1.
      progress: (p) => out.send(channels.nodeModelProgress, [o.nodeId], p, p.state === "fetching" ? {} : { qos: 1 }),
      // The gate llama.cpp's every load goes through, on the part file, before the model enters the store.
      gate: async (file, m) => void (m.format === "gguf-lora" ? await verifyAdapterFile(file, `colony:${m.sha256}`) : await verifyModelFile(file, { allowUnchecked: o.allowUncheckedModels, shownAs: `colony:${m.sha256}` })),
      ...o.modelFetch,
    });
    if (o.trainer) {
      this.trainer = new TrainerDesk({
        nodeId: o.nodeId, dir: path.join(o.dataDir, "train-jobs"), threads: o.trainer.threads, watts: o.profile.power.activeW,
        fetcher: this.fetcher, holds: (sha) => this.models.has(sha), out, publishBytes: (topic, payload) => this.link.publishBytes(topic, payload),
        onCapability: () => this.presence.publishStatus(), clock, counters, logger: log.child({ part: "trainer" }),
        ...(o.trainer.measure ? { measure: o.trainer.measure } : {}), ...(o.trainer.startJob ? { startJob: o.trainer.startJob } : {}),
      });
    }
    this.presence = new NodePresence({ nodeId: o.nodeId, profile: o.profile, pool: this.pool, runtime: this.runtime, probe: o.probe, load: () => this.jobs.load, listen: (skills) => this.link.listen(skills), trainer: () => this.trainer?.capability }, out, clock, o.heartbeatMs ?? 5000);
    this.bids = new BidDesk(o.nodeId, () => this.bidderView(), out, clock, this.link.coordinatorClock, counters, log);
    this.jobs = new JobRunner({
      nodeId: o.nodeId, profile: o.profile, pool: this.pool, calibrations: this.calibrations, probe: o.probe, hot: this.hot,
      energy: new EnergyAccount(o.energyMeter === "model" ? undefined : (o.energyMeter ?? detectMeter()), clock), answered: (id) => this.bids.answered(id), out, clock, coordinatorClock: this.link.coordinatorClock, counters, logger: log,
      progressIntervalMs: o.progressIntervalMs ?? 100, onIdleSlot: () => this.presence.publishHeartbeat(),
    });
    this.lifecycle = new AgentLifecycle({
      nodeId: o.nodeId, pool: this.pool, store: this.agentStore, maker, settled: (id, ms) => this.jobs.settled(id, ms),
      maxAgents: () => maxAgentsFor(o.profile, o.probe.snapshot().totalMemMB), modelNeedMB: (file) => this.pool.modelNeedMB(file),
      memoryForModelsMB: () => o.probe.snapshot().totalMemMB - o.profile.memoryReserveMB,
      publishStatus: () => this.presence.publishStatus(), out, clock, logger: log, retireWaitMs: o.retireWaitMs, models: this.fetcher, trainer: this.trainer,
    });
    this.pool.onChange = () => this.presence.publishStatus();
    this.link.onConnect(() => this.presence.publishStatus());
    this.link.route({
      announce: (a) => this.bids.onAnnounce(a),
      award: (a) => this.jobs.onAward(a),
      cancel: (c) => this.jobs.onCancel(c),
      verdict: (v) => void this.fileVerdict(v),
      coordinatorStatus: (s) => this.presence.onCoordinatorStatus(s),
      command: (c) => this.lifecycle.onCommand(c),
      badCommand: (r) => this.lifecycle.onBadCommand(r),
      modelChunk: (payload) => this.fetcher.onFrame(payload),
    });
    // Closed first: a transfer in flight stops (its part file stays for the next start).
    const fetching: Lifecycle = { start: async () => {}, close: async () => this.fetcher.close() };
    const parts: NamedPart[] = [
      ["store", store], ["caches", caches], ["runtime", this.runtime], ["agents", agents], ["calibration", this.recalibrator],
      ["link", this.link], ["presence", this.presence], ["bids", this.bids], ["jobs", this.jobs], ["lifecycle", this.lifecycle],
      // Closed after the fetcher (parts close in reverse): a job still fetching its inputs ends with
      // the fetcher's ALREADY_CLOSED instead of waiting on it; a training one stops after its step.
      ...(this.trainer ? [["trainer", this.trainer] as NamedPart] : []),
      ["fetching", fetching],
    ];
    this.parts = new PartGroup(parts, (err, part) => log.error({ err, part }, "error while closing"));
    await this.parts.start();
  }

  /** What the bidder sees: everything read from memory, nothing awaited (the bid path). */
  bidderView(): BidderNode {
    const o = this.opts;
    return {
      nodeId: o.nodeId,
      profile: o.profile,
      snapshot: o.probe.snapshot(),
      running: this.jobs.load.busy,
      queued: this.jobs.load.queued,
      queueMs: this.jobs.queueMs(),
      reclaimableMB: this.pool.reclaimableMB(),
      agents: [...this.pool.agents.values()].map((ag) => ({
        agentId: ag.id,
        skills: ag.genome.skills,
        state: ag.state,
        calibration: this.calibrations.get(ag.modelFile),
        threads: ag.threads,
        contextSize: ag.contextSize,
        templateChars: ag.render("").length,
        wakeNeedMB: this.pool.wakeNeedMB(ag),
        claim: (skill) => ag.claim(skill),
        record: (skill) => this.records.get(ag.id, skill),
      })),
    };
  }

  /** sha256 of every pushed model an agent uses (hosted, or stored as spawned), a training job's parents, and transfers running. */
  modelsInUse(): Set<string> {
    const out = new Set<string>([...(this.fetcher?.fetching ?? []), ...(this.trainer?.modelsInUse() ?? [])]);
    const genomes = [...(this.pool?.agents.values() ?? [])].map((a) => a.genome);
    for (const m of this.agentStore?.population(this.opts.agents.genomes) ?? []) genomes.push(m.genome);
    for (const g of genomes) {
      for (const spec of [g.model, g.adapter]) {
        if (!spec) continue;
        try {
          const sha = parseModelRef(spec).sha256;
          if (sha) out.add(sha);
        } catch {}
      }
    }
    return out;
  }

  /** Removes pushed models no agent uses (never one in use); returns their hashes. */
  async collectModels(): Promise<string[]> {
    const removed = await this.models.gc(this.modelsInUse());
    if (removed.length) this.log.info({ removed }, "unused pushed models removed");
    return removed;
  }

  /** The coordinator's verdict on a task this node ran: into the hot cache, and its record of the agent into the record cache. */
  private async fileVerdict(v: Verdict): Promise<void> {
    try {
      // Kept under the task's key: its skill, or the niche of a task without one.
      if (v.record && this.pool.get(v.agentId)) await this.records.put(v.agentId, v.skill ?? v.niche, v.record);
      if (v.source !== "failure") await this.hot.verdict(v.taskId, v);
    } catch (err) {
      this.log.error({ err }, "filing a verdict failed");
    }
  }

  close(): Promise<void> {
    return this.parts?.close() ?? Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
