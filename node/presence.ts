/**
 * The node's presence: its retained `online` status (device class, slots, agents with their
 * genome hashes, loaded models), republished after every reconnect, whenever an agent changes state,
 * and when a restarted coordinator appears (its registry is empty until nodes speak); plus a
 * heartbeat with load and device readings every `heartbeatMs`. The offline status is the link's
 * (its will, or its close).
 */
import path from "node:path";
import { every, type Clock, type Timer } from "../common/clock.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import { channels, PROTOCOL_VERSION, type CoordinatorStatus, type NodeStatus, type Outbox } from "../common/protocol.ts";
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
}

export class NodePresence implements Lifecycle {
  private heartbeat: Timer | undefined;
  private coordinatorStartedAt = 0;
  private live = false;

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
    return {
      state: "online", nodeId: s.nodeId, protocol: PROTOCOL_VERSION, deviceClass: s.profile.name.slice(0, 64),
      slots: s.profile.slots, agents: s.pool.info(), models: s.runtime.loadedModels().map((f) => path.basename(f).slice(0, 512)), at: this.clock.now(),
    };
  }

  publishStatus(): void {
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
