import type { Done, Result, WireError } from "../../common/protocol.ts";
import type { Auction } from "./auction.ts";
import { CHECK_TIMEOUT_MS, type CheckOutcome } from "./checks.ts";
import { MarketErrors } from "./errors.ts";
import type { AttemptVerdict, DeliveredAttempt } from "./events.ts";
import type { AttemptRecord, TaskRecord } from "./task-store.ts";

/**
 * Pure helpers of the market: the shape of a task's one final Result, the rule that says which
 * attempt outcomes blame the agent, and how a delivered attempt is judged.
 */

/** Attempt outcomes that are the agent's fault: it sits out the rest of the task. */
export const FAULTS: ReadonlySet<string> = new Set(["ack-timeout", "refused", "error", "attempt-timeout", "offline", "deadline"]);

export function wireAttempts(attempts: readonly AttemptRecord[]): Result["attempts"] {
  return attempts.map((a) => ({ attempt: a.attempt, ...(a.nodeId ? { nodeId: a.nodeId } : {}), ...(a.agentId ? { agentId: a.agentId } : {}), outcome: a.outcome, ...(a.error ? { error: a.error } : {}) }));
}

/** The error a delivered output's result carries: its check failed, or ran out of time. */
function checkError(rec: TaskRecord, outcome: CheckOutcome | undefined): WireError | undefined {
  if (outcome === false) return { code: MarketErrors.CHECK_FAILED, message: `output did not pass the ${rec.submit.check!.type} check` };
  if (outcome === "timeout") return { code: MarketErrors.CHECK_TIMEOUT, message: `the ${rec.submit.check!.type} check ran longer than ${CHECK_TIMEOUT_MS} ms (the output is in the result; the agent is not blamed)` };
  return undefined;
}

/** The result of a delivered output; a failed (or timed-out) check makes it an error that still carries the output. */
export function deliveredResult(rec: TaskRecord, a: AttemptRecord, done: Done, outcome: CheckOutcome | undefined, now: number): Result {
  const t = done.timings;
  const error = checkError(rec, outcome);
  return {
    id: rec.id,
    status: error ? "error" : "ok",
    output: done.output ?? "",
    ...(error ? { error } : {}),
    ...(typeof outcome === "boolean" ? { checked: outcome } : {}),
    agentId: a.agentId!,
    nodeId: a.nodeId!,
    attempts: wireAttempts(rec.attempts),
    timings: { acceptedAt: rec.acceptedAt, finishedAt: now, totalMs: now - rec.acceptedAt, ...(t?.generateMs !== undefined ? { generateMs: t.generateMs } : {}) },
    ...(done.cost?.energyJ !== undefined || t?.tokens !== undefined
      ? {
          cost: {
            ...(done.cost?.energyJ !== undefined ? { energyJ: done.cost.energyJ } : {}),
            ...(done.cost?.energySource !== undefined ? { energySource: done.cost.energySource } : {}),
            ...(t?.tokens !== undefined ? { tokens: t.tokens } : {}),
          },
        }
      : {}),
  };
}

export function failedResult(rec: TaskRecord, code: string, message: string, now: number): Result {
  return { id: rec.id, status: "error", error: { code, message }, attempts: wireAttempts(rec.attempts), timings: { acceptedAt: rec.acceptedAt, finishedAt: now, totalMs: now - rec.acceptedAt } };
}

/**
 * Why an auction ended without a winner: PROMPT_TOO_LONG when every answer was a `context` decline
 * (the prompt fits no agent that has the skill), else NO_BIDDERS with the counts.
 */
export function noWinnerError(auction: Pick<Auction, "declines" | "expectedCount">, bids: number, scored: readonly { reason?: string | undefined }[]): WireError {
  const { declines } = auction;
  if (bids === 0 && declines.length > 0 && declines.every((d) => d.reason === "context")) {
    return { code: MarketErrors.PROMPT_TOO_LONG, message: `the prompt does not fit the context of any agent that has the skill: ${declines.map((d) => `${d.nodeId}: ${d.detail ?? "context"}`).join("; ")}`.slice(0, 1000) };
  }
  const reasons = scored.map((s) => s.reason).filter(Boolean);
  return { code: MarketErrors.NO_BIDDERS, message: `no eligible bid: ${bids} bids (${reasons.length} ineligible: ${[...new Set(reasons)].join(", ") || "-"}), ${declines.length} declines, ${auction.expectedCount} nodes asked` };
}

/** The verdict of a delivered output before any feedback: the check's, else provisional delivery. */
export function firstVerdict(checked: boolean | undefined): AttemptVerdict {
  return checked === undefined ? { success: true, source: "delivery" } : { success: checked, source: "check" };
}

/** The delivering attempt of a finished task and its verdict (records stored before verdicts were kept get it derived). */
export function deliveredAttempt(rec: TaskRecord): { attempt: AttemptRecord; verdict: AttemptVerdict } | undefined {
  const r = rec.result;
  if (!r?.agentId || !r.nodeId) return undefined;
  const attempt = [...rec.attempts].reverse().find((a) => a.agentId === r.agentId && a.nodeId === r.nodeId && (a.outcome === "ok" || a.outcome === "check-failed"));
  if (!attempt) return undefined;
  return { attempt, verdict: attempt.verdict ?? firstVerdict(r.checked) };
}

/** The `delivered` part of a taskFinished event, from the attempt and its done message. */
export function deliveredEvent(a: AttemptRecord, verdict: AttemptVerdict, done: Done): DeliveredAttempt {
  const t = done.timings;
  return {
    attempt: a.attempt, nodeId: a.nodeId!, agentId: a.agentId!, genome: a.genome, output: done.output ?? "", verdict,
    cost: { energyJ: done.cost?.energyJ, energySource: done.cost?.energySource, tokens: t?.tokens, promptMs: t?.promptMs, generateMs: t?.generateMs },
  };
}
