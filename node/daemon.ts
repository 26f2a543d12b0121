/**
 * The node daemon (root part): probe, llama.cpp runtime, agents, calibration, hot cache and the MQTT
 * session with the coordinator. Started in order, closed in reverse.
 *
 * Bid path: announce -> decideBid (synchronous, from in-memory state) -> publish. Nothing on it
 * awaits I/O, so bids leave within a millisecond even while llama.cpp generates (generation runs
 * on llama.cpp's own threads; the JS thread only sees token callbacks).
 *
 * Exactly-once on this node: an award is keyed by auctionId; a repeated award (a retransmission,
 * or a reconnect) is re-acked and never run twice; results published while the broker is away
 * are QoS 1 and mqtt.js sends them after the reconnect.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { connectMqtt } from "../common/mqtt-connect.ts";
import {
  AnnounceSchema, AwardSchema, CancelSchema, CoordinatorStatusSchema, VerdictSchema, PROTOCOL_VERSION, decode, encode, topics,
  type Ack, type Award, type Bid, type Done, type Heartbeat, type NodeStatus, type Progress,
} from "../common/protocol.ts";
import { Agent, type Genome } from "./agent.ts";
import { AgentPool } from "./agent-pool.ts";
import { decideBid, deviceState, type BidderNode } from "./bidder.ts";
import { calibrateBest, CalibrationStore } from "./calibration.ts";
import { estimateCost, UNCALIBRATED } from "./cost-model.ts";
import { NodeErrors } from "./errors.ts";
import { HotCache } from "./hot-cache.ts";
import { LlamaRuntime, resolveModelPath, verifyModelFile } from "./llama-runtime.ts";
import type { DeviceProbe } from "./probe.ts";
import type { DeviceProfile } from "./profile.ts";

export interface NodeDaemonOptions {
  nodeId: string;
  /** Broker URL (already discovered or configured). */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  profile: DeviceProfile;
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
  now?: () => number;
}

interface Job {
  award: Award;
  agent: Agent;
  abort: AbortController;
  acceptedAt: number;
  estimateMs: number;
  started?: number;
  done: Promise<void>;
}

export class NodeDaemon {
  private readonly log: Logger;
  private readonly now: () => number;
  private db: import("level").Level<string, unknown> | undefined;
  runtime!: LlamaRuntime;
  pool!: AgentPool;
  calibrations!: CalibrationStore;
  hot!: HotCache;
  private client: MqttClient | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private recalibrateTimer: NodeJS.Timeout | undefined;
  private recalibrating = false;
  /** By auctionId: running or queued, and recently finished (to re-ack duplicates, never run twice). */
  private readonly jobs = new Map<string, Job>();
  private readonly finished = new Map<string, number>();
  private readonly bidFor = new Set<string>();
  private readonly queue: Job[] = [];
  private running = 0;
  private closing: Promise<void> | undefined;
  private coordinatorStartedAt = 0;
  readonly counters = { announces: 0, bids: 0, declines: 0, awards: 0, done: 0, dropped: 0 };
  /** Announce-to-bid publish times in ms (bench). */
  readonly bidLatencies: number[] = [];

  constructor(private readonly opts: NodeDaemonOptions) {
    this.log = opts.logger.child({ nodeId: opts.nodeId });
    this.now = opts.now ?? Date.now;
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  async start(): Promise<void> {
    const o = this.opts;
    await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
    const { Level } = await import("level");
    this.db = new Level<string, unknown>(path.join(o.dataDir, "db"), { valueEncoding: "json" });
    await this.db.open();
    this.calibrations = new CalibrationStore(this.db);
    this.hot = new HotCache(this.db, o.hotCacheSize ?? 200);
    await this.hot.start();

    this.runtime = new LlamaRuntime({ threads: o.threads, gpuLayers: o.profile.gpuLayers, modelsDir: path.join(o.dataDir, "models"), logger: this.log });
    await this.runtime.start();
    const sizes = new Map<string, number>();
    this.pool = new AgentPool(this.runtime, {
      memoryReserveMB: o.profile.memoryReserveMB,
      sleepAfterMs: o.sleepAfterMs ?? o.profile.sleepAfterMs,
      logger: this.log,
      freeMemMB: o.freeMemMB ?? (() => o.probe.snapshot().freeMemMB),
      modelNeedMB: (file) => {
        const cal = this.calibrations.get(file);
        return Math.max(cal?.residentMB ?? 0, (sizes.get(file) ?? 0) * 1.1) + 16;
      },
      now: this.now,
    });
    for (const g of o.agents.genomes) {
      const file = await resolveModelPath(g.model, o.agents.baseDir, path.join(o.dataDir, "models"));
      sizes.set(file, await verifyModelFile(file));
      this.pool.add(new Agent(g, file, this.runtime, this.now));
    }
    this.pool.onChange = () => this.publishStatus();
    for (const a of this.pool.agents.values()) {
      // Keyed by the maximum thread count; the stored calibration names the best one.
      const known = this.calibrations.get(a.modelFile) ?? (await this.calibrations.load(a.modelFile, o.threads));
      if (known) {
        this.runtime.setThreadsFor(a.modelFile, known.threads);
        continue;
      }
      if (o.calibrate === false) continue;
      await this.calibrations.put(a.modelFile, o.threads, await calibrateBest(a, this.runtime, this.log));
    }
    await this.pool.start();
    await this.connect();
    const every = o.recalibrateAfterMs ?? 6 * 3600_000;
    this.recalibrateTimer = setInterval(() => void this.recalibrateIfIdle(every), Math.max(1000, Math.min(60_000, every / 10)));
    this.recalibrateTimer.unref();
  }

  /**
   * Calibrations age (firmware updates, thermal paste, other services): when nothing runs, re-measure
   * the stalest model whose agents are all asleep, so no task and no live context is disturbed.
   */
  async recalibrateIfIdle(maxAgeMs: number): Promise<boolean> {
    if (this.recalibrating || this.closing || this.running > 0 || this.queue.length > 0) return false;
    const now = this.now();
    const byModel = new Map<string, Agent[]>();
    for (const a of this.pool.agents.values()) byModel.set(a.modelFile, [...(byModel.get(a.modelFile) ?? []), a]);
    const stale = [...byModel.entries()]
      .filter(([file, agents]) => agents.every((a) => a.state === "asleep") && now - (this.calibrations.get(file)?.at ?? 0) > maxAgeMs)
      .sort(([a], [b]) => (this.calibrations.get(a)?.at ?? 0) - (this.calibrations.get(b)?.at ?? 0));
    const pick = stale[0];
    if (!pick) return false;
    this.recalibrating = true;
    try {
      const c = await calibrateBest(pick[1][0]!, this.runtime, this.log);
      await this.calibrations.put(pick[0], this.opts.threads, c);
      return true;
    } catch (err) {
      this.log.warn({ err, model: pick[0] }, "recalibration failed");
      return false;
    } finally {
      this.recalibrating = false;
    }
  }

  private async connect(): Promise<void> {
    const o = this.opts;
    const offline: NodeStatus = { state: "offline", nodeId: o.nodeId };
    const client = await connectMqtt({
      url: o.url, username: o.username, password: o.password, logger: this.log, clientId: `node-${o.nodeId}`,
      will: { topic: topics.nodeStatus(o.nodeId), payload: encode(offline), qos: 1, retain: true },
      reconnectMinMs: 200, reconnectMaxMs: 5000,
    });
    this.client = client;
    // mqtt.js leaves Nagle on; with delayed ACKs that adds ~40 ms per small message.
    const noDelay = () => (client.stream as { setNoDelay?: (v: boolean) => void } | undefined)?.setNoDelay?.(true);
    noDelay();
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    // Re-register after every reconnect: a restarted broker may have lost the retained status.
    client.on("connect", () => {
      noDelay();
      this.publishStatus();
    });
    const subs = [topics.announce, topics.coordinatorStatus, topics.nodeAward(o.nodeId), topics.nodeCancel(o.nodeId), topics.nodeVerdict(o.nodeId)];
    await client.subscribeAsync(subs, { qos: 1 });
    this.publishStatus();
    this.heartbeatTimer = setInterval(() => this.publishHeartbeat(), o.heartbeatMs ?? 5000);
    this.heartbeatTimer.unref();
  }

  // ---------------------------------------------------------------------------------------------
  // Inbound

  private onMessage(topic: string, payload: Buffer): void {
    const o = this.opts;
    if (topic === topics.announce) return this.onAnnounce(payload);
    if (topic === topics.nodeAward(o.nodeId)) return this.onAward(payload);
    if (topic === topics.nodeCancel(o.nodeId)) {
      const m = decode(CancelSchema, payload);
      if (!m.ok) return this.drop(topic, m.message);
      const job = this.jobs.get(m.value.auctionId);
      if (job && job.award.taskId === m.value.taskId) {
        this.log.info({ taskId: job.award.taskId, reason: m.value.reason }, "task cancelled by coordinator");
        job.abort.abort(new ColonyError(NodeErrors.TASK_CANCELLED, `cancelled: ${m.value.reason}`));
      }
      return;
    }
    if (topic === topics.nodeVerdict(o.nodeId)) {
      const m = decode(VerdictSchema, payload);
      if (!m.ok) return this.drop(topic, m.message);
      void this.hot.verdict(m.value.taskId, m.value.success, m.value.score).catch((err) => this.log.error({ err }, "hot cache verdict failed"));
      return;
    }
    if (topic === topics.coordinatorStatus) {
      const m = decode(CoordinatorStatusSchema, payload);
      if (!m.ok) return this.drop(topic, m.message);
      // A coordinator that (re)started has an empty registry until nodes speak: register again.
      if (m.value.state === "online" && m.value.startedAt !== this.coordinatorStartedAt) {
        this.coordinatorStartedAt = m.value.startedAt;
        this.publishStatus();
      }
    }
  }

  private drop(topic: string, why: string): void {
    this.counters.dropped++;
    if (this.counters.dropped <= 10) this.log.warn({ topic, why }, "invalid message dropped");
  }

  /** Synchronous from decode to publish. */
  private onAnnounce(payload: Buffer): void {
    const t0 = performance.now();
    const m = decode(AnnounceSchema, payload);
    if (!m.ok) return this.drop(topics.announce, m.message);
    const a = m.value;
    this.counters.announces++;
    const now = this.now();
    if (a.closesAt < now) return;
    // One bid per node per auction, even when the broker redelivers the announce.
    if (this.bidFor.has(a.auctionId)) return;
    this.bidFor.add(a.auctionId);
    if (this.bidFor.size > 4096) for (const k of [...this.bidFor].slice(0, 2048)) this.bidFor.delete(k);
    const decision = decideBid(a, this.bidderView(), now);
    if (decision.bid.type === "bid") this.counters.bids++;
    else {
      this.counters.declines++;
      this.log.debug({ taskId: a.taskId, reason: decision.bid.reason, detail: decision.bid.detail }, "declined");
    }
    this.publish(topics.nodeBid(this.opts.nodeId), decision.bid, 0);
    this.bidLatencies.push(performance.now() - t0);
    if (this.bidLatencies.length > 10_000) this.bidLatencies.splice(0, 5000);
  }

  bidderView(): BidderNode {
    const o = this.opts;
    const snapshot = o.probe.snapshot();
    return {
      nodeId: o.nodeId,
      profile: o.profile,
      threads: o.threads,
      snapshot,
      running: this.running,
      queued: this.queue.length,
      queueMs: this.queueMs(),
      reclaimableMB: this.pool.reclaimableMB(),
      agents: [...this.pool.agents.values()].map((ag) => ({
        agentId: ag.id,
        skills: ag.genome.skills,
        state: ag.state,
        calibration: this.calibrations.get(ag.modelFile),
        wakeNeedMB: this.pool.wakeNeedMB(ag),
        accuracy: (skill: string | undefined) => this.hot.accuracy(ag.id, skill, ag.genome.accuracyPrior),
      })),
    };
  }

  /** Expected wait for a free slot: remaining estimated work of running and queued jobs, spread over the slots. */
  private queueMs(): number {
    if (this.running < this.opts.profile.slots && this.queue.length === 0) return 0;
    const now = performance.now();
    let ms = 0;
    for (const j of this.jobs.values()) ms += j.started ? Math.max(0, j.estimateMs - (now - j.started)) : j.estimateMs;
    return ms / this.opts.profile.slots;
  }

  private onAward(payload: Buffer): void {
    const m = decode(AwardSchema, payload);
    if (!m.ok) return this.drop("award", m.message);
    const award = m.value;
    const nodeId = this.opts.nodeId;
    const ack = (accepted: boolean, reason?: string) => {
      const msg: Ack = { auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: award.agentId, accepted, ...(reason ? { reason } : {}) };
      this.publish(topics.nodeAck(nodeId), msg, 1);
    };
    // A duplicate award (QoS 1 redelivery) is acked again but never run twice.
    if (this.jobs.has(award.auctionId) || this.finished.has(award.auctionId)) return ack(true);
    const agent = this.pool.get(award.agentId);
    if (!agent) return ack(false, `${NodeErrors.AGENT_NOT_FOUND}: no agent ${award.agentId} on ${nodeId}`);
    if (award.deadlineAt <= this.now()) return ack(false, `${NodeErrors.TASK_DEADLINE}: deadline already passed`);
    // The queue limit gates bids; an award for a bid this node made is honoured even if other
    // awards filled the queue meanwhile (several auctions run at once), so a bid is a promise.
    const overLimit = this.running >= this.opts.profile.slots && this.queue.length >= this.opts.profile.queueLimit;
    if (overLimit && !this.bidFor.has(award.auctionId)) return ack(false, "queue-full");
    this.counters.awards++;
    const est = estimateCost({
      promptChars: award.prompt.length, maxTokens: award.maxTokens, asleep: agent.state === "asleep", queueMs: 0,
      calibration: this.calibrations.get(agent.modelFile) ?? UNCALIBRATED, threads: this.opts.threads, snapshot: this.opts.probe.snapshot(), profile: this.opts.profile,
    });
    const job = { award, agent, abort: new AbortController(), acceptedAt: this.now(), estimateMs: est.computeMs } as Job;
    this.jobs.set(award.auctionId, job);
    ack(true);
    job.done = new Promise<void>((resolve) => {
      (job as Job & { resolve: () => void }).resolve = resolve;
    });
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.opts.profile.slots && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.run(job).finally(() => {
        this.running--;
        this.jobs.delete(job.award.auctionId);
        this.finished.set(job.award.auctionId, this.now());
        if (this.finished.size > 5000) for (const k of [...this.finished.keys()].slice(0, 2500)) this.finished.delete(k);
        (job as Job & { resolve: () => void }).resolve();
        this.publishHeartbeat();
        if (!this.closing) this.pump();
      });
    }
  }

  private async run(job: Job): Promise<void> {
    const { award, agent, abort } = job;
    const nodeId = this.opts.nodeId;
    const startedAt = performance.now();
    const queueMs = this.now() - job.acceptedAt;
    const deadline = setTimeout(() => abort.abort(new ColonyError(NodeErrors.TASK_DEADLINE, `deadline passed on ${nodeId}`)), Math.max(0, award.deadlineAt - this.now()));
    let wakeMs = 0;
    let lastProgress = 0;
    let text = "";
    try {
      if (abort.signal.aborted) throw abort.signal.reason;
      if (agent.state === "asleep" || agent.state === "loading") {
        const w0 = performance.now();
        await this.pool.ensureAwake(agent);
        wakeMs = performance.now() - w0;
      }
      job.started = performance.now();
      // Agents take one task at a time (one sequence); a second award for a busy agent waits here.
      while (agent.state === "busy") await new Promise((r) => setTimeout(r, 5));
      if (abort.signal.aborted) throw abort.signal.reason;
      const interval = this.opts.progressIntervalMs ?? 100;
      const r = await agent.generate(award.prompt, {
        maxTokens: award.maxTokens,
        signal: abort.signal,
        onText: (chunk, tokens) => {
          text += chunk;
          const t = performance.now();
          if (t - lastProgress < interval) return;
          lastProgress = t;
          const p: Progress = { auctionId: award.auctionId, taskId: award.taskId, nodeId, tokens, text: text.slice(-65536) };
          this.publish(topics.nodeProgress(nodeId), p, 0);
        },
      });
      if (abort.signal.aborted) throw abort.signal.reason;
      const totalS = (performance.now() - startedAt) / 1000;
      const energyJ = Math.max(0, (this.opts.profile.power.activeW - this.opts.profile.power.idleW) * totalS);
      const done: Done = {
        auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: agent.id, status: "ok", output: r.text,
        timings: { queueMs, wakeMs, promptMs: r.promptMs, generateMs: r.generateMs, tokens: r.tokens },
        cost: { energyJ },
      };
      this.publish(topics.nodeDone(nodeId), done, 1);
      this.counters.done++;
      await this.hot
        .add({ taskId: award.taskId, agentId: agent.id, skill: award.skill, prompt: award.prompt, output: r.text, at: this.now(), tokens: r.tokens, latencyMs: totalS * 1000, energyJ })
        .catch((err) => this.log.error({ err }, "hot cache write failed"));
    } catch (err) {
      const e = err instanceof ColonyError ? err : new ColonyError(NodeErrors.GENERATION_FAILED, (err as Error)?.message ?? String(err));
      this.log.warn({ taskId: award.taskId, code: e.code, message: e.message }, "task failed on this node");
      const done: Done = { auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: agent.id, status: "error", error: e.toWire(), timings: { queueMs, wakeMs } };
      this.publish(topics.nodeDone(nodeId), done, 1);
    } finally {
      clearTimeout(deadline);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Outbound

  private publish(topic: string, msg: unknown, qos: 0 | 1, retain = false): void {
    const c = this.client;
    if (!c) return;
    c.publish(topic, encode(msg), { qos, retain }, (err) => {
      if (err && !this.closing) this.log.warn({ topic, err: { message: err.message } }, "publish failed");
    });
  }

  statusMessage(): NodeStatus {
    return {
      state: "online", nodeId: this.opts.nodeId, protocol: PROTOCOL_VERSION, deviceClass: this.opts.profile.name.slice(0, 64),
      slots: this.opts.profile.slots, agents: this.pool.info(), models: this.runtime.loadedModels().map((f) => path.basename(f).slice(0, 512)), at: this.now(),
    };
  }

  publishStatus(): void {
    if (this.closing || !this.client) return;
    this.publish(topics.nodeStatus(this.opts.nodeId), this.statusMessage(), 1, true);
  }

  publishHeartbeat(): void {
    if (this.closing || !this.client) return;
    const hb: Heartbeat = {
      nodeId: this.opts.nodeId, at: this.now(), busy: this.running, queued: this.queue.length,
      agents: [...this.pool.agents.values()].map((a) => ({ agentId: a.id, state: a.state })),
      device: deviceState(this.opts.probe.snapshot()),
    };
    this.publish(topics.nodeHeartbeat(this.opts.nodeId), hb, 0);
  }

  /** Running and queued tasks (tests, bench). */
  get activeJobs(): number {
    return this.jobs.size;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      if (this.recalibrateTimer) clearInterval(this.recalibrateTimer);
      for (const j of this.queue.splice(0)) (j as Job & { resolve: () => void }).resolve();
      for (const j of this.jobs.values()) j.abort.abort(new ColonyError(NodeErrors.TASK_CANCELLED, "node shutting down"));
      await Promise.all([...this.jobs.values()].map((j) => j.done));
      const c = this.client;
      if (c) {
        const offline: NodeStatus = { state: "offline", nodeId: this.opts.nodeId, at: this.now() };
        await c.publishAsync(topics.nodeStatus(this.opts.nodeId), encode(offline), { qos: 1, retain: true }).catch(() => {});
        await c.endAsync().catch(() => {});
      }
      await this.pool?.close();
      await this.runtime?.close();
      await this.db?.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
