/**
 * The retained fleet snapshot on `coordinator/stats` (nodes, agents with records and penalties,
 * open auctions, running tasks, counters), read by `colony status` and dashboards; at most once per
 * `intervalMs`.
 */
import { every, type Clock, type Timer } from "../common/clock.ts";
import type { Counters } from "../common/counters.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import { channels, type CoordinatorStats, type Outbox } from "../common/protocol.ts";
import type { Market } from "./market/market.ts";
import type { Reputation } from "./market/reputation.ts";
import type { Registry } from "./registry.ts";

export interface StatsSources {
  fleetId: string;
  startedAt: () => number;
  registry: Registry;
  market: Market;
  reputation: Reputation;
  counters: Counters;
}

export function fleetStats(s: StatsSources, now: number): CoordinatorStats {
  return {
    at: now,
    startedAt: s.startedAt(),
    fleetId: s.fleetId,
    nodes: s.registry.list().map((n) => ({
      nodeId: n.nodeId, online: n.online, lastSeen: n.lastSeen,
      ...(n.status ? { deviceClass: n.status.deviceClass, slots: n.status.slots } : {}),
      ...(n.status?.trainer ? { trainerGflops: Math.round(n.status.trainer.flopsPerSecond / 1e8) / 10 } : {}),
      ...(n.heartbeat ? { busy: n.heartbeat.busy } : {}),
      agents: (n.status?.agents ?? []).map((a) => ({ agentId: a.agentId, skills: a.skills, model: a.model, state: n.heartbeat?.agents.find((h) => h.agentId === a.agentId)?.state ?? a.state })),
    })),
    agents: s.reputation.records.all().map(({ key, ...r }) => {
      // Records are kept per node and genome (agent-ref.ts); show them under the agent ids registered now.
      const [who] = s.registry.agentsWithKeys(new Set([key]));
      const p = s.reputation.penalties.get(key);
      return { agentId: who?.agentId ?? key, ...(who ? { nodeId: who.nodeId } : {}), ...r, ...(p && p.until > now ? { excludedUntil: p.until } : {}), ...(p ? { consecutiveFailures: p.consecutive } : {}) };
    }),
    ...s.market.snapshot(),
    counters: s.counters.snapshot(),
  };
}

export class StatsPublisher implements Lifecycle {
  private timer: Timer | undefined;
  constructor(private readonly sources: StatsSources, private readonly out: Outbox, private readonly clock: Clock, private readonly intervalMs: number) {}

  async start(): Promise<void> {
    const publish = () => this.out.send(channels.coordinatorStats, [], fleetStats(this.sources, this.clock.now()));
    publish();
    this.timer = every(this.clock, this.intervalMs, publish);
  }

  async close(): Promise<void> {
    this.timer?.cancel();
  }
}
