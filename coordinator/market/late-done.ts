/**
 * A done for an attempt that is no longer current (superseded by a re-auction, or its task already
 * finished): it is recorded on that attempt (`late`) and counted, never published as the result.
 */
import type { Clock } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Done } from "../../common/protocol.ts";
import type { Run } from "./runs.ts";
import type { TaskStore } from "./task-store.ts";

export async function recordLateDone(done: Done, run: Run | undefined, p: { store: TaskStore; clock: Clock; counters: Counters; persist: (run: Run) => void }): Promise<void> {
  const rec = run?.rec ?? (await p.store.getTask(done.taskId).catch(() => undefined));
  const a = rec?.attempts.find((x) => x.auctionId === done.auctionId && x.nodeId === done.nodeId);
  if (!rec || !a) return p.counters.drop("done.unknown");
  a.late = { status: done.status, at: p.clock.now() };
  p.counters.inc("done.late");
  if (run) p.persist(run);
  else await p.store.putTask(rec);
}
