/**
 * The node's presence: its retained `online` status (device class, slots, agents with their
 * genome hashes, loaded models), republished after every reconnect, whenever an agent changes state,
 * and when a restarted coordinator appears (its registry is empty until nodes speak); plus a
 * heartbeat with load and device readings every `heartbeatMs`. The offline status is the link's
 * (its will, or its close). Each agent's whole genome (`spec`) rides along for evolution while the
 * status fits STATUS_BUDGET_BYTES; past it the largest genomes go first (fitSpecs).
 */
import path from "node:path";
import { every, type Clock, type Timer } from "../common/clock.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import { channels, encode, PROTOCOL_VERSION, type AgentInfo, type CoordinatorStatus, type NodeStatus, type Outbox, type TrainerCapability } from "../common/protocol.ts";
import type { AgentPool } from "./agents/agent-pool.ts";
import { deviceState } from "./bidder.ts";
import type { LlamaRuntime } from "./llama/llama-runtime.ts";
import type { DeviceProbe } from "./probe.ts";
import type { DeviceProfile } from "./profile.ts";

export interface PresenceSources {
  nodeId: string;
  profile: DeviceProfile;
  pool: AgentPool;
  runtime: LlamaRuntime;
  probe: DeviceProbe;
  /** Running and queued tasks. */
  load: () => { busy: number; queued: number };
  /**
   * Subscribes the node to its agents' skills' announces (link.ts `listen`); a promise while a new
   * skill's subscription is in flight. The status advertising the skill waits for it.
   */
  listen?: (skills: Iterable<string>) => Promise<void> | undefined;
  /** The trainer's measured capability, when the node offers training (node/trainer/). */
  trainer?: () => TrainerCapability | undefined;
}

/**
 * The status message's budget: MAX_PAYLOAD_BYTES (64 KiB, common/protocol/codec.ts) less a margin for
 * the rest of the message, so a status is never dropped unread by the coordinator.
 */
export const STATUS_BUDGET_BYTES = 48 * 1024;

/**
 * Leaves out the specs of the largest genomes until the encoded agents fit `budget` bytes (with
 * room for the rest of the status). An agent without its spec can still be retired, not be a parent.
 */
export function fitSpecs(agents: AgentInfo[], budget = STATUS_BUDGET_BYTES - 1024): AgentInfo[] {
  let size = Buffer.byteLength(encode(agents));
  if (size <= budget) return agents;
  const out = [...agents];
  const bySize = out.map((a, i) => ({ i, bytes: a.spec ? Buffer.byteLength(encode(a.spec)) + 8 : 0 })).filter((x) => x.bytes > 0).sort((a, b) => b.bytes - a.bytes);
  for (const { i, bytes } of bySize) {
    if (size <= budget) break;
    const { spec: _spec, ...rest } = out[i]!;
    out[i] = rest;
    size -= bytes;
  }
  return out;
}

export class NodePresence implements Lifecycle {
  private heartbeat: Timer | undefined;
  private coordinatorStartedAt = 0;
  private live = false;
  /** Statuses waiting for a new skill's subscription (publishStatus). */
  private queued: Promise<void> | undefined;

  constructor(private readonly s: PresenceSources, private readonly out: Outbox, private readonly clock: Clock, private readonly heartbeatMs: number) {}

  async start(): Promise<void> {
    this.live = true;
    this.publishStatus();
    this.heartbeat = every(this.clock, this.heartbeatMs, () => this.publishHeartbeat());
  }

  async close(): Promise<void> {
    this.live = false;
    this.heartbeat?.cancel();
  }

  statusMessage(): NodeStatus {
    const { s } = this;
    const trainer = s.trainer?.();
    return {
      state: "online", nodeId: s.nodeId, protocol: PROTOCOL_VERSION, deviceClass: s.profile.name.slice(0, 64),
      slots: s.profile.slots, agents: fitSpecs(s.pool.info()), models: s.runtime.loadedModels().map((f) => path.basename(f).slice(0, 512)),
      ...(trainer ? { trainer } : {}), at: this.clock.now(),
    };
  }

  /**
   * Sends the current status, after the announce subscriptions of its agents' skills are in place.
   * While one is in flight every later status waits behind it, so none advertises a skill early;
   * each sends the status as it is when it goes.
   */
  publishStatus(): void {
    if (!this.live) return;
    // An agent without skills takes any task (coordinator/registry.ts): its node hears every skill.
    const agents = [...this.s.pool.agents.values()];
    const subscribing = this.s.listen?.(agents.some((a) => a.genome.skills.length === 0) ? ["+"] : new Set(agents.flatMap((a) => a.genome.skills)));
    if (!subscribing && !this.queued) return this.sendStatus();
    const q: Promise<void> = (this.queued ?? Promise.resolve()).then(() => subscribing).then(() => {
      if (this.queued === q) this.queued = undefined;
      this.sendStatus();
    });
    this.queued = q;
  }

  private sendStatus(): void {
    if (this.live) this.out.send(channels.nodeStatus, [this.s.nodeId], this.statusMessage());
  }

  publishHeartbeat(): void {
    if (!this.live) return;
    const { s } = this;
    this.out.send(channels.nodeHeartbeat, [s.nodeId], {
      nodeId: s.nodeId, at: this.clock.now(), ...s.load(),
      agents: [...s.pool.agents.values()].map((a) => ({ agentId: a.id, state: a.state })),
      device: deviceState(s.probe.snapshot()),
    });
  }

  /** A coordinator that (re)started has an empty registry until nodes speak: register again. */
  onCoordinatorStatus(status: CoordinatorStatus): void {
    if (status.state === "online" && status.startedAt !== this.coordinatorStartedAt) {
      this.coordinatorStartedAt = status.startedAt;
      this.publishStatus();
    }
  }
}
