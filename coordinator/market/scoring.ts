/**
 * Choosing a winner among sealed bids: pure functions (docs/scoring.md explains the maths).
 *
 * The bidder's claim is only a weak, capped prior: the estimate is the mean of a Beta posterior over
 * the agent's record for the skill (kept by the coordinator alone, one observation per attempt),
 * plus a UCB1-style exploration bonus that shrinks as the agent is tried, so new agents get tried
 * and none starves.
 */
import { explorationBonus, posteriorMean, type Record } from "../../common/accuracy.ts";

export { CLAIM_CAP, EXPLORATION, explorationBonus, posteriorMean, PRIOR_STRENGTH, type Record } from "../../common/accuracy.ts";

export interface Weights {
  accuracy: number;
  latency: number;
  energy: number;
}
export const DEFAULT_WEIGHTS: Readonly<Weights> = Object.freeze({ accuracy: 1, latency: 0.3, energy: 0.1 });

/** Energy at which the energy penalty is half its weight: E / (E + E_REF). */
export const ENERGY_REF_J = 10;

export interface BidView {
  key: string;
  agentId: string;
  latencyMs: number;
  energyJ: number;
  accuracy: number;
}

export interface TaskView {
  /** ms left until the task's deadline, from the moment of scoring. */
  budgetMs: number;
  minAccuracy?: number | undefined;
  weights?: Partial<Weights> | undefined;
}

export interface Scored {
  key: string;
  eligible: boolean;
  reason?: "deadline" | "min-accuracy";
  /** Posterior mean of the agent's accuracy on the skill. */
  accuracyMean: number;
  /** accuracyMean + exploration bonus (capped at 1). */
  accuracyUcb: number;
  score: number;
}

export function scoreBid(bid: BidView, rec: Record, totalTrials: number, task: TaskView): Scored {
  const w = { ...DEFAULT_WEIGHTS, ...(task.weights ?? {}) };
  const mean = posteriorMean(bid.accuracy, rec);
  // Ranked uncapped: capped at 1, an incumbent near 1 with a small bonus ties every newcomer, and the
  // newcomer, asleep or uncalibrated, loses the tie on cost and is never tried (docs/scoring.md, 2).
  const optimistic = mean + explorationBonus(rec.successes + rec.failures, totalTrials);
  const ucb = Math.min(1, optimistic);
  const budget = Math.max(1, task.budgetMs);
  const latencyTerm = Math.min(1, bid.latencyMs / budget);
  const energyTerm = bid.energyJ / (bid.energyJ + ENERGY_REF_J);
  const score = w.accuracy * optimistic - w.latency * latencyTerm - w.energy * energyTerm;
  let reason: Scored["reason"];
  if (bid.latencyMs > task.budgetMs) reason = "deadline";
  // Optimistic (UCB) on purpose: a new agent must be able to qualify to ever build a record.
  else if (task.minAccuracy !== undefined && ucb < task.minAccuracy) reason = "min-accuracy";
  return { key: bid.key, eligible: reason === undefined, ...(reason ? { reason } : {}), accuracyMean: mean, accuracyUcb: ucb, score };
}

/**
 * Scores every bid and picks the best eligible one; ties (within 1e-9) are broken by `rng` so no
 * agent wins ties forever by its name or arrival order. Returns undefined when none is eligible.
 */
export function pickWinner(
  bids: readonly BidView[],
  recordOf: (bid: BidView) => Record,
  totalTrials: number,
  task: TaskView,
  rng: () => number,
): { winner: Scored | undefined; scored: Scored[] } {
  const scored = bids.map((b) => scoreBid(b, recordOf(b), totalTrials, task));
  const eligible = scored.filter((s) => s.eligible);
  if (eligible.length === 0) return { winner: undefined, scored };
  const best = Math.max(...eligible.map((s) => s.score));
  const top = eligible.filter((s) => s.score >= best - 1e-9);
  const winner = top.length === 1 ? top[0] : top[Math.min(top.length - 1, Math.floor(rng() * top.length))];
  return { winner, scored };
}
