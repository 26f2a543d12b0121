/**
 * What the market finds in its store when it starts: the ids of every stored task, the newest
 * results (republished: an embedded broker lost its retained messages with the old process), and
 * the unfinished tasks, whose interrupted attempt is marked `restarted` (it is not the agent's
 * fault) and which are resumed with a new auction.
 */
import { ANONYMOUS, type Result } from "../../common/protocol.ts";
import { MarketErrors } from "./errors.ts";
import type { Run } from "./runs.ts";
import type { TaskRecord, TaskStore } from "./task-store.ts";

/** Results republished at start, newest first. */
const REPUBLISHED = 1000;

export interface StoredTasks {
  ids: string[];
  recentResults: { owner: string; result: Result }[];
  unfinished: Run["rec"][];
}

export async function loadStoredTasks(store: TaskStore, defaultMaxTokens: number): Promise<StoredTasks> {
  const ids: string[] = [];
  const done: TaskRecord[] = [];
  const unfinished: Run["rec"][] = [];
  for await (const t of store.tasks()) {
    ids.push(t.id);
    if (t.state === "done") {
      done.push(t);
      continue;
    }
    const last = t.attempts.at(-1);
    if (last && ["pending", "awarded", "running"].includes(last.outcome)) {
      last.outcome = "restarted";
      last.error = { code: MarketErrors.COORDINATOR_RESTARTED, message: "the coordinator restarted during this attempt" };
    }
    // Tasks stored by versions that did not resolve maxTokens at acceptance get it now, once.
    unfinished.push({ ...t, maxTokens: t.maxTokens ?? t.submit.maxTokens ?? defaultMaxTokens });
  }
  done.sort((a, b) => (b.result?.timings.finishedAt ?? 0) - (a.result?.timings.finishedAt ?? 0));
  const recentResults = done.slice(0, REPUBLISHED).flatMap((t) => (t.result ? [{ owner: t.owner ?? ANONYMOUS, result: t.result }] : []));
  return { ids, recentResults, unfinished };
}
