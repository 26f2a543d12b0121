/**
 * What the market has learned about each agent: its track record per skill and its penalty. The
 * one owner of both, fed only by market events (events.ts), so the market never writes them and a
 * node never keeps a record of its own (it gets this one in verdicts). Both are kept per node and
 * genome (agent-ref.ts recordKey): renaming an agent sheds nothing, and no node can borrow another
 * node's record or shift its failures onto it.
 *
 * - attemptFailed: one failure, and the agent sits out a doubling penalty;
 * - taskFinished with a delivered output: one observation with the attempt's verdict (the check's,
 *   or a provisional success for plain delivery), and a delivered result heals the penalty;
 * - feedback: the submitter's verdict replaces that observation (the count does not grow).
 *
 * A verdict comes from a submitter (its check, its choice of no check, its feedback): those of a
 * trusted submitter count without limit, those of any other count in that submitter's window of its
 * latest `verdictWindow` verdicts per agent and skill, each worth `untrustedWeight` of an observation
 * (track-record.ts), so one hostile submitter cannot sink an agent (or lift one) by more than
 * 20 x 0.25 = 5 observations by default.
 *
 * Records are written in batches at most every `flushEveryMs` (a crash loses at most that much
 * statistics, never a task); penalties are written when they change.
 */
import type { Clock, Timer } from "../../common/clock.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { recordKey, type AgentRef } from "./agent-ref.ts";
import type { AttemptFailed, FeedbackApplied, MarketEventBus, TaskFinished } from "./events.ts";
import { Penalties, type PenaltyState } from "./penalties.ts";
import type { Record } from "./scoring.ts";
import type { TaskStore } from "./task-store.ts";
import { TrackRecords, type RecordChange, type VerdictFrom } from "./track-record.ts";

export interface ReputationOptions {
  store: TaskStore;
  clock: Clock;
  events: MarketEventBus;
  logger: Logger;
  penaltyBaseMs: number;
  penaltyMaxMs: number;
  /** Submitters (MQTT usernames) whose verdicts count without limit. Default none. */
  trustedSubmitters?: readonly string[];
  /** How many of its latest verdicts per agent and skill an untrusted submitter's count. Default 20. */
  verdictWindow?: number;
  /** What one such verdict is worth, in observations. Default 0.25. */
  untrustedWeight?: number;
  /** Default 100 ms. */
  flushEveryMs?: number;
}

export class Reputation implements Lifecycle {
  readonly records: TrackRecords;
  readonly penalties: Penalties;
  private readonly dirty = new Map<string, RecordChange>();
  private readonly trusted: ReadonlySet<string>;
  private flushTimer: Timer | undefined;
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly o: ReputationOptions) {
    this.trusted = new Set(o.trustedSubmitters ?? []);
    this.records = new TrackRecords((c) => {
      this.dirty.set(c.kind === "base" ? `b|${c.key}|${c.skill}` : `w|${c.key}|${c.skill}|${c.submitter}`, c);
      this.flushTimer ??= o.clock.setTimer(o.flushEveryMs ?? 100, () => void this.flush());
    }, o.verdictWindow ?? 20, o.untrustedWeight ?? 0.25);
    this.penalties = new Penalties(o.clock, o.penaltyBaseMs, o.penaltyMaxMs);
  }

  async start(): Promise<void> {
    for await (const { agentId, skill, rec } of this.o.store.records()) this.records.load(agentId, skill, rec);
    for await (const { key, skill, submitter, window } of this.o.store.windows()) this.records.loadWindow(key, skill, submitter, window);
    for await (const { agentId, state } of this.o.store.penalties()) this.penalties.load(agentId, state);
    const ev = this.o.events;
    this.unsubscribe = [ev.on("attemptFailed", (e) => this.onFailed(e)), ev.on("taskFinished", (e) => this.onFinished(e)), ev.on("feedback", (e) => this.onFeedback(e))];
  }

  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.flushTimer?.cancel();
    await this.flush();
  }

  // What the market reads to score bids and exclude agents.
  record(agent: AgentRef, skill: string): Record {
    return this.records.get(recordKey(agent), skill);
  }
  totalTrials(skill: string): number {
    return this.records.total(skill);
  }
  /** Record keys of the agents sitting out a penalty now. */
  excludedNow(): string[] {
    return this.penalties.excludedNow();
  }
  penaltyOf(agent: AgentRef): PenaltyState | undefined {
    return this.penalties.get(recordKey(agent));
  }

  private onFailed(e: AttemptFailed): void {
    const key = recordKey(e);
    this.records.note(key, e.skill, false);
    this.savePenalty(key, this.penalties.fail(key));
  }

  private onFinished(e: TaskFinished): void {
    const d = e.delivered;
    if (!d) return;
    const key = recordKey(d);
    this.records.note(key, e.skill, d.verdict.success, this.from(e));
    // Only a change is written: most deliveries follow deliveries.
    if ((this.penalties.get(key)?.consecutive ?? 0) > 0) this.savePenalty(key, this.penalties.succeed(key));
  }

  private onFeedback(e: FeedbackApplied): void {
    this.records.correct(recordKey(e), e.skill, e.previous.success, e.verdict.success, this.from(e));
  }

  /** Where a submitter's verdict counts: undefined (the base, without limit) for a trusted one. */
  private from(e: { submitter: string; taskId: string }): VerdictFrom | undefined {
    return this.trusted.has(e.submitter) ? undefined : { submitter: e.submitter, taskId: e.taskId };
  }

  private savePenalty(agentId: string, s: PenaltyState): void {
    this.o.store.putPenalty(agentId, s).catch((err) => this.o.logger.error({ err }, "penalty write failed"));
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    const changes = [...this.dirty.values()];
    this.dirty.clear();
    const base = changes.flatMap((c) => (c.kind === "base" ? [{ agentId: c.key, skill: c.skill, rec: c.rec }] : []));
    const windows = changes.flatMap((c) => (c.kind === "window" ? [c] : []));
    await Promise.all([this.o.store.putRecords(base), this.o.store.putWindows(windows)]).catch((err) => this.o.logger.error({ err }, "track record write failed"));
  }
}
