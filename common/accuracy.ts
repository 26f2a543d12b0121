/**
 * Expected accuracy from a claim and a record: the one formula both sides use. The coordinator
 * scores bids with it over the records it owns; a node picks among its own agents with it over the
 * records the coordinator sent back in verdicts (docs/scoring.md).
 */

/** Successes and failures of one agent on one skill: one observation per task attempt. */
export interface Record {
  successes: number;
  failures: number;
}

/** How many pseudo-observations a claim is worth (a weak prior that fades as the record grows). */
export const PRIOR_STRENGTH = 2;
/** The most a claim may say: an agent claiming 1.0 starts like one claiming 0.9 (posterior mean 0.7). */
export const CLAIM_CAP = 0.9;

/**
 * Mean of Beta(1 + k*c + s, 1 + k*(1-c) + f) for the claim c (capped at CLAIM_CAP) and the record
 * (s, f): the claim adds at most k virtual observations, whatever it says and however often.
 */
export function posteriorMean(claim: number, rec: Record, priorStrength = PRIOR_STRENGTH): number {
  const c = Math.min(CLAIM_CAP, Math.max(0, claim));
  const alpha = 1 + priorStrength * c + rec.successes;
  const beta = 1 + priorStrength * (1 - c) + rec.failures;
  return alpha / (alpha + beta);
}

/** Scale of the exploration bonus c * sqrt(ln(N + 1) / (n + 1)). */
export const EXPLORATION = 0.15;

/**
 * UCB1 bonus: large for an agent tried rarely compared with all trials of the skill. The coordinator
 * adds it to every bid's mean; a node adds it when it picks among its own agents for a niche.
 */
export function explorationBonus(agentTrials: number, totalTrials: number, c = EXPLORATION): number {
  return c * Math.sqrt(Math.log(totalTrials + 1) / (agentTrials + 1));
}
