/**
 * Turns an announce into one bid for the node's best agent, or one decline with a reason. Pure and
 * synchronous: everything it needs (probe snapshot, agents' states, calibrations, queue) is read
 * from memory, so the bid leaves within a millisecond even while llama.cpp generates.
 */
import type { Announce, Bid } from "../common/protocol.ts";
import { estimateCost, UNCALIBRATED, type Calibration, type CostEstimate } from "./cost-model.ts";
import type { DeviceProfile } from "./profile.ts";
import type { ProbeSnapshot } from "./probe.ts";

export interface BidderAgent {
  agentId: string;
  skills: readonly string[];
  /** asleep (model and context freed) or loading count as needing a wake. */
  state: "awake" | "asleep" | "busy" | "loading";
  calibration?: Calibration | undefined;
  /** MB that waking this agent needs (0 if its model is already loaded by another agent). */
  wakeNeedMB: number;
  /** Expected accuracy for the skill in [0,1] (the agent's track record with a prior). */
  accuracy: (skill: string | undefined) => number;
}

export interface BidderNode {
  nodeId: string;
  profile: DeviceProfile;
  threads: number;
  snapshot: ProbeSnapshot;
  running: number;
  queued: number;
  /** Expected ms until a slot frees for a new task. */
  queueMs: number;
  /** MB that sleeping idle agents would free (the pool sleeps LRU agents before a load). */
  reclaimableMB: number;
  agents: readonly BidderAgent[];
}

export type DeclineReason = Extract<Bid, { type: "decline" }>["reason"];

export interface Decision {
  bid: Bid;
  /** The winning agent's estimate (for logs and the award path). */
  estimate?: CostEstimate;
}

function decline(a: Announce, nodeId: string, reason: DeclineReason, detail: string): Decision {
  return { bid: { type: "decline", auctionId: a.auctionId, taskId: a.taskId, nodeId, reason, detail } };
}

/** The device fields a bid carries (only those known). */
export function deviceState(s: ProbeSnapshot): NonNullable<Extract<Bid, { type: "bid" }>["device"]> {
  const d: NonNullable<Extract<Bid, { type: "bid" }>["device"]> = { cpuLoad: Math.min(100, Math.max(0, s.cpuLoad)), freeMemMB: Math.max(0, s.freeMemMB) };
  if (s.batteryPercent !== undefined) d.batteryPercent = s.batteryPercent;
  if (s.charging !== undefined) d.charging = s.charging;
  if (s.temperatureC !== undefined && s.temperatureC > -50 && s.temperatureC < 200) d.temperatureC = s.temperatureC;
  return d;
}

export function decideBid(a: Announce, node: BidderNode, now: number): Decision {
  const { profile, snapshot: s } = node;
  const skilled = node.agents.filter((ag) => a.skill === undefined || ag.skills.includes(a.skill));
  if (skilled.length === 0) return decline(a, node.nodeId, "no-skill", `no agent with skill ${a.skill}`);
  const excluded = new Set(a.excludedAgents ?? []);
  const eligible = skilled.filter((ag) => !excluded.has(ag.agentId));
  if (eligible.length === 0) return decline(a, node.nodeId, "excluded", "every agent with the skill sits out a penalty");

  const onBattery = s.batteryPercent !== undefined && !(s.charging && profile.battery.onMains === "no-penalty");
  if (onBattery && s.batteryPercent! < profile.battery.minPercent) {
    return decline(a, node.nodeId, "battery", `battery ${s.batteryPercent}% < profile minimum ${profile.battery.minPercent}% and not charging`);
  }
  if (s.temperatureC !== undefined && s.temperatureC >= profile.thermal.declineC) {
    return decline(a, node.nodeId, "thermal", `temperature ${s.temperatureC} C >= profile decline limit ${profile.thermal.declineC} C`);
  }
  if (node.running >= profile.slots && node.queued >= profile.queueLimit) {
    return decline(a, node.nodeId, "queue-full", `${node.running} running, ${node.queued} queued (limit ${profile.queueLimit})`);
  }

  const headroomMB = s.freeMemMB - profile.memoryReserveMB + node.reclaimableMB;
  let best: { agent: BidderAgent; est: CostEstimate; accuracy: number; score: number } | undefined;
  let memoryBlocked = 0;
  let tooSlow = 0;
  const budgetMs = Math.max(1, a.deadlineAt - now);
  for (const agent of eligible) {
    const asleep = agent.state === "asleep" || agent.state === "loading";
    if (asleep && agent.wakeNeedMB > headroomMB) {
      memoryBlocked++;
      continue;
    }
    const est = estimateCost({
      promptChars: a.prompt.length,
      maxTokens: a.maxTokens,
      asleep,
      queueMs: node.queueMs,
      calibration: agent.calibration ?? UNCALIBRATED,
      threads: node.threads,
      snapshot: s,
      profile,
    });
    if (est.latencyMs > budgetMs) {
      tooSlow++;
      continue;
    }
    const accuracy = agent.accuracy(a.skill);
    // Accuracy first; among similar agents the faster one (latency as a share of the time budget).
    const score = accuracy - 0.2 * (est.latencyMs / budgetMs);
    if (!best || score > best.score) best = { agent, est, accuracy, score };
  }
  if (!best) {
    if (memoryBlocked > 0 && tooSlow === 0) return decline(a, node.nodeId, "memory", `waking would leave less than the ${profile.memoryReserveMB} MB reserve`);
    return decline(a, node.nodeId, "deadline", `no agent can finish within ${budgetMs} ms`);
  }
  const e = best.est;
  return {
    estimate: e,
    bid: {
      type: "bid",
      auctionId: a.auctionId,
      taskId: a.taskId,
      nodeId: node.nodeId,
      agentId: best.agent.agentId,
      estimate: { latencyMs: e.latencyMs, energyJ: e.energyJ, accuracy: best.accuracy, wakeMs: e.wakeMs, queueMs: e.queueMs },
      device: deviceState(s),
    },
  };
}
