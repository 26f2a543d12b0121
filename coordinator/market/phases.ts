import type { Done, Result } from "../../common/protocol.ts";

/**
 * Where a task's time went (issue 14: find it before changing anything). The market marks each
 * step of a task with the process's monotonic clock (performance.now, sub-millisecond, never the
 * injected Clock that decisions use); the final result carries the durations between the marks of
 * the DELIVERING attempt, plus the node's own split from its `done`. Marks live in memory only: a
 * task resumed after a restart carries the phases it saw since.
 *
 *   received -intake-> accepted -announce-> announced -bidding-> closed -decide-> awarded
 *   -ack-> acked -run-> done -check-> checked, then the result is stored and published
 *
 * The result's own store write is not in it (the result is stored as published, so it cannot carry
 * the time of its own write); bench/latency.ts times the store's writes from outside. The first
 * auction runs while the task is being stored (market.ts onSubmit): for a first attempt `intakeMs`
 * overlaps `biddingMs` and `announceMs` is 0. For a later one `announceMs` spans everything between
 * acceptance and the delivering attempt's announce, so the time lost to failed attempts and
 * re-auctions shows there. `runMs` is ack to done as the
 * coordinator sees it; the node's `nodeMs` (award received to done sent) inside it, and the node's
 * queue, wake, prompt and generation inside that.
 */
export type Mark = "received" | "accepted" | "announced" | "closed" | "awarded" | "acked" | "done" | "checked";
export type Marks = Partial<Record<Mark, number>>;
export type Phases = NonNullable<Result["timings"]["phases"]>;

const SPANS: readonly [keyof Phases, Mark, Mark][] = [
  ["intakeMs", "received", "accepted"],
  ["announceMs", "accepted", "announced"],
  ["biddingMs", "announced", "closed"],
  ["decideMs", "closed", "awarded"],
  ["ackMs", "awarded", "acked"],
  ["runMs", "acked", "done"],
  ["checkMs", "done", "checked"],
];
const NODE_FIELDS = ["queueMs", "wakeMs", "promptMs", "generateMs", "nodeMs"] as const;

const round = (ms: number) => Math.round(Math.max(0, ms) * 100) / 100;

export const markNow = (marks: Marks, mark: Mark): void => void (marks[mark] = performance.now());

/** The durations known so far (a span needs both its marks) and the node's own, when it delivered. */
export function phasesOf(marks: Marks, done: Done | undefined): Phases {
  const out: Phases = {};
  for (const [name, from, to] of SPANS) {
    const a = marks[from];
    const b = marks[to];
    if (a !== undefined && b !== undefined) out[name] = round(b - a);
  }
  const t = done?.timings;
  if (t) for (const f of NODE_FIELDS) if (t[f] !== undefined) out[f] = round(t[f]);
  return out;
}
