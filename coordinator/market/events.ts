/**
 * What the market tells the rest of the coordinator, as typed events (common/events.ts). The market
 * decides; everything that learns from its decisions subscribes: the agents' reputation (track
 * records and penalties), the verdicts sent back to nodes, and next the cold cache, lineage, the
 * architect, metrics and the dashboard. Adding a subscriber edits coordinator/coordinator.ts, never
 * market.ts.
 *
 * `skill` is the track-record key: the task's skill, or "*" for a task without one. An agent is
 * named by its node, its id and its genome hash (agent-ref.ts: records are kept per node and genome).
 */
import { TypedEmitter } from "../../common/events.ts";
import type { z } from "zod";
import type { Bid, BidEstimateSchema, EnergySource, Submit, WireError } from "../../common/protocol.ts";

/** One bid of a closed auction as the winner's choice ranked it (winner.ts); defined here, where the events carry it, so the events import nothing of the market. */
export interface RankedBid {
  nodeId: string;
  agentId: string;
  estimate: Extract<Bid, { type: "bid" }>["estimate"];
  score: number;
  eligible: boolean;
  reason?: "deadline" | "min-accuracy" | undefined;
  /** Posterior mean of the agent's accuracy on the skill (its track record). */
  accuracyMean: number;
}

/** How a delivered attempt was judged. One attempt has exactly one verdict at a time. */
export interface AttemptVerdict {
  success: boolean;
  /** `check`: the task's machine check; `delivery`: no check, an output arrived (provisional); `feedback`: the submitter's word. */
  source: "check" | "delivery" | "feedback";
}

export interface TaskAccepted {
  taskId: string;
  skill: string;
  submit: Submit;
  maxTokens: number;
  deadlineAt: number;
  at: number;
}

export interface AttemptAwarded {
  taskId: string;
  skill: string;
  attempt: number;
  auctionId: string;
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  bid: z.infer<typeof BidEstimateSchema>;
  score: number;
  bids: number;
  /** Every scored bid of the auction, best first (winner.ts), computed when called: only the dashboard's feed asks. */
  ranked?: (() => RankedBid[]) | undefined;
  at: number;
}

/** An attempt failed through the agent's fault (error, missed ack, refusal, timeout, node offline, deadline). */
export interface AttemptFailed {
  taskId: string;
  skill: string;
  attempt: number;
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  outcome: string;
  error: WireError;
  /** `false` when the task opted out of learning (its submit's `learn`): the cold cache keeps nothing of it. */
  learn?: false | undefined;
  /** `true` for a private task (its submit's `private`): its experiences never leave the coordinator's host. */
  private?: true | undefined;
  at: number;
}

export interface DeliveredAttempt {
  attempt: number;
  nodeId: string;
  agentId: string;
  /** The agent's genome hash as its node registered it, when known. */
  genome?: string | undefined;
  output: string;
  verdict: AttemptVerdict;
  cost: { energyJ?: number | undefined; energySource?: EnergySource | undefined; tokens?: number | undefined; promptMs?: number | undefined; generateMs?: number | undefined };
}

/** The task's one final result was stored and published. */
export interface TaskFinished {
  taskId: string;
  /** The submitter (MQTT username) the task belongs to. */
  submitter: string;
  skill: string;
  prompt: string;
  status: "ok" | "error";
  error?: WireError | undefined;
  attempts: number;
  /** The attempt that delivered an output (ok, or a failed check), if any. */
  delivered?: DeliveredAttempt | undefined;
  totalMs: number;
  /** `false` when the task opted out of learning (its submit's `learn`): the cold cache keeps nothing of it. */
  learn?: false | undefined;
  /** `true` for a private task (its submit's `private`): its experiences never leave the coordinator's host. */
  private?: true | undefined;
  at: number;
}

/** The submitter's feedback replaced the verdict of the delivering attempt. */
export interface FeedbackApplied {
  taskId: string;
  submitter: string;
  skill: string;
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  verdict: AttemptVerdict;
  previous: AttemptVerdict;
  score?: number | undefined;
  at: number;
}

export interface MarketEvents {
  taskAccepted: TaskAccepted;
  attemptAwarded: AttemptAwarded;
  attemptFailed: AttemptFailed;
  taskFinished: TaskFinished;
  feedback: FeedbackApplied;
}

export class MarketEventBus extends TypedEmitter<MarketEvents> {}
