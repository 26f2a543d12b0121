import { randomBytes } from "node:crypto";
import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import {
  decode, encode, IdSchema, SubmitSchema, topics,
  type Ack, type Announce, type Award, type Bid, type Cancel, type Done, type Feedback, type Progress, type Result, type TaskEvent, type WireError, type Verdict,
} from "../common/protocol.ts";
import { Auction } from "./auction.ts";
import { compileCheck, type CheckFn } from "./checks.ts";
import type { Clock, Timer } from "./clock.ts";
import type { Counters } from "./counters.ts";
import { MarketErrors } from "./errors.ts";
import type { Penalties } from "./penalties.ts";
import type { Registry } from "./registry.ts";
import { pickWinner } from "./scoring.ts";
import { deliveredResult, failedResult, FAULTS, stable } from "./results.ts";
import type { AttemptRecord, TaskRecord, TaskStore } from "./task-store.ts";
import type { TrackRecords } from "./track-record.ts";

/** Where the market's messages go: the coordinator's MQTT client, or a recorder in unit tests. */
export interface Publisher {
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }): void;
}

export interface MarketSettings {
  bidWindowMs: number;
  maxAttempts: number;
  ackWithinMs: number;
  defaultDeadlineMs: number;
  defaultMaxTokens: number;
}

export interface MarketParts {
  settings: MarketSettings;
  clock: Clock;
  rng: () => number;
  store: TaskStore;
  registry: Registry;
  records: TrackRecords;
  penalties: Penalties;
  counters: Counters;
  out: Publisher;
  logger: Logger;
}

interface Current {
  auctionId: string;
  nodeId: string;
  agentId: string;
  phase: "awaiting-ack" | "running";
  timer?: Timer;
}

/** In-memory state of an unfinished task; `rec` is what the store holds. */
interface Run {
  rec: TaskRecord;
  check?: CheckFn | undefined;
  auction?: Auction | undefined;
  auctionTimer?: Timer | undefined;
  current?: Current | undefined;
  deadlineTimer?: Timer | undefined;
  failedAgents: Set<string>;
  /** The latest store write of this task (close() waits for it). */
  writes: Promise<void>;
  finished: boolean;
}

/**
 * The market: submit -> store -> accepted -> announce -> sealed bids -> score -> award -> ack ->
 * progress -> done -> check -> exactly one result, with re-auctions on failure (docs/protocol.md,
 * docs/scoring.md). Every inbound message arrives here already decoded and checked against its
 * topic (inbound.ts), except submits, which are decoded here because a bad submit with a readable
 * id gets a `rejected` event.
 */
export class Market {
  private readonly runs = new Map<string, Run>();
  private readonly byAuction = new Map<string, Run>();
  /**
   * Every task id in the store (this process owns the LevelDB exclusively), so a new id is
   * recognised without a store read on the submit path (~40 bytes per task).
   */
  private readonly knownIds = new Set<string>();
  private closed = false;

  constructor(private readonly p: MarketParts) {}

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  /** Loads records and penalties, republishes recent results, and resumes unfinished tasks. */
  async start(opts: { resumeDelayMs?: number } = {}): Promise<void> {
    for await (const { agentId, skill, rec } of this.p.store.records()) this.p.records.load(agentId, skill, rec);
    for await (const { agentId, state } of this.p.store.penalties()) this.p.penalties.load(agentId, state);
    const open: TaskRecord[] = [];
    const done: TaskRecord[] = [];
    for await (const t of this.p.store.tasks()) {
      this.knownIds.add(t.id);
      (t.state === "open" ? open : done).push(t);
    }
    // Results are retained on the broker; an embedded broker lost them with the old process.
    done.sort((a, b) => (b.result?.timings.finishedAt ?? 0) - (a.result?.timings.finishedAt ?? 0));
    for (const t of done.slice(0, 1000)) if (t.result) this.p.out.publish(topics.taskResult(t.id), encode(t.result), { qos: 1, retain: true });
    for (const rec of open) {
      const last = rec.attempts.at(-1);
      if (last && ["pending", "awarded", "running"].includes(last.outcome)) {
        last.outcome = "restarted";
        last.error = { code: MarketErrors.COORDINATOR_RESTARTED, message: "the coordinator restarted during this attempt" };
      }
      const run = this.newRun(rec);
      this.p.counters.inc("tasks.resumed");
      this.persist(run);
      // Wait for the retained node statuses to arrive before re-auctioning.
      run.auctionTimer = this.p.clock.setTimer(opts.resumeDelayMs ?? 0, () => this.startAttempt(run));
    }
    if (open.length) this.p.logger.info({ tasks: open.length }, "resuming unfinished tasks");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const run of this.runs.values()) this.clearTimers(run);
    await Promise.all([...this.runs.values()].map((r) => r.writes));
  }

  private newRun(rec: TaskRecord): Run {
    const run: Run = { rec, failedAgents: new Set(rec.attempts.flatMap((a) => (a.agentId && FAULTS.has(a.outcome) ? [a.agentId] : []))), writes: Promise.resolve(), finished: false };
    if (rec.submit.check) run.check = compileCheck(rec.submit.check);
    this.runs.set(rec.id, run);
    this.knownIds.add(rec.id);
    run.deadlineTimer = this.p.clock.setTimer(rec.deadlineAt - this.p.clock.now(), () => this.onTaskDeadline(run));
    return run;
  }

  private clearTimers(run: Run): void {
    run.auctionTimer?.cancel();
    run.deadlineTimer?.cancel();
    run.current?.timer?.cancel();
  }

  /**
   * Stores the task's current state. The store group-commits: writes land in order, and several
   * writes of one task before its batch goes out become one (task-store.ts).
   */
  private persist(run: Run): Promise<void> {
    run.writes = this.p.store.putTask(run.rec).catch((err) => this.p.logger.error({ err, taskId: run.rec.id }, "task store write failed"));
    return run.writes;
  }

  /**
   * accepted, rejected and retry change what a submitter should do: QoS 1. announced, awarded and
   * progress are informational: QoS 0 saves two PUBACK round trips each (bench/auction.ts: socket
   * writes are most of the market's CPU time).
   */
  private event(taskId: string, ev: TaskEvent): void {
    const qos = ev.type === "announced" || ev.type === "awarded" || ev.type === "progress" ? 0 : 1;
    this.p.out.publish(topics.taskEvents(taskId), encode(ev), { qos });
  }

  private reject(id: string, error: WireError): void {
    this.p.counters.inc("tasks.rejected");
    this.event(id, { type: "rejected", id, at: this.p.clock.now(), error });
  }

  // ------------------------------------------------------------------------------------------
  // Submit

  async onSubmit(payload: Buffer): Promise<void> {
    if (this.closed) return;
    const d = decode(SubmitSchema, payload);
    if (!d.ok) {
      // Someone to tell only when the payload names a valid id; otherwise a counted drop.
      let id: unknown;
      if (d.code !== "PAYLOAD_TOO_LARGE") {
        try {
          id = (JSON.parse(payload.toString("utf8")) as { id?: unknown } | null)?.id;
        } catch {}
      }
      if (typeof id === "string" && IdSchema.safeParse(id).success) this.reject(id, { code: d.code, message: d.message });
      else this.p.counters.drop(`submit.${d.code}`);
      return;
    }
    const submit = d.value;
    const id = submit.id ?? randomBytes(16).toString("hex");
    let check: CheckFn | undefined;
    try {
      if (submit.check) check = compileCheck(submit.check);
    } catch (err) {
      return this.reject(id, (err as ColonyError).toWire());
    }
    const raw = stable({ ...submit, id });
    let existing = this.runs.get(id)?.rec;
    if (!existing && this.knownIds.has(id)) {
      const stored = await this.p.store.getTask(id);
      // Re-check after the await: an identical submit may have been accepted meanwhile.
      existing = this.runs.get(id)?.rec ?? stored;
    }
    if (existing) {
      const rec = existing;
      if (rec.raw !== raw) return this.reject(id, { code: MarketErrors.DUPLICATE_TASK, message: `task ${id} already exists with a different payload` });
      // Exact re-send (a submitter retrying after a lost connection): idempotent, nothing re-runs.
      this.p.counters.inc("tasks.resent");
      this.event(id, { type: "accepted", id, at: rec.acceptedAt });
      if (rec.result) this.p.out.publish(topics.taskResult(id), encode(rec.result), { qos: 1, retain: true });
      return;
    }
    const now = this.p.clock.now();
    const rec: TaskRecord = { id, submit: { ...submit, id }, raw, acceptedAt: now, deadlineAt: now + (submit.deadlineMs ?? this.p.settings.defaultDeadlineMs), state: "open", attempts: [] };
    const run = this.newRun(rec);
    run.check = check;
    // Stored BEFORE `accepted`: an accepted task survives a SIGKILL of the coordinator. A store
    // failure means the task is not accepted at all.
    try {
      await (run.writes = this.p.store.putTask(rec));
    } catch (err) {
      this.clearTimers(run);
      this.runs.delete(id);
      this.knownIds.delete(id);
      this.p.logger.error({ err, taskId: id }, "task store write failed; submit rejected");
      return this.reject(id, { code: "INTERNAL", message: `the task could not be stored: ${(err as Error).message}` });
    }
    if (this.closed) return;
    this.p.counters.inc("tasks.accepted");
    this.event(id, { type: "accepted", id, at: now });
    this.startAttempt(run);
  }

  // ------------------------------------------------------------------------------------------
  // Auction

  private startAttempt(run: Run): void {
    if (run.finished || this.closed) return;
    const { rec } = run;
    const now = this.p.clock.now();
    const attempt = rec.attempts.length + 1;
    if (now >= rec.deadlineAt) return this.finishError(run, MarketErrors.DEADLINE_EXCEEDED, "the task's deadline passed before any attempt delivered");
    if (attempt > this.p.settings.maxAttempts) {
      return this.finishError(run, MarketErrors.ATTEMPTS_EXHAUSTED, `all ${this.p.settings.maxAttempts} attempts failed: ${rec.attempts.map((a) => `#${a.attempt} ${a.agentId ?? "-"} ${a.outcome}`).join(", ")}`);
    }
    const auctionId = `au-${randomBytes(8).toString("hex")}`;
    const excluded = new Set([...this.p.penalties.excludedNow(), ...run.failedAgents]);
    const expected = this.p.registry.eligibleNodes(rec.submit.skill, excluded);
    const closesAt = Math.min(now + this.p.settings.bidWindowMs, rec.deadlineAt);
    const a: AttemptRecord = { attempt, auctionId, outcome: "pending" };
    rec.attempts.push(a);
    if (expected.length === 0) {
      a.outcome = "no-bidders";
      return this.finishError(run, MarketErrors.NO_BIDDERS, `no online node has an agent for skill ${rec.submit.skill ?? "(any)"} that is not excluded (${excluded.size} excluded)`);
    }
    const auction = new Auction(auctionId, rec.id, attempt, now, closesAt, expected, excluded);
    if (run.auction) this.byAuction.delete(run.auction.auctionId);
    run.auction = auction;
    this.byAuction.set(auctionId, run);
    this.persist(run);
    const announce: Announce = {
      auctionId, taskId: rec.id, attempt, prompt: rec.submit.prompt,
      ...(rec.submit.skill ? { skill: rec.submit.skill } : {}),
      maxTokens: rec.submit.maxTokens ?? this.p.settings.defaultMaxTokens,
      deadlineAt: rec.deadlineAt,
      ...(rec.submit.minAccuracy !== undefined ? { minAccuracy: rec.submit.minAccuracy } : {}),
      closesAt,
      ...(excluded.size ? { excludedAgents: [...excluded].slice(0, 1024) } : {}),
    };
    this.p.counters.inc("auctions.opened");
    this.event(rec.id, { type: "announced", id: rec.id, at: now, attempt, auctionId });
    this.p.out.publish(topics.announce, encode(announce), { qos: 1 });
    run.auctionTimer = this.p.clock.setTimer(closesAt - now, () => this.closeAuction(run));
  }

  onBid(bid: Bid): void {
    const run = this.byAuction.get(bid.auctionId);
    if (!run || !run.auction || run.auction.auctionId !== bid.auctionId) return this.p.counters.drop("bid.unknown-auction");
    const outcome = run.auction.offer(bid);
    if (outcome === "accepted" || outcome === "declined") this.p.counters.inc(`bids.${outcome}`);
    else return this.p.counters.drop(`bid.${outcome}`);
    if (run.auction.complete) this.closeAuction(run);
  }

  private closeAuction(run: Run): void {
    const auction = run.auction;
    if (!auction || !auction.isOpen || run.finished) return;
    run.auctionTimer?.cancel();
    auction.close();
    this.p.counters.inc("auctions.closed");
    const now = this.p.clock.now();
    const skill = run.rec.submit.skill ?? "*";
    const bids = auction.bids.filter((b) => this.p.registry.isOnline(b.nodeId));
    const { winner, scored } = pickWinner(
      bids.map((b) => ({ key: b.nodeId, agentId: b.agentId, ...b.estimate })),
      (agentId) => this.p.records.get(agentId, skill),
      this.p.records.total(skill),
      { budgetMs: run.rec.deadlineAt - now, minAccuracy: run.rec.submit.minAccuracy, weights: run.rec.submit.weights },
      this.p.rng,
    );
    const a = run.rec.attempts.at(-1)!;
    if (!winner) {
      a.outcome = "no-bidders";
      const reasons = scored.map((s) => s.reason).filter(Boolean);
      return this.finishError(run, MarketErrors.NO_BIDDERS, `no eligible bid: ${bids.length} bids (${reasons.length} ineligible: ${[...new Set(reasons)].join(", ") || "-"}), ${auction.declines.length} declines, ${auction.expectedCount} nodes asked`);
    }
    const bid = bids.find((b) => b.nodeId === winner.key)!;
    a.nodeId = bid.nodeId;
    a.agentId = bid.agentId;
    a.bid = bid.estimate;
    a.outcome = "awarded";
    this.persist(run);
    const award: Award = {
      auctionId: auction.auctionId, taskId: run.rec.id, attempt: auction.attempt, agentId: bid.agentId, prompt: run.rec.submit.prompt,
      ...(run.rec.submit.skill ? { skill: run.rec.submit.skill } : {}),
      maxTokens: run.rec.submit.maxTokens ?? this.p.settings.defaultMaxTokens,
      deadlineAt: run.rec.deadlineAt, ackWithinMs: this.p.settings.ackWithinMs,
    };
    run.current = { auctionId: auction.auctionId, nodeId: bid.nodeId, agentId: bid.agentId, phase: "awaiting-ack" };
    run.current.timer = this.p.clock.setTimer(this.p.settings.ackWithinMs, () =>
      this.failAttempt(run, "ack-timeout", { code: MarketErrors.ACK_TIMEOUT, message: `no ack within ${this.p.settings.ackWithinMs} ms` }, true),
    );
    this.p.counters.inc("auctions.awarded");
    this.p.out.publish(topics.nodeAward(bid.nodeId), encode(award), { qos: 1 });
    this.event(run.rec.id, { type: "awarded", id: run.rec.id, at: now, attempt: auction.attempt, auctionId: auction.auctionId, nodeId: bid.nodeId, agentId: bid.agentId, score: winner.score, bid: bid.estimate, bids: bids.length });
  }

  // ------------------------------------------------------------------------------------------
  // After the award

  /** The run whose CURRENT attempt this message belongs to, or undefined. */
  private currentRun(msg: { auctionId: string; taskId: string; nodeId: string }): Run | undefined {
    const run = this.runs.get(msg.taskId);
    if (!run || run.finished || !run.current || run.current.auctionId !== msg.auctionId || run.current.nodeId !== msg.nodeId) return undefined;
    return run;
  }

  onAck(ack: Ack): void {
    const run = this.currentRun(ack);
    if (!run || run.current!.phase !== "awaiting-ack") return this.p.counters.drop("ack.unexpected");
    const cur = run.current!;
    cur.timer?.cancel();
    if (!ack.accepted) return this.failAttempt(run, "refused", { code: MarketErrors.AWARD_REFUSED, message: `award refused: ${ack.reason ?? "no reason given"}` }, false);
    cur.phase = "running";
    const a = run.rec.attempts.at(-1)!;
    // Not written: after a crash "awarded" and "running" resume alike, and one write per task less
    // is measurable in bench/auction.ts.
    a.outcome = "running";
    // An attempt may take about twice its own estimate (plus 1 s of slack) before it is given up.
    const now = this.p.clock.now();
    const dueIn = Math.min(run.rec.deadlineAt - now, 2 * (a.bid?.latencyMs ?? 0) + 1000);
    cur.timer = this.p.clock.setTimer(dueIn, () =>
      this.failAttempt(run, "attempt-timeout", { code: MarketErrors.ATTEMPT_TIMEOUT, message: `no result within ${Math.round(dueIn)} ms of the ack (estimate ${a.bid?.latencyMs} ms)` }, true),
    );
  }

  onProgress(p: Progress): void {
    const run = this.currentRun(p);
    if (!run) return this.p.counters.drop("progress.unexpected");
    this.event(run.rec.id, { type: "progress", id: run.rec.id, at: this.p.clock.now(), attempt: run.rec.attempts.length, tokens: p.tokens, text: p.text });
  }

  onDone(done: Done): void {
    const run = this.currentRun(done);
    if (!run) return void this.lateDone(done);
    const a = run.rec.attempts.at(-1)!;
    run.current!.timer?.cancel();
    if (done.status === "error") {
      return this.failAttempt(run, "error", { code: MarketErrors.AGENT_ERROR, message: `agent error: ${done.error ? `${done.error.code}: ${done.error.message}` : "unspecified"}` }, false);
    }
    const checked = run.check ? run.check(done.output ?? "") : undefined;
    const skill = run.rec.submit.skill ?? "*";
    this.p.records.note(a.agentId!, skill, checked !== false);
    // Only a change is written: most successes follow successes.
    if ((this.p.penalties.get(a.agentId!)?.consecutive ?? 0) > 0) this.savePenalty(a.agentId!, this.p.penalties.succeed(a.agentId!));
    a.outcome = checked === false ? "check-failed" : "ok";
    if (checked !== undefined) this.sendVerdict({ taskId: run.rec.id, agentId: a.agentId!, success: checked }, a.nodeId!);
    const result = deliveredResult(run.rec, a, done, checked, this.p.clock.now());
    void this.finish(run, result);
  }

  /** A done for an attempt that was superseded (or a finished task): recorded, never final. */
  private async lateDone(done: Done): Promise<void> {
    const run = this.runs.get(done.taskId);
    const rec = run?.rec ?? (await this.p.store.getTask(done.taskId).catch(() => undefined));
    const a = rec?.attempts.find((x) => x.auctionId === done.auctionId && x.nodeId === done.nodeId);
    if (!rec || !a) return this.p.counters.drop("done.unknown");
    a.late = { status: done.status, at: this.p.clock.now() };
    this.p.counters.inc("done.late");
    if (run) this.persist(run);
    else await this.p.store.putTask(rec);
  }

  /** Tells the node that ran a task how it was judged, for its hot cache and its own accuracy estimate. */
  private sendVerdict(v: Verdict, nodeId: string): void {
    this.p.out.publish(topics.nodeVerdict(nodeId), encode(v), { qos: 1 });
  }

  private savePenalty(agentId: string, s: { consecutive: number; until: number }): void {
    this.p.store.putPenalty(agentId, s).catch((err) => this.p.logger.error({ err }, "penalty write failed"));
  }

  /** The current attempt failed: penalise the agent, tell the node to stop if asked, re-auction. */
  private failAttempt(run: Run, outcome: string, error: WireError, cancel: boolean): void {
    const cur = run.current;
    if (!cur || run.finished) return;
    cur.timer?.cancel();
    run.current = undefined;
    const a = run.rec.attempts.at(-1)!;
    a.outcome = outcome;
    a.error = error;
    run.failedAgents.add(cur.agentId);
    this.savePenalty(cur.agentId, this.p.penalties.fail(cur.agentId));
    this.p.records.note(cur.agentId, run.rec.submit.skill ?? "*", false);
    this.p.counters.inc(`attempts.failed.${outcome}`);
    if (cancel) this.sendCancel(cur.nodeId, cur.auctionId, run.rec.id, `${error.code}: superseded`);
    this.persist(run);
    this.event(run.rec.id, { type: "retry", id: run.rec.id, at: this.p.clock.now(), attempt: a.attempt, error });
    this.startAttempt(run);
  }

  private sendCancel(nodeId: string, auctionId: string, taskId: string, reason: string): void {
    const c: Cancel = { auctionId, taskId, reason };
    this.p.out.publish(topics.nodeCancel(nodeId), encode(c), { qos: 1 });
  }

  onNodeOffline(nodeId: string): void {
    for (const run of [...this.runs.values()]) {
      if (run.auction?.isOpen) {
        run.auction.nodeGone(nodeId);
        if (run.auction.complete) this.closeAuction(run);
      }
      if (run.current?.nodeId === nodeId) this.failAttempt(run, "offline", { code: MarketErrors.NODE_OFFLINE, message: `node ${nodeId} went offline` }, false);
    }
  }

  private onTaskDeadline(run: Run): void {
    if (run.finished) return;
    const cur = run.current;
    if (cur) {
      this.sendCancel(cur.nodeId, cur.auctionId, run.rec.id, "deadline");
      const a = run.rec.attempts.at(-1)!;
      a.outcome = "deadline";
      a.error = { code: MarketErrors.DEADLINE_EXCEEDED, message: "the task's deadline passed during this attempt" };
      this.savePenalty(cur.agentId, this.p.penalties.fail(cur.agentId));
    }
    this.finishError(run, MarketErrors.DEADLINE_EXCEEDED, "the task's deadline passed before any attempt delivered");
  }

  // ------------------------------------------------------------------------------------------
  // The one final result

  private finishError(run: Run, code: string, message: string): void {
    const now = this.p.clock.now();
    void this.finish(run, failedResult(run.rec, code, message, now));
  }

  private async finish(run: Run, result: Result): Promise<void> {
    if (run.finished) return;
    run.finished = true;
    this.clearTimers(run);
    if (run.auction) this.byAuction.delete(run.auction.auctionId);
    run.rec.state = "done";
    run.rec.result = result;
    // Stored before it is published: a result someone saw is always one `colony task` can show.
    await this.persist(run);
    this.runs.delete(run.rec.id);
    this.p.counters.inc(`tasks.${result.status}`);
    const payload = encode(result);
    this.p.out.publish(topics.taskResult(run.rec.id), payload, { qos: 1, retain: true });
    if (run.rec.submit.replyTo) this.p.out.publish(run.rec.submit.replyTo, payload, { qos: 1 });
  }

  // ------------------------------------------------------------------------------------------
  // Feedback

  async onFeedback(taskId: string, fb: Feedback): Promise<void> {
    const rec = this.runs.get(taskId) ? undefined : await this.p.store.getTask(taskId).catch(() => undefined);
    if (!rec || rec.state !== "done" || !rec.result?.agentId) return this.p.counters.drop("feedback.unknown-task");
    // One feedback per task: a submitter cannot grind an agent's record up or down by repeating it.
    if (rec.feedback) return this.p.counters.drop("feedback.repeated");
    rec.feedback = { success: fb.success, at: this.p.clock.now() };
    this.p.records.note(rec.result.agentId, rec.submit.skill ?? "*", fb.success);
    if (rec.result.nodeId) this.sendVerdict({ taskId, agentId: rec.result.agentId, success: fb.success, ...(fb.score !== undefined ? { score: fb.score } : {}) }, rec.result.nodeId);
    this.p.counters.inc("feedback.applied");
    await this.p.store.putTask(rec);
  }

  // ------------------------------------------------------------------------------------------
  // Status

  snapshot(): { openAuctions: { taskId: string; auctionId: string; attempt: number; bids: number; expected: number; closesAt: number }[]; runningTasks: { taskId: string; nodeId: string; agentId: string; phase: string }[] } {
    const openAuctions = [];
    const runningTasks = [];
    for (const run of this.runs.values()) {
      if (run.auction?.isOpen) openAuctions.push({ taskId: run.rec.id, auctionId: run.auction.auctionId, attempt: run.auction.attempt, bids: run.auction.bids.length, expected: run.auction.expectedCount, closesAt: run.auction.closesAt });
      if (run.current) runningTasks.push({ taskId: run.rec.id, nodeId: run.current.nodeId, agentId: run.current.agentId, phase: run.current.phase });
    }
    return { openAuctions, runningTasks };
  }
}
