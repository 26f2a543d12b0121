/**
 * How a closed auction is decided: the bids of nodes still online, each scored with its agent's
 * track record for the task's skill (scoring.ts), the best eligible one wins; or the error that
 * says why nobody did (results.ts). Pure apart from reading the registry and the reputation.
 */
import type { WireError } from "../../common/protocol.ts";
import type { Auction, BidMessage } from "./auction.ts";
import type { MarketParts } from "./parts.ts";
import { noWinnerError } from "./results.ts";
import { pickWinner } from "./scoring.ts";
import type { TaskRecord } from "./task-store.ts";
import type { RankedBid } from "./events.ts";

type OfferedBid = BidMessage;

/** One scored bid of a closed auction, for the market's events (the dashboard shows them). */
/** `ranked` is computed only when someone asks (the dashboard feed): the award path does not sort for it. */
export type AuctionDecision = { bids: number; winner: { bid: OfferedBid; score: number }; ranked: () => RankedBid[] } | { bids: number; error: WireError };

export function decideAuction(auction: Auction, rec: TaskRecord, skill: string, now: number, p: Pick<MarketParts, "registry" | "reputation" | "rng">): AuctionDecision {
  const bids = auction.bids.filter((b) => p.registry.isOnline(b.nodeId));
  const { winner, scored } = pickWinner(
    bids.map((b) => ({ key: b.nodeId, agentId: b.agentId, ...b.estimate })),
    (b) => p.reputation.record(p.registry.refOrName(b.key, b.agentId), skill),
    p.reputation.totalTrials(skill),
    { budgetMs: rec.deadlineAt - now, minAccuracy: rec.submit.minAccuracy, weights: rec.submit.weights },
    p.rng,
  );
  if (!winner) return { bids: bids.length, error: noWinnerError(auction, bids.length, scored) };
  // Best first; eligible before ineligible.
  const ranked = () =>
    scored
      .map((s, i) => ({ nodeId: bids[i]!.nodeId, agentId: bids[i]!.agentId, estimate: bids[i]!.estimate, score: s.score, eligible: s.eligible, ...(s.reason ? { reason: s.reason } : {}), accuracyMean: s.accuracyMean }))
      .sort((a, b) => Number(b.eligible) - Number(a.eligible) || b.score - a.score);
  return { bids: bids.length, winner: { bid: bids.find((b) => b.nodeId === winner.key)!, score: winner.score }, ranked };
}
