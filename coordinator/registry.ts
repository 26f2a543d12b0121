import type { Heartbeat, NodeStatus } from "../common/protocol.ts";
import { recordKey, type AgentRef } from "./market/agent-ref.ts";
import type { AgentScreen } from "./market/auction.ts";
import type { Clock, Timer } from "../common/clock.ts";
import { TypedEmitter } from "../common/events.ts";

/** A node came online (its first status, or a status after it was offline) or went offline. */
export interface RegistryEvents {
  nodeOnline: { nodeId: string };
  nodeOffline: { nodeId: string; why: string };
  /** Every online status a node publishes (its agent set may have changed): evolution's lineage listens. */
  nodeStatus: { nodeId: string; status: OnlineStatus };
}

export type OnlineStatus = Extract<NodeStatus, { state: "online" }>;

export interface NodeEntry {
  nodeId: string;
  online: boolean;
  status?: OnlineStatus;
  heartbeat?: Heartbeat;
  lastSeen: number;
}

/**
 * The fleet as the coordinator sees it, from retained `nodes/{id}/status` (last will = offline,
 * which arrives within milliseconds of a dead TCP connection) and heartbeats. A node silent for
 * heartbeatTimeoutMs is also taken offline: the slow path, for a half-open connection. Who must
 * know subscribes to `events` (the market: a node that goes offline loses its task; the roster).
 */
export class Registry {
  private readonly nodes = new Map<string, NodeEntry>();
  private sweep: Timer | undefined;
  private closed = false;
  readonly events: TypedEmitter<RegistryEvents>;

  constructor(
    private readonly clock: Clock,
    private readonly heartbeatTimeoutMs: number,
    onListenerError: (err: unknown, event: keyof RegistryEvents) => void = () => {},
  ) {
    this.events = new TypedEmitter<RegistryEvents>(onListenerError);
  }

  async start(): Promise<void> {
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sweep?.cancel();
  }

  private schedule(): void {
    if (this.closed) return;
    this.sweep = this.clock.setTimer(Math.min(1000, this.heartbeatTimeoutMs), () => {
      const now = this.clock.now();
      for (const n of this.nodes.values()) {
        if (n.online && now - n.lastSeen > this.heartbeatTimeoutMs) this.setOffline(n, "heartbeat-timeout");
      }
      this.schedule();
    });
  }

  private setOffline(n: NodeEntry, why: string): void {
    if (!n.online) return;
    n.online = false;
    this.events.emit("nodeOffline", { nodeId: n.nodeId, why });
  }

  onStatus(status: NodeStatus): void {
    const now = this.clock.now();
    const prev = this.nodes.get(status.nodeId);
    if (status.state === "offline") {
      if (prev) this.setOffline(prev, "last-will");
      else this.nodes.set(status.nodeId, { nodeId: status.nodeId, online: false, lastSeen: now });
      return;
    }
    const entry: NodeEntry = prev ?? { nodeId: status.nodeId, online: false, lastSeen: now };
    const cameOnline = !entry.online;
    entry.online = true;
    entry.status = status;
    entry.lastSeen = now;
    this.nodes.set(status.nodeId, entry);
    if (cameOnline) this.events.emit("nodeOnline", { nodeId: status.nodeId });
    this.events.emit("nodeStatus", { nodeId: status.nodeId, status });
  }

  onHeartbeat(hb: Heartbeat): void {
    const entry = this.nodes.get(hb.nodeId);
    // A heartbeat from a node whose status we never saw proves it lives, but says nothing of its
    // agents: it stays unknown until its retained status arrives.
    if (!entry || !entry.status) return;
    entry.heartbeat = hb;
    entry.lastSeen = this.clock.now();
    if (!entry.online) {
      entry.online = true;
      this.events.emit("nodeOnline", { nodeId: hb.nodeId });
    }
  }

  /** Any valid message from a node proves it alive (a busy node may send bids between heartbeats). */
  touch(nodeId: string): void {
    const entry = this.nodes.get(nodeId);
    if (entry?.online) entry.lastSeen = this.clock.now();
  }

  isOnline(nodeId: string): boolean {
    return this.nodes.get(nodeId)?.online === true;
  }

  /**
   * Online nodes with at least one agent that can take `skill` and whose record key is not in
   * `excluded`. An agent with an empty skills list is a generalist (takes any skill); a task with no
   * skill suits any agent.
   */
  eligibleNodes(skill: string | undefined, excluded: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const n of this.nodes.values()) {
      if (!n.online || !n.status) continue;
      const ok = n.status.agents.some((a) => !excluded.has(recordKey({ nodeId: n.nodeId, agentId: a.agentId, genome: a.genome })) && (skill === undefined || a.skills.length === 0 || a.skills.includes(skill)));
      if (ok) out.push(n.nodeId);
    }
    return out;
  }

  /** An agent as its node registered it (with its genome hash), or undefined: an agent id is valid only for the node that registered it. */
  ref(nodeId: string, agentId: string): AgentRef | undefined {
    const a = this.nodes.get(nodeId)?.status?.agents.find((x) => x.agentId === agentId);
    return a ? { nodeId, agentId, genome: a.genome } : undefined;
  }

  /** The agent as registered; a bid's agent was screened when offered, so its bare name is only a fallback. */
  refOrName(nodeId: string, agentId: string): AgentRef {
    return this.ref(nodeId, agentId) ?? { nodeId, agentId };
  }

  /** An auction's screen (auction.ts): a bid must name an agent its node registered, not one whose record key is excluded. */
  screen(excluded: ReadonlySet<string>): AgentScreen {
    return (nodeId, agentId) => {
      const ref = this.ref(nodeId, agentId);
      if (!ref) return "unregistered-agent";
      return excluded.has(recordKey(ref)) ? "excluded" : undefined;
    };
  }

  /** The registered agents whose record key is in `keys` (an announce names them: they must not bid). */
  agentsWithKeys(keys: ReadonlySet<string>): { nodeId: string; agentId: string }[] {
    const out: { nodeId: string; agentId: string }[] = [];
    if (keys.size === 0) return out;
    for (const n of this.nodes.values()) {
      for (const a of n.status?.agents ?? []) if (keys.has(recordKey({ nodeId: n.nodeId, agentId: a.agentId, genome: a.genome }))) out.push({ nodeId: n.nodeId, agentId: a.agentId });
    }
    return out;
  }

  list(): NodeEntry[] {
    return [...this.nodes.values()];
  }
}
