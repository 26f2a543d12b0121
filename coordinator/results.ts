import type { Done, Result } from "../common/protocol.ts";
import { MarketErrors } from "./errors.ts";
import type { AttemptRecord, TaskRecord } from "./task-store.ts";

/**
 * Pure helpers of the market: the shape of a task's one final Result, and the rules that say
 * which attempt outcomes blame the agent and when two submits are the same.
 */

/** Attempt outcomes that are the agent's fault: it sits out the rest of the task. */
export const FAULTS: ReadonlySet<string> = new Set(["ack-timeout", "refused", "error", "attempt-timeout", "offline", "deadline"]);

/** A stable JSON form, so an exact re-send matches whatever order its keys came in. */
export function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

export function wireAttempts(attempts: readonly AttemptRecord[]): Result["attempts"] {
  return attempts.map((a) => ({ attempt: a.attempt, ...(a.nodeId ? { nodeId: a.nodeId } : {}), ...(a.agentId ? { agentId: a.agentId } : {}), outcome: a.outcome, ...(a.error ? { error: a.error } : {}) }));
}

/** The result of a delivered output; a failed check makes it an error that still carries the output. */
export function deliveredResult(rec: TaskRecord, a: AttemptRecord, done: Done, checked: boolean | undefined, now: number): Result {
  const t = done.timings;
  return {
    id: rec.id,
    status: checked === false ? "error" : "ok",
    output: done.output ?? "",
    ...(checked === false ? { error: { code: MarketErrors.CHECK_FAILED, message: `output did not pass the ${rec.submit.check!.type} check` } } : {}),
    ...(checked !== undefined ? { checked } : {}),
    agentId: a.agentId!,
    nodeId: a.nodeId!,
    attempts: wireAttempts(rec.attempts),
    timings: { acceptedAt: rec.acceptedAt, finishedAt: now, totalMs: now - rec.acceptedAt, ...(t?.generateMs !== undefined ? { generateMs: t.generateMs } : {}) },
    ...(done.cost?.energyJ !== undefined || t?.tokens !== undefined
      ? { cost: { ...(done.cost?.energyJ !== undefined ? { energyJ: done.cost.energyJ } : {}), ...(t?.tokens !== undefined ? { tokens: t.tokens } : {}) } }
      : {}),
  };
}

export function failedResult(rec: TaskRecord, code: string, message: string, now: number): Result {
  return { id: rec.id, status: "error", error: { code, message }, attempts: wireAttempts(rec.attempts), timings: { acceptedAt: rec.acceptedAt, finishedAt: now, totalMs: now - rec.acceptedAt } };
}
