/**
 * How long a finished task stays where. Its result is retained on the broker for
 * `resultRetentionMs` (a submitter that subscribes late still gets it), then cleared from the
 * broker; the store keeps the task for `taskRetentionMs`, and a submitter can ask for its result
 * meanwhile (`tasks/{id}/get`, lookup.ts). After that the task is deleted from the store (its id is
 * free again). Without this, every result ever published stayed in the embedded broker's memory
 * and every task in LevelDB.
 *
 * The store's finish-time index is the work list: nothing is kept in memory per task, and a
 * restart (or an external broker that kept its retained messages while the coordinator was down)
 * picks up where the last sweep stopped (`meta:results-cleared-through`).
 */
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import type { MarketOutbox } from "./outbox.ts";
import type { TaskStore } from "./task-store.ts";

export interface RetentionSettings {
  resultRetentionMs: number;
  taskRetentionMs: number;
}

/** Results republished at start (an embedded broker lost its retained messages with the old process), newest first. */
const REPUBLISHED = 1000;
/** Tasks deleted per sweep at most, so one sweep never holds the store for long. */
const PRUNE_BATCH = 2000;
const CLEARED = "results-cleared-through";

export class Retention implements Lifecycle {
  private timer: Timer | undefined;
  private sweeping: Promise<void> | undefined;
  private clearedThrough = 0;
  private closed = false;

  constructor(private readonly p: { store: TaskStore; out: MarketOutbox; clock: Clock; counters: Counters; logger: Logger; settings: RetentionSettings }) {}

  /** How often it sweeps: often enough that nothing outlives its retention by more than a quarter of it. */
  get sweepMs(): number {
    const shortest = Math.min(this.p.settings.resultRetentionMs, this.p.settings.taskRetentionMs);
    return Math.min(60_000, Math.max(250, Math.floor(shortest / 4)));
  }

  async start(): Promise<void> {
    this.clearedThrough = ((await this.p.store.getMeta(CLEARED)) as number | undefined) ?? 0;
    await this.sweep();
    await this.republish();
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.sweeping?.catch(() => {});
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.p.clock.setTimer(this.sweepMs, () => {
      this.sweep()
        .catch((err) => this.p.logger.error({ err }, "retention sweep failed"))
        .finally(() => this.schedule());
    });
  }

  /** The newest results still within their retention go back on the broker, retained. */
  private async republish(): Promise<void> {
    const now = this.p.clock.now();
    for await (const e of this.p.store.finished(now - this.p.settings.resultRetentionMs, now + 1, { reverse: true, limit: REPUBLISHED })) {
      const rec = await this.p.store.getTask(e.id);
      if (rec?.result) this.p.out.result(e.owner, rec.result);
    }
  }

  /** Clears results past their retention from the broker, then deletes tasks past theirs. One at a time. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const now = this.p.clock.now();
    const clearBefore = now - this.p.settings.resultRetentionMs;
    if (clearBefore > this.clearedThrough) {
      let n = 0;
      for await (const e of this.p.store.finished(this.clearedThrough, clearBefore)) {
        this.p.out.expireResult(e.owner, e.id);
        n++;
      }
      this.clearedThrough = clearBefore;
      await this.p.store.putMeta(CLEARED, clearBefore);
      if (n) this.p.counters.inc("results.expired", n);
    }
    const pruned = await this.p.store.pruneFinished(now - this.p.settings.taskRetentionMs, PRUNE_BATCH);
    if (pruned) this.p.counters.inc("tasks.pruned", pruned);
  }
}
