/**
 * `tasks/{id}/get`: a submitter asks for a task's result again, typically after it expired from
 * the broker (retention.ts) or when the submitter never subscribed. The answer goes to the asker's
 * own folder: the stored result (not retained), an `accepted` event for a task still running, or a
 * `rejected` event with TASK_NOT_FOUND for an id it does not own or that is no longer stored. Gets
 * count against the submitter's request rate (quota.ts).
 */
import type { Clock } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { MarketErrors } from "./errors.ts";
import type { MarketOutbox } from "./outbox.ts";
import type { SubmitterQuota } from "./quota.ts";
import { ownerOf, type TaskStore } from "./task-store.ts";

export class TaskLookup {
  constructor(private readonly p: { store: TaskStore; out: MarketOutbox; clock: Clock; counters: Counters; quota: Pick<SubmitterQuota, "takeRequest"> }) {}

  async onGet(owner: string, taskId: string): Promise<void> {
    const at = this.p.clock.now();
    const limited = this.p.quota.takeRequest(owner);
    if (limited) return this.p.out.taskEvent(owner, taskId, { type: "rejected", id: taskId, at, error: limited });
    const rec = await this.p.store.getTask(taskId);
    // Another submitter's task is answered exactly like a missing one: ids are not an oracle.
    if (!rec || ownerOf(rec) !== owner) {
      this.p.counters.inc("get.not-found");
      return this.p.out.taskEvent(owner, taskId, { type: "rejected", id: taskId, at, error: { code: MarketErrors.TASK_NOT_FOUND, message: `no stored task ${taskId} in ${owner}'s folder (never submitted, or older than the task retention)` } });
    }
    this.p.counters.inc("get.answered");
    if (rec.result) this.p.out.resultAgain(owner, rec.result);
    else this.p.out.taskEvent(owner, taskId, { type: "accepted", id: taskId, at: rec.acceptedAt });
  }
}
