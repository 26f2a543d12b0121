/**
 * Label values for the coordinator's metrics, each from a bounded set: a label value that came
 * from a peer (a skill name, an error code a node sent, a drop reason) would let one client grow
 * the number of time series without limit, so anything outside the known set becomes "other".
 * Task ids, prompts and submitter names are never labels.
 */
import { skillNames } from "../../skills/index.ts";
import { MarketErrors } from "../market/errors.ts";

const BUILT_IN_SKILLS: ReadonlySet<string> = new Set(skillNames());
const MARKET_CODES: ReadonlySet<string> = new Set(Object.values(MarketErrors) as string[]);
/** Attempt outcomes the market records (market.ts failAttempt / onTaskDeadline). */
const ATTEMPT_OUTCOMES: ReadonlySet<string> = new Set(["error", "ack-timeout", "refused", "attempt-timeout", "offline", "deadline", "restarted"]);

/**
 * A track-record key as a label: a built-in skill's name, "unlabeled" for a task without a skill
 * ("*", or a niche key "~c1" inferred from its prompt), anything else "other".
 */
export function skillLabel(skill: string): string {
  if (BUILT_IN_SKILLS.has(skill)) return skill;
  if (skill === "*" || skill.startsWith("~")) return "unlabeled";
  return "other";
}

/** Every value skillLabel can return (so a scrape shows zeros instead of missing series). */
export function skillLabels(): string[] {
  return [...BUILT_IN_SKILLS, "unlabeled", "other"];
}

/** A finished task's outcome: "ok", or its market error code in lower case (`no_bidders`), or "other_error". */
export function outcomeLabel(status: "ok" | "error", code: string | undefined): string {
  if (status === "ok") return "ok";
  return code !== undefined && MARKET_CODES.has(code) ? code.toLowerCase() : "other_error";
}

export function attemptOutcomeLabel(outcome: string): string {
  return ATTEMPT_OUTCOMES.has(outcome) ? outcome.replaceAll("-", "_") : "other";
}

/** At most this many distinct drop reasons become label values; the rest are summed under "other". */
export const MAX_DROP_REASONS = 200;
