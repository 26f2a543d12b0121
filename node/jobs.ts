/**
 * Runs the tasks this node wins: award -> ack -> queue for a slot -> the agent's turn -> wake ->
 * generate (progress on the way) -> done, with the measured cost (cost-model.ts) -> hot cache.
 *
 * Exactly once on this node: an award is keyed by auctionId; a repeated award (a retransmission,
 * or a reconnect) is re-acked and never run twice; a done published while the broker is away is
 * QoS 1 and mqtt.js sends it after the reconnect. The award's deadline is on the coordinator's
 * clock and is moved onto the node's (common/clock.ts SenderClock).
 */
import { ColonyError } from "../common/errors.ts";
import type { Clock, SenderClock } from "../common/clock.ts";
import type { Counters } from "../common/counters.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import { channels, type Award, type Cancel, type Done, type Outbox } from "../common/protocol.ts";
import type { Agent } from "./agents/agent.ts";
import type { AgentPool } from "./agents/agent-pool.ts";
import { estimateCost, measuredCost, UNCALIBRATED } from "./cost-model.ts";
import type { EnergyAccount } from "./energy-meter.ts";
import { NodeErrors } from "./errors.ts";
import type { HotCache } from "./hot-cache.ts";
import type { CalibrationStore } from "./llama/calibration.ts";
import type { DeviceProbe } from "./probe.ts";
import type { DeviceProfile } from "./profile.ts";

interface Job {
  award: Award;
  agent: Agent;
  abort: AbortController;
  acceptedAt: number;
  /** performance.now() when the award arrived: the start of the done's `nodeMs`. */
  receivedAt: number;
  /** The award's deadline on this node's clock. */
  deadlineAt: number;
  estimateMs: number;
  started?: number;
  done: Promise<void>;
  resolve: () => void;
}

export interface JobRunnerParts {
  nodeId: string;
  profile: DeviceProfile;
  pool: AgentPool;
  calibrations: CalibrationStore;
  probe: DeviceProbe;
  hot: HotCache;
  energy: EnergyAccount;
  /** Whether this node bid in an auction (bid-desk.ts): an award for its own bid is a promise. */
  answered: (auctionId: string) => boolean;
  out: Outbox;
  clock: Clock;
  /** Converts the award's deadline from the coordinator's clock (link.ts). */
  coordinatorClock: SenderClock;
  counters: Counters;
  logger: Logger;
  progressIntervalMs: number;
  /** A job finished (the heartbeat reports the new load at once). */
  onIdleSlot: () => void;
}

export class JobRunner implements Lifecycle {
  /** By auctionId: running or queued; and recently finished (to re-ack duplicates, never run twice). */
  private readonly jobs = new Map<string, Job>();
  private readonly finished = new Map<string, number>();
  private readonly queue: Job[] = [];
  private running = 0;
  private closing = false;

  constructor(private readonly p: JobRunnerParts) {}

  async start(): Promise<void> {
    this.p.energy.idle();
  }

  /** Aborts what runs (each publishes an error done), drops what waits, and waits for the runs to end. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const j of this.queue.splice(0)) j.resolve();
    for (const j of this.jobs.values()) j.abort.abort(new ColonyError(NodeErrors.TASK_CANCELLED, "node shutting down"));
    await Promise.all([...this.jobs.values()].map((j) => j.done));
  }

  get load(): { busy: number; queued: number } {
    return { busy: this.running, queued: this.queue.length };
  }

  /** Running and queued tasks (tests, bench). */
  get active(): number {
    return this.jobs.size;
  }

  /**
   * Resolves true once every task accepted for `agentId` (running or queued) has ended, false if
   * some still run after `withinMs` (a retire waits here: no accepted task is dropped).
   */
  async settled(agentId: string, withinMs: number): Promise<boolean> {
    const mine = [...this.jobs.values()].filter((j) => j.agent.id === agentId).map((j) => j.done);
    if (mine.length === 0) return true;
    let timer: { cancel(): void } | undefined;
    const late = new Promise<boolean>((r) => (timer = this.p.clock.setTimer(withinMs, () => r(false))));
    try {
      return await Promise.race([Promise.all(mine).then(() => true), late]);
    } finally {
      timer?.cancel();
    }
  }

  /** Expected wait for a free slot: remaining estimated work of running and queued jobs, spread over the slots. */
  queueMs(): number {
    if (this.running < this.p.profile.slots && this.queue.length === 0) return 0;
    const now = performance.now();
    let ms = 0;
    for (const j of this.jobs.values()) ms += j.started ? Math.max(0, j.estimateMs - (now - j.started)) : j.estimateMs;
    return ms / this.p.profile.slots;
  }

  onAward(award: Award): void {
    const receivedAt = performance.now();
    const { nodeId, profile } = this.p;
    const ack = (accepted: boolean, reason?: string) =>
      this.p.out.send(channels.nodeAck, [nodeId], { auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: award.agentId, accepted, ...(reason ? { reason } : {}) });
    // A duplicate award (QoS 1 redelivery) is acked again but never run twice.
    if (this.jobs.has(award.auctionId) || this.finished.has(award.auctionId)) return ack(true);
    if (this.closing) return ack(false, `${NodeErrors.TASK_CANCELLED}: node shutting down`);
    const agent = this.p.pool.get(award.agentId);
    if (!agent) return ack(false, `${NodeErrors.AGENT_NOT_FOUND}: no agent ${award.agentId} on ${nodeId}`);
    const deadlineAt = this.p.coordinatorClock.toLocal(award.deadlineAt);
    if (deadlineAt <= this.p.clock.now()) return ack(false, `${NodeErrors.TASK_DEADLINE}: deadline already passed`);
    // The queue limit gates bids; an award for a bid this node made is honoured even if other
    // awards filled the queue meanwhile (several auctions run at once), so a bid is a promise.
    const overLimit = this.running >= profile.slots && this.queue.length >= profile.queueLimit;
    if (overLimit && !this.p.answered(award.auctionId)) return ack(false, "queue-full");
    this.p.counters.inc("awards");
    const est = estimateCost({
      promptChars: agent.render(award.prompt).length, maxTokens: award.maxTokens, contextSize: agent.contextSize, asleep: agent.state === "asleep", queueMs: 0,
      calibration: this.p.calibrations.get(agent.modelFile) ?? UNCALIBRATED, threads: agent.threads, snapshot: this.p.probe.snapshot(), profile,
    });
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const job: Job = { award, agent, abort: new AbortController(), acceptedAt: this.p.clock.now(), receivedAt, deadlineAt, estimateMs: est.computeMs, done, resolve };
    this.jobs.set(award.auctionId, job);
    ack(true);
    this.queue.push(job);
    this.pump();
  }

  onCancel(c: Cancel): void {
    const job = this.jobs.get(c.auctionId);
    if (!job || job.award.taskId !== c.taskId) return;
    this.p.logger.info({ taskId: c.taskId, reason: c.reason }, "task cancelled by coordinator");
    job.abort.abort(new ColonyError(NodeErrors.TASK_CANCELLED, `cancelled: ${c.reason}`));
  }

  private pump(): void {
    while (this.running < this.p.profile.slots && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.run(job).finally(() => {
        this.running--;
        this.jobs.delete(job.award.auctionId);
        this.finished.set(job.award.auctionId, this.p.clock.now());
        if (this.finished.size > 5000) for (const k of [...this.finished.keys()].slice(0, 2500)) this.finished.delete(k);
        job.resolve();
        this.p.onIdleSlot();
        if (!this.closing) this.pump();
      });
    }
  }

  private async run(job: Job): Promise<void> {
    const { award, agent, abort } = job;
    const { nodeId, clock } = this.p;
    const deadline = clock.setTimer(job.deadlineAt - clock.now(), () => abort.abort(new ColonyError(NodeErrors.TASK_DEADLINE, `deadline passed on ${nodeId}`)));
    let queueMs = 0;
    let wakeMs = 0;
    try {
      // Agents take one task at a time (one sequence); a second award for a busy agent waits its turn.
      await agent.exclusive(async () => {
        queueMs = clock.now() - job.acceptedAt;
        if (abort.signal.aborted) throw abort.signal.reason;
        const mark = this.p.energy.begin();
        const t0 = performance.now();
        let ended = false;
        try {
          if (agent.state === "asleep" || agent.state === "loading") {
            await this.p.pool.ensureAwake(agent);
            wakeMs = performance.now() - t0;
          }
          job.started = performance.now();
          if (abort.signal.aborted) throw abort.signal.reason;
          const r = await this.generate(job);
          if (abort.signal.aborted) throw abort.signal.reason;
          const computeMs = performance.now() - t0;
          const metered = this.p.energy.end(mark);
          ended = true;
          const cost = measuredCost({ computeMs, threads: agent.threads, snapshot: this.p.probe.snapshot(), profile: this.p.profile, metered });
          const done: Done = {
            auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: agent.id, status: "ok", output: r.text,
            timings: { queueMs, wakeMs, promptMs: r.promptMs, generateMs: r.generateMs, tokens: r.tokens, nodeMs: performance.now() - job.receivedAt },
            cost,
          };
          this.p.out.send(channels.nodeDone, [nodeId], done);
          this.p.counters.inc("tasks.done");
          // For the node's own Prometheus metrics (node/metrics.ts).
          this.p.counters.inc("tasks.tokens", r.tokens);
          this.p.counters.inc("tasks.energy.joules", cost.energyJ);
          await this.p.hot
            .add({ taskId: award.taskId, agentId: agent.id, skill: award.skill, prompt: award.prompt, output: r.text, at: clock.now(), tokens: r.tokens, latencyMs: queueMs + computeMs, ...cost })
            .catch((err) => this.p.logger.error({ err }, "hot cache write failed"));
        } finally {
          if (!ended) this.p.energy.end(mark);
        }
      });
    } catch (err) {
      const e = err instanceof ColonyError ? err : new ColonyError(NodeErrors.GENERATION_FAILED, (err as Error)?.message ?? String(err));
      this.p.logger.warn({ taskId: award.taskId, code: e.code, message: e.message }, "task failed on this node");
      this.p.counters.inc("tasks.failed");
      const done: Done = { auctionId: award.auctionId, taskId: award.taskId, nodeId, agentId: agent.id, status: "error", error: e.toWire(), timings: { queueMs, wakeMs, nodeMs: performance.now() - job.receivedAt } };
      this.p.out.send(channels.nodeDone, [nodeId], done);
    } finally {
      deadline.cancel();
    }
  }

  /** Generation with throttled progress messages. */
  private generate(job: Job) {
    const { award, agent, abort } = job;
    const { nodeId } = this.p;
    let lastProgress = 0;
    let text = "";
    return agent.generate(award.prompt, {
      maxTokens: award.maxTokens,
      signal: abort.signal,
      onText: (chunk, tokens) => {
        text += chunk;
        const t = performance.now();
        if (t - lastProgress < this.p.progressIntervalMs) return;
        lastProgress = t;
        this.p.out.send(channels.nodeProgress, [nodeId], { auctionId: award.auctionId, taskId: award.taskId, nodeId, tokens, text: text.slice(-65536) });
      },
    });
  }
}
