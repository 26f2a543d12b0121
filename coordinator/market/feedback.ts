/**
 * A submitter's feedback on a finished task. It REPLACES the verdict of the attempt that delivered
 * (one observation per attempt, docs/scoring.md) and goes out as a `feedback` market event, which
 * the reputation and the node that ran the task learn from. Once per task: a submitter cannot grind
 * an agent's record up or down by repeating it. A task still running has nothing to judge yet, and
 * only the task's submitter may judge it: feedback published in another submitter's folder is
 * dropped (`feedback.not-owner`).
 */
import type { Clock } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { ANONYMOUS, type Feedback } from "../../common/protocol.ts";
import type { MarketEventBus } from "./events.ts";
import { deliveredAttempt } from "./results.ts";
import { skillKey, type TaskStore } from "./task-store.ts";

export class FeedbackDesk {
  constructor(
    private readonly store: TaskStore,
    private readonly events: MarketEventBus,
    private readonly clock: Clock,
    private readonly counters: Counters,
    private readonly isRunning: (taskId: string) => boolean,
  ) {}

  async onFeedback(from: string, taskId: string, fb: Feedback): Promise<void> {
    const rec = this.isRunning(taskId) ? undefined : await this.store.getTask(taskId).catch(() => undefined);
    const delivered = rec?.state === "done" ? deliveredAttempt(rec) : undefined;
    if (!rec || !delivered) return this.counters.drop("feedback.unknown-task");
    if ((rec.owner ?? ANONYMOUS) !== from) return this.counters.drop("feedback.not-owner");
    if (rec.feedback) return this.counters.drop("feedback.repeated");
    const now = this.clock.now();
    const { attempt, verdict: previous } = delivered;
    rec.feedback = { success: fb.success, at: now };
    attempt.verdict = { success: fb.success, source: "feedback" };
    this.events.emit("feedback", {
      taskId, submitter: from, skill: skillKey(rec), nodeId: attempt.nodeId!, agentId: attempt.agentId!, genome: attempt.genome, verdict: attempt.verdict, previous, score: fb.score, at: now,
    });
    this.counters.inc("feedback.applied");
    await this.store.putTask(rec);
  }
}
