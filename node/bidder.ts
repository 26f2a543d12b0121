/**
 * Turns an announce into one bid for the node's best agent, or one decline with a reason. Pure and
 * synchronous: everything it needs (probe snapshot, agents' states, calibrations, queue) is read
 * from memory, so the bid leaves within a millisecond even while llama.cpp generates.
 */
import { explorationBonus, posteriorMean, type Record } from "../common/accuracy.ts";
import type { Announce, Bid } from "../common/protocol.ts";
import { estimateCost, estimatePromptTokens, UNCALIBRATED, type Calibration, type CostEstimate } from "./cost-model.ts";
import type { DeviceProfile } from "./profile.ts";
import type { ProbeSnapshot } from "./probe.ts";

export interface BidderAgent {
  agentId: string;
  skills: readonly string[];
  /** asleep (model and context freed) or loading count as needing a wake. */
  state: "awake" | "asleep" | "busy" | "loading";
  calibration?: Calibration | undefined;
  /** Threads the agent's model runs with (its calibration's, else the node's maximum). */
  threads: number;
  contextSize: number;
  /** Characters the genome's prompt template adds around the task's prompt. */
  templateChars: number;
  /** MB that waking this agent needs (0 if its model is already loaded by another agent). */
  wakeNeedMB: number;
  /** The genome's claim for a skill; the bid carries it, the coordinator caps what it may add. */
  claim: (skill: string | undefined) => number;
  /** The coordinator's record of this agent for a skill or niche ("~c3"), from its verdicts (record-cache.ts). */
  record: (skill: string | undefined) => Record;
}

export interface BidderNode {
  nodeId: string;
  profile: DeviceProfile;
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

const trials = (r: Record): number => r.successes + r.failures;
/** Ahead of any posterior plus bonus, behind nothing else: cost still orders two untried agents. */
const UNTRIED = 10;
/**
 * Trials on a key before the UCB bonus alone decides: an agent judged fewer times goes first. One trial
 * was not enough: a child whose first answer was right still sat at a posterior of 0.76 next to a
 * parent at 0.99 and waited hundreds of tasks for its second (docs/scoring.md, "Exploration on the node").
 */
export const WARMUP_TRIALS = 3;

/**
 * `deadlineAt` and `now` are on the node's clock (the announce's times converted: jobs.ts and
 * bid-desk.ts call `fromCoordinatorClock`).
 */
export function decideBid(a: Announce, node: BidderNode, now: number): Decision {
  const { profile, snapshot: s } = node;
  const skilled = node.agents.filter((ag) => a.skill === undefined || ag.skills.includes(a.skill));
  if (skilled.length === 0) return decline(a, node.nodeId, "no-skill", `no agent with skill ${a.skill}`);
  // Exclusions name the node: another node's agent of the same id is another agent.
  const excluded = new Set((a.excludedAgents ?? []).filter((x) => x.nodeId === node.nodeId).map((x) => x.agentId));
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

  // The key of the records the pick uses: the skill, else the niche the coordinator inferred.
  const key = a.skill ?? a.niche;
  // Only the agent a node picks is ever judged: for a niche every agent may be the right one, and a
  // child spawned next to its parent (docs/evolution.md) would never be tried. So when several agents
  // could take the task the pick explores, with the coordinator's UCB1 bonus over the node's own
  // agents' trials on the key (docs/scoring.md, "Tasks without a skill").
  const explore = eligible.length > 1;
  const nicheTrials = explore ? eligible.reduce((n, ag) => n + trials(ag.record(key)), 0) : 0;
  const headroomMB = s.freeMemMB - profile.memoryReserveMB + node.reclaimableMB;
  let best: { agent: BidderAgent; est: CostEstimate; claim: number; score: number } | undefined;
  let memoryBlocked = 0;
  let tooSlow = 0;
  let tooLong = 0;
  const budgetMs = Math.max(1, a.deadlineAt - now);
  for (const agent of eligible) {
    // A prompt that leaves no room for one generated token cannot be answered by this agent.
    const cal = agent.calibration ?? UNCALIBRATED;
    if (estimatePromptTokens(a.prompt.length + agent.templateChars, cal.charsPerToken) + 1 >= agent.contextSize) {
      tooLong++;
      continue;
    }
    const asleep = agent.state === "asleep" || agent.state === "loading";
    if (asleep && agent.wakeNeedMB > headroomMB) {
      memoryBlocked++;
      continue;
    }
    const est = estimateCost({
      promptChars: a.prompt.length + agent.templateChars,
      maxTokens: a.maxTokens,
      contextSize: agent.contextSize,
      asleep,
      queueMs: node.queueMs,
      calibration: agent.calibration ?? UNCALIBRATED,
      threads: agent.threads,
      snapshot: s,
      profile,
    });
    if (est.latencyMs > budgetMs) {
      tooSlow++;
      continue;
    }
    const claim = agent.claim(a.skill);
    // The same expected accuracy the coordinator will compute (its record, the capped claim); among
    // similar agents the faster one (latency as a share of the time budget).
    const rec = agent.record(key);
    // UCB1 plays every arm first, here a few times: an agent barely judged on the key (a newborn child, a new niche) goes before the others.
    const bonus = !explore ? 0 : trials(rec) < WARMUP_TRIALS ? UNTRIED : explorationBonus(trials(rec), nicheTrials);
    // Uncapped, like the coordinator's ranking: a good incumbent must not tie a newcomer at 1.
    const score = posteriorMean(claim, rec) + bonus - 0.2 * (est.latencyMs / budgetMs);
    if (!best || score > best.score) best = { agent, est, claim, score };
  }
  if (!best) {
    if (tooLong === eligible.length) return decline(a, node.nodeId, "context", `the prompt does not fit the context of any agent (largest ${Math.max(...eligible.map((x) => x.contextSize))} tokens)`);
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
      estimate: { latencyMs: e.latencyMs, energyJ: e.energyJ, accuracy: best.claim, wakeMs: e.wakeMs, queueMs: e.queueMs },
      device: deviceState(s),
    },
  };
}
