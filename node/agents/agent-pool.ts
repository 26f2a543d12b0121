/**
 * The agents of a node and their sleep/wake policy: idle agents sleep after the profile's
 * sleepAfterMs; before a wake that would push free memory below the profile's reserve, the least
 * recently used idle agents sleep first; a wake that still does not fit fails with MEMORY_RESERVE.
 * An agent the coordinator asked to keep warm (a `wake` command's hold) is never put to sleep by
 * either rule until its hold ends.
 */
import os from "node:os";
import { every, systemClock, type Clock, type Timer } from "../../common/clock.ts";
import { ColonyError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import type { AgentInfo } from "../../common/protocol.ts";
import { Agent } from "./agent.ts";
import { NodeErrors } from "../errors.ts";
import type { LlamaRuntime } from "../llama/llama-runtime.ts";

export interface AgentPoolOptions {
  memoryReserveMB: number;
  sleepAfterMs: number;
  logger: Logger;
  /** Free memory in MB, read now (tests inject). Default: os.freemem(). */
  freeMemMB?: () => number;
  /** Estimated MB a model needs when loaded (calibrated resident size, else file size x 1.1). */
  modelNeedMB: (file: string) => number;
  clock?: Clock;
}

export class AgentPool {
  readonly agents = new Map<string, Agent>();
  private timer: Timer | undefined;
  private wakeLock: Promise<unknown> = Promise.resolve();
  private readonly clock: Clock;
  private readonly freeMemMB: () => number;
  /** Keep-warm holds: agent id -> time (clock) until which the agent must stay awake. */
  private readonly holds = new Map<string, number>();
  /** Wake and sleep events, for logs and tests. */
  onChange: ((agent: Agent) => void) | undefined;

  constructor(private readonly runtime: LlamaRuntime, private readonly opts: AgentPoolOptions) {
    this.clock = opts.clock ?? systemClock;
    this.freeMemMB = opts.freeMemMB ?? (() => os.freemem() / 2 ** 20);
  }

  add(agent: Agent): void {
    this.agents.set(agent.id, agent);
  }

  get(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /** Takes an agent out: it no longer bids or takes awards. Its tasks keep their reference to it. */
  remove(id: string): Agent | undefined {
    const a = this.agents.get(id);
    this.agents.delete(id);
    this.holds.delete(id);
    return a;
  }

  /** Keeps `agent` awake (no idle sleep, never a victim for memory) until `until` on the pool's clock. */
  hold(agent: Agent, until: number): void {
    this.holds.set(agent.id, Math.max(until, this.holds.get(agent.id) ?? 0));
  }

  private held(a: Agent, now: number): boolean {
    const until = this.holds.get(a.id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.holds.delete(a.id);
    return false;
  }

  async start(): Promise<void> {
    const ms = Math.max(50, Math.min(1000, Math.floor(this.opts.sleepAfterMs / 4)));
    this.timer = every(this.clock, ms, () => void this.sleepIdle().catch((err) => this.opts.logger.error({ err }, "sleeping idle agents failed")));
  }

  /** Estimated MB `file` needs when loaded (calibrated resident size, else file size x 1.1). */
  modelNeedMB(file: string): number {
    return this.opts.modelNeedMB(file);
  }

  /** MB a wake of `agent` needs: 0 if awake or its model is already loaded by another agent. */
  wakeNeedMB(agent: Agent): number {
    if (agent.state === "awake" || agent.state === "busy") return 0;
    return this.runtime.isLoaded(agent.modelFile) ? 8 : this.opts.modelNeedMB(agent.modelFile);
  }

  /** MB that sleeping every idle awake agent would free (models used only by idle agents). */
  reclaimableMB(except?: Agent): number {
    const busyModels = new Set<string>();
    const idleModels = new Set<string>();
    for (const a of this.agents.values()) {
      if (a === except) continue;
      if (a.state === "busy" || a.state === "loading") busyModels.add(a.modelFile);
      else if (a.state === "awake") idleModels.add(a.modelFile);
    }
    let mb = 0;
    for (const f of idleModels) if (!busyModels.has(f) && f !== except?.modelFile) mb += this.opts.modelNeedMB(f);
    return mb;
  }

  /** Wakes an agent, sleeping LRU idle agents first when memory is short. Wakes run one at a time. */
  ensureAwake(agent: Agent): Promise<void> {
    const run = this.wakeLock.then(() => this.wakeNow(agent));
    this.wakeLock = run.catch(() => {});
    return run;
  }

  private async wakeNow(agent: Agent): Promise<void> {
    if (agent.state === "awake" || agent.state === "busy") return;
    const need = this.wakeNeedMB(agent);
    const reserve = this.opts.memoryReserveMB;
    const now = this.clock.now();
    const idle = [...this.agents.values()].filter((a) => a !== agent && a.state === "awake" && !this.held(a, now)).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.freeMemMB() - need < reserve && idle.length > 0) {
      const victim = idle.shift()!;
      this.opts.logger.info({ agentId: victim.id, for: agent.id, needMB: Math.round(need), freeMB: Math.round(this.freeMemMB()) }, "sleeping an idle agent to respect the memory reserve");
      await victim.sleep();
      this.onChange?.(victim);
    }
    if (this.freeMemMB() - need < reserve) {
      throw new ColonyError(NodeErrors.MEMORY_RESERVE, `waking ${agent.id} needs ~${Math.round(need)} MB; free ${Math.round(this.freeMemMB())} MB, reserve ${reserve} MB`);
    }
    await agent.wake();
    this.onChange?.(agent);
  }

  /** Puts to sleep every agent idle for longer than sleepAfterMs. */
  async sleepIdle(): Promise<void> {
    const t = this.clock.now();
    for (const a of this.agents.values()) {
      if (a.state === "awake" && t - a.lastUsed >= this.opts.sleepAfterMs && !this.held(a, t)) {
        this.opts.logger.debug({ agentId: a.id }, "agent idle: sleeping");
        await a.sleep();
        this.onChange?.(a);
      }
    }
  }

  info(): AgentInfo[] {
    return [...this.agents.values()].map((a) => ({
      agentId: a.id,
      skills: [...a.genome.skills],
      model: a.genome.model.slice(0, 512),
      state: a.state,
      ...(a.genome.parent ? { parent: a.genome.parent } : {}),
      genome: a.genomeHash,
      spec: a.genome,
      generation: a.generation,
    }));
  }

  async close(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    await this.wakeLock;
    for (const a of this.agents.values()) await a.sleep().catch(() => {});
  }
}
