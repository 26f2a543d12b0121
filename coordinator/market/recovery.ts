/**
 * What the market finds in its store when it starts: the unfinished tasks (from the store's open
 * index, not a read of every task), whose interrupted attempt is marked `restarted` (it is not the
 * agent's fault) and which are resumed with a new auction. Finished tasks stay in the store:
 * retention.ts republishes recent results and expires old ones.
 */
import { MarketErrors } from "./errors.ts";
import type { Run } from "./runs.ts";
import type { TaskStore } from "./task-store.ts";

export async function loadUnfinishedTasks(store: TaskStore, defaultMaxTokens: number): Promise<Run["rec"][]> {
  const unfinished: Run["rec"][] = [];
  for await (const t of store.openTasks()) {
    const last = t.attempts.at(-1);
    if (last && ["pending", "awarded", "running"].includes(last.outcome)) {
      last.outcome = "restarted";
      last.error = { code: MarketErrors.COORDINATOR_RESTARTED, message: "the coordinator restarted during this attempt" };
    }
    // Tasks stored by versions that did not resolve maxTokens at acceptance get it now, once.
    unfinished.push({ ...t, maxTokens: t.maxTokens ?? t.submit.maxTokens ?? defaultMaxTokens });
  }
  return unfinished;
}
