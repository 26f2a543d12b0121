import { randomBytes } from "node:crypto";
import { type Ack, type Bid, type Done, type Progress, type Result, type WireError } from "../../common/protocol.ts";
import { recordKey } from "./agent-ref.ts";
import { Auction } from "./auction.ts";
import { MarketErrors } from "./errors.ts";
import type { DeliveredAttempt } from "./events.ts";
import { duplicateError, takeSubmit } from "./intake.ts";
import { MarketOutbox } from "./outbox.ts";
import { markNow, phasesOf } from "./phases.ts";
import type { MarketParts } from "./parts.ts";
import { recordLateDone } from "./late-done.ts";
import { loadUnfinishedTasks } from "./recovery.ts";
import { deliveredEvent, deliveredResult, failedResult, firstVerdict } from "./results.ts";
import { RunTable, type Current, type MarketSnapshot, type Run } from "./runs.ts";
import { ownerOf, skillKey, type AttemptRecord, type TaskRecord } from "./task-store.ts";
import { decideAuction } from "./winner.ts";

/** `false` for a task that opted out of learning (its events say so; the cold cache keeps nothing of it). */
const noLearning = (rec: TaskRecord): false | undefined => (rec.submit.learn === false ? false : undefined);
/** `true` for a private task: what is learned from it stays on the coordinator's host (mind/mind.ts, trainer nodes). */
const privacy = (rec: TaskRecord): true | undefined => (rec.submit.private === true ? true : undefined);

/**
 * The market: submit -> store -> accepted -> announce -> sealed bids -> score -> award -> ack ->
 * progress -> done -> check -> exactly one result, with re-auctions on failure (docs/protocol.md,
 * docs/scoring.md). The attempt state machine lives in this one file; what the market decides goes
 * out as typed events (events.ts) to the parts that learn from it. Every inbound message arrives
 * already decoded and checked against its topic (inbound.ts), except submits (intake.ts), because a
 * bad submit with a readable id gets a `rejected` event.
 */
export class Market {
  private readonly runs = new RunTable();
  /** Tasks whose next auction waits for a gate (hold); undefined while none is held. */
  private waiting: Run[] | undefined;
  /** The gate auctions wait for now (hold). */
  private held: Promise<void> | undefined;
  private readonly out: MarketOutbox;
  private closed = false;

  constructor(private readonly p: MarketParts) {
    this.out = new MarketOutbox(p.out);
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Republishes recent results and resumes unfinished tasks (recovery.ts). No auction opens before
   * `gate` resolves (roster.ts: the nodes known before a restart are back); accepted tasks wait.
   */
  async start(opts: { gate?: Promise<void> } = {}): Promise<void> {
    if (opts.gate) this.hold(opts.gate);
    const unfinished = await loadUnfinishedTasks(this.p.store, this.p.settings.defaultMaxTokens);
    for (const rec of unfinished) {
      const run = this.newRun(rec);
      this.p.counters.inc("tasks.resumed");
      this.persist(run);
      this.startAttempt(run);
    }
    if (unfinished.length) this.p.logger.info({ tasks: unfinished.length }, "resuming unfinished tasks");
  }

  /**
   * No auction opens until `gate` resolves (and every earlier hold's); tasks that would start one
   * wait. After a restart (start) and after the coordinator's link reconnects, when the broker may
   * have restarted and nodes are still re-subscribing (coordinator.ts): an auction then would ask
   * nodes that cannot hear it yet and end NO_BIDDERS (test/chaos/reconnect-storm.test.ts).
   */
  hold(gate: Promise<void>): void {
    const previous = this.held ?? Promise.resolve();
    const all = (this.held = Promise.all([previous, gate]).then(() => undefined));
    this.waiting ??= [];
    void all.then(() => {
      if (this.held !== all) return; // a later hold took over
      this.held = undefined;
      const runs = this.waiting ?? [];
      this.waiting = undefined;
      for (const run of runs) this.startAttempt(run);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const run of this.runs.all()) this.clearTimers(run);
    await Promise.all(this.runs.all().map((r) => r.writes));
  }

  /** Whether a task is still being worked on (feedback waits for its result). */
  isRunning(taskId: string): boolean {
    return this.runs.get(taskId) !== undefined;
  }

  private newRun(rec: Run["rec"]): Run {
    const run = this.runs.add(rec);
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

  /** Writes a finished task, retrying with backoff until it lands; false when the market closed first (a restart re-runs the task). */
  private async storeResult(run: Run): Promise<boolean> {
    for (let delay = 100; ; delay = Math.min(2 * delay, 5000)) {
      const write = this.p.store.putTask(run.rec);
      run.writes = write.catch(() => {});
      try {
        await write;
        return true;
      } catch (err) {
        this.p.logger.error({ err, taskId: run.rec.id, retryInMs: delay }, "result store write failed; the result waits for it");
        if (this.closed) return false;
        await new Promise<void>((r) => this.p.clock.setTimer(delay, r));
        if (this.closed) return false;
      }
    }
  }

  private reject(owner: string, id: string, error: WireError): void {
    this.p.counters.inc("tasks.rejected");
    this.out.taskEvent(owner, id, { type: "rejected", id, at: this.p.clock.now(), error });
  }

  // ------------------------------------------------------------------------------------------
  // Submit

  /** A submit published in the folder of `owner` (the submitter's MQTT username). */
  async onSubmit(payload: Buffer, owner: string): Promise<void> {
    if (this.closed) return;
    const received = performance.now();
    const t = takeSubmit(payload, owner, this.p.settings);
    if (t.kind === "drop") return this.p.counters.drop(t.reason);
    if (t.kind === "reject") return this.reject(owner, t.id, t.error);
    const { id } = t;
    const found = await this.runs.find(id, this.p.store);
    // Looked up again in the same turn as newRun below: an identical submit may have been accepted
    // while this one awaited (a new id's read resolves at once: id-filter.ts).
    const known = this.runs.get(id)?.rec ?? found;
    if (known) {
      const refused = duplicateError(known, owner, t.digest);
      if (refused) return this.reject(owner, id, refused);
      this.p.counters.inc("tasks.resent");
      this.out.taskEvent(owner, id, { type: "accepted", id, at: known.acceptedAt });
      if (known.result) this.out.result(owner, known.result);
      return;
    }
    const limited = this.p.quota.admitTask(owner, this.runs.openOf(owner));
    if (limited) return this.reject(owner, id, limited);
    const now = this.p.clock.now();
    // A task without a skill is routed by the niche of its prompt (docs/scoring.md), kept with the task.
    const niche = t.submit.skill === undefined ? this.p.niches?.classify(t.submit.prompt) : undefined;
    const run = this.newRun({ id, owner, submit: t.submit, ...(niche ? { niche } : {}), digest: t.digest, acceptedAt: now, deadlineAt: now + t.deadlineMs, maxTokens: t.maxTokens, state: "open", attempts: [] });
    const { rec } = run;
    run.marks.received = received;
    // Stored BEFORE `accepted`: an accepted task survives a SIGKILL of the coordinator. A store
    // failure means the task is not accepted at all. The first auction does not wait for the write
    // (it overlaps the bidding round trip, issue 14): only what follows the bids does: the award,
    // the `announced` event and any result wait for `accepting` (afterAccepted).
    let settle!: (ok: boolean) => void;
    run.accepting = new Promise<boolean>((r) => (settle = r));
    const stored = (run.writes = this.p.store.putTask(rec));
    this.startAttempt(run);
    try {
      await stored;
    } catch (err) {
      run.finished = true;
      this.clearTimers(run);
      this.runs.remove(run);
      settle(false);
      this.p.logger.error({ err, taskId: id }, "task store write failed; submit rejected");
      return this.reject(owner, id, { code: "INTERNAL", message: `the task could not be stored: ${(err as Error).message}` });
    }
    run.accepting = undefined;
    if (this.closed) return settle(false);
    markNow(run.marks, "accepted");
    this.p.counters.inc("tasks.accepted");
    this.out.taskEvent(owner, id, { type: "accepted", id, at: now });
    this.p.events.emit("taskAccepted", { taskId: id, skill: skillKey(rec), submit: rec.submit, maxTokens: rec.maxTokens, deadlineAt: rec.deadlineAt, at: now });
    settle(true);
  }

  /**
   * While the task's first write is in flight, queues `fn` for when it is stored and `accepted` is
   * out (dropped if the task was not accepted) and returns true; otherwise returns false.
   */
  private afterAccepted(run: Run, fn: () => void): boolean {
    if (!run.accepting) return false;
    void run.accepting.then((ok) => ok && fn());
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Auction

  private startAttempt(run: Run): void {
    if (run.finished || this.closed) return;
    if (this.waiting) return void this.waiting.push(run);
    const { rec } = run;
    const now = this.p.clock.now();
    const attempt = rec.attempts.length + 1;
    if (now >= rec.deadlineAt) return this.finishError(run, MarketErrors.DEADLINE_EXCEEDED, "the task's deadline passed before any attempt delivered");
    if (attempt > this.p.settings.maxAttempts) {
      return this.finishError(run, MarketErrors.ATTEMPTS_EXHAUSTED, `all ${this.p.settings.maxAttempts} attempts failed: ${rec.attempts.map((a) => `#${a.attempt} ${a.agentId ?? "-"} ${a.outcome}`).join(", ")}`);
    }
    const auctionId = `au-${randomBytes(8).toString("hex")}`;
    // Record keys (agent-ref.ts): agents sitting out a penalty, and those that failed this task.
    const excluded = new Set([...this.p.reputation.excludedNow(), ...run.failedAgents]);
    const expected = this.p.registry.eligibleNodes(rec.submit.skill, excluded);
    const closesAt = Math.min(now + this.p.settings.bidWindowMs, rec.deadlineAt);
    const a: AttemptRecord = { attempt, auctionId, outcome: "pending" };
    rec.attempts.push(a);
    if (expected.length === 0) {
      a.outcome = "no-bidders";
      return this.finishError(run, MarketErrors.NO_BIDDERS, `no online node has an agent for skill ${rec.submit.skill ?? "(any)"} that is not excluded (${excluded.size} excluded)`);
    }
    this.runs.setAuction(run, new Auction(auctionId, rec.id, attempt, now, closesAt, expected, this.p.registry.screen(excluded)));
    // (The acceptance write in flight stores the live record, this attempt included.)
    if (!run.accepting) this.persist(run);
    this.p.counters.inc("auctions.opened");
    const announced = () => this.out.taskEvent(ownerOf(rec), rec.id, { type: "announced", id: rec.id, at: now, attempt, auctionId });
    if (!this.afterAccepted(run, announced)) announced();
    const to = (rec.submit.private ?? this.p.settings.privateAnnounces) ? expected : undefined;
    // The delivering attempt's marks are its own: an earlier attempt's leave with it.
    run.marks = { received: run.marks.received, accepted: run.marks.accepted };
    this.out.announce(rec, { auctionId, attempt, closesAt, excluded: this.p.registry.agentsWithKeys(excluded), to }, now);
    markNow(run.marks, "announced");
    run.auctionTimer = this.p.clock.setTimer(closesAt - now, () => this.windowEnded(run, closesAt));
  }

  /**
   * The bid window's timer. Node runs due timers before it reads sockets, and a bid travels through
   * the broker and the coordinator's client over several loop turns: after an event-loop stall (a
   * GC pause, a loaded Pi) the timer fired late and closed the auction before bids that had arrived
   * in time were read (NO_BIDDERS with the bid waiting: test/integration/bid-window-stall.test.ts).
   * A timer that fires late gives the loop as long again (at most 250 ms) to read them; the auction
   * still closes at once when every expected node has answered.
   */
  private windowEnded(run: Run, closesAt: number): void {
    const late = this.p.clock.now() - closesAt;
    if (late <= 5) return this.closeAuction(run);
    run.auctionTimer = this.p.clock.setTimer(Math.min(250, late), () => this.closeAuction(run));
  }

  onBid(bid: Bid): void {
    const run = this.runs.byAuctionId(bid.auctionId);
    if (!run || !run.auction || run.auction.auctionId !== bid.auctionId) return this.p.counters.drop("bid.unknown-auction");
    const outcome = run.auction.offer(bid);
    if (outcome === "accepted" || outcome === "declined") this.p.counters.inc(`bids.${outcome}`);
    else return this.p.counters.drop(`bid.${outcome}`);
    if (run.auction.complete) this.closeAuction(run);
  }

  private closeAuction(run: Run): void {
    const auction = run.auction;
    if (!auction || !auction.isOpen || run.finished) return;
    // The bids are in before the task is stored: the award waits for the write.
    if (this.afterAccepted(run, () => this.closeAuction(run))) return;
    run.auctionTimer?.cancel();
    auction.close();
    markNow(run.marks, "closed");
    this.p.counters.inc("auctions.closed");
    const now = this.p.clock.now();
    const skill = skillKey(run.rec);
    const decision = decideAuction(auction, run.rec, skill, now, this.p);
    const a = run.rec.attempts.at(-1)!;
    if ("error" in decision) {
      a.outcome = "no-bidders";
      return this.finishError(run, decision.error.code, decision.error.message);
    }
    const { bid, score } = decision.winner;
    a.nodeId = bid.nodeId;
    a.agentId = bid.agentId;
    // The genome the agent had when it won: its record and penalty key (agent-ref.ts).
    a.genome = this.p.registry.refOrName(bid.nodeId, bid.agentId).genome;
    a.bid = bid.estimate;
    a.outcome = "awarded";
    this.persist(run);
    run.current = { auctionId: auction.auctionId, nodeId: bid.nodeId, agentId: bid.agentId, genome: a.genome, phase: "awaiting-ack" };
    run.current.timer = this.p.clock.setTimer(this.p.settings.ackWithinMs, () =>
      this.failAttempt(run, "ack-timeout", { code: MarketErrors.ACK_TIMEOUT, message: `no ack within ${this.p.settings.ackWithinMs} ms` }, true),
    );
    this.p.counters.inc("auctions.awarded");
    const awarded = { auctionId: auction.auctionId, attempt: auction.attempt, nodeId: bid.nodeId, agentId: bid.agentId, bid: bid.estimate, score, bids: decision.bids };
    this.out.awarded(run.rec, ownerOf(run.rec), { ...awarded, ackWithinMs: this.p.settings.ackWithinMs }, now);
    markNow(run.marks, "awarded");
    this.p.events.emit("attemptAwarded", { taskId: run.rec.id, skill, genome: a.genome, ...awarded, ranked: decision.ranked, at: now });
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
    markNow(run.marks, "acked");
    const a = run.rec.attempts.at(-1)!;
    // Not written: after a crash "awarded" and "running" resume alike, and one write per task less
    // is measurable in bench/auction.ts.
    a.outcome = "running";
    // An attempt may take about twice its own estimate (plus 1 s of slack) before it is given up.
    const now = this.p.clock.now();
    const dueIn = Math.min(run.rec.deadlineAt - now, 2 * (a.bid?.latencyMs ?? 0) + 1000);
    cur.timer = this.p.clock.setTimer(dueIn, () => this.attemptOverdue(run, dueIn, dueIn));
  }

  /**
   * An attempt past its due time is given up and re-auctioned, unless no other online node has an
   * agent that could take the task (a second agent on the same node would wait for the same slot): a
   * re-auction could then only end NO_BIDDERS, so the attempt keeps running (checked again every
   * `periodMs`) until it delivers, its node goes offline, such a node comes online or the task's
   * deadline ends it. Otherwise a one-machine fleet whose only agent for a skill is slowed by a busy
   * machine fails a task that agent is still working on (test/integration/fleet-seed.test.ts did, on
   * a loaded CI runner: attempt-timeout, then no-bidders).
   */
  private attemptOverdue(run: Run, waitedMs: number, periodMs: number): void {
    const cur = run.current;
    if (!cur || cur.phase !== "running" || run.finished) return;
    const a = run.rec.attempts.at(-1)!;
    const now = this.p.clock.now();
    const excluded = new Set([...this.p.reputation.excludedNow(), ...run.failedAgents]);
    const others = this.p.registry.eligibleNodes(run.rec.submit.skill, excluded).filter((n) => n !== cur.nodeId);
    if (others.length === 0 && now < run.rec.deadlineAt) {
      if (waitedMs === periodMs) {
        this.p.counters.inc("attempts.overdue.kept");
        this.p.logger.warn({ taskId: run.rec.id, nodeId: cur.nodeId, agentId: cur.agentId, waitedMs: Math.round(waitedMs), estimateMs: a.bid?.latencyMs }, "attempt overdue, but no other agent could take the task: it keeps running");
      }
      const next = Math.min(run.rec.deadlineAt - now, periodMs);
      cur.timer = this.p.clock.setTimer(next, () => this.attemptOverdue(run, waitedMs + next, periodMs));
      return;
    }
    this.failAttempt(run, "attempt-timeout", { code: MarketErrors.ATTEMPT_TIMEOUT, message: `no result within ${Math.round(waitedMs)} ms of the ack (estimate ${a.bid?.latencyMs} ms)` }, true);
  }

  onProgress(p: Progress): void {
    const run = this.currentRun(p);
    if (!run) return this.p.counters.drop("progress.unexpected");
    this.out.taskEvent(ownerOf(run.rec), run.rec.id, { type: "progress", id: run.rec.id, at: this.p.clock.now(), attempt: run.rec.attempts.length, tokens: p.tokens, text: p.text });
  }

  async onDone(done: Done): Promise<void> {
    const run = this.currentRun(done);
    // A done for an attempt that was superseded (or a finished task): recorded, never final.
    if (!run) return void recordLateDone(done, this.runs.get(done.taskId), { ...this.p, persist: (r) => void this.persist(r) });
    const cur = run.current!;
    if (cur.phase === "checking") return this.p.counters.drop("done.repeated");
    const a = run.rec.attempts.at(-1)!;
    cur.timer?.cancel();
    if (done.status === "error") {
      return this.failAttempt(run, "error", { code: MarketErrors.AGENT_ERROR, message: `agent error: ${done.error ? `${done.error.code}: ${done.error.message}` : "unspecified"}` }, false);
    }
    // Delivered: from here on the node's fate no longer matters, only the check's verdict.
    cur.phase = "checking";
    markNow(run.marks, "done");
    const check = run.rec.submit.check;
    const outcome = check ? await this.p.checks.run(check, done.output ?? "") : undefined;
    if (run.finished || this.closed) return;
    markNow(run.marks, "checked");
    // A check that ran out of time judged nothing: the agent keeps the provisional verdict of delivery.
    const checked = outcome === "timeout" ? undefined : outcome;
    a.outcome = checked === false ? "check-failed" : "ok";
    const verdict = (a.verdict = firstVerdict(checked));
    void this.finish(run, deliveredResult(run.rec, a, done, outcome, this.p.clock.now()), deliveredEvent(a, verdict, done), done);
  }

  /** The current attempt failed: tell the learners (penalty, record), stop the node if asked, re-auction. */
  private failAttempt(run: Run, outcome: string, error: WireError, cancel: boolean): void {
    const cur = run.current;
    if (!cur || run.finished) return;
    cur.timer?.cancel();
    run.current = undefined;
    const a = run.rec.attempts.at(-1)!;
    a.outcome = outcome;
    a.error = error;
    run.failedAgents.add(recordKey(cur));
    this.p.counters.inc(`attempts.failed.${outcome}`);
    if (cancel) this.out.cancel(cur.nodeId, cur.auctionId, run.rec.id, `${error.code}: superseded`);
    this.persist(run);
    // Before the re-auction, so the new auction already excludes the agent.
    this.emitFailed(run, cur, a);
    this.out.taskEvent(ownerOf(run.rec), run.rec.id, { type: "retry", id: run.rec.id, at: this.p.clock.now(), attempt: a.attempt, error });
    this.startAttempt(run);
  }

  private emitFailed(run: Run, cur: Current, a: AttemptRecord): void {
    this.p.events.emit("attemptFailed", { taskId: run.rec.id, skill: skillKey(run.rec), attempt: a.attempt, nodeId: cur.nodeId, agentId: cur.agentId, genome: cur.genome, outcome: a.outcome, error: a.error!, learn: noLearning(run.rec), private: privacy(run.rec), at: this.p.clock.now() });
  }

  onNodeOffline(nodeId: string): void {
    for (const run of this.runs.all()) {
      if (run.auction?.isOpen) {
        run.auction.nodeGone(nodeId);
        if (run.auction.complete) this.closeAuction(run);
      }
      if (run.current?.nodeId === nodeId && run.current.phase !== "checking") this.failAttempt(run, "offline", { code: MarketErrors.NODE_OFFLINE, message: `node ${nodeId} went offline` }, false);
    }
  }

  private onTaskDeadline(run: Run): void {
    // An output that arrived in time is judged even if its check ends after the deadline.
    if (run.finished || run.current?.phase === "checking") return;
    const cur = run.current;
    if (cur) {
      this.out.cancel(cur.nodeId, cur.auctionId, run.rec.id, "deadline");
      const a = run.rec.attempts.at(-1)!;
      a.outcome = "deadline";
      a.error = { code: MarketErrors.DEADLINE_EXCEEDED, message: "the task's deadline passed during this attempt" };
      this.emitFailed(run, cur, a);
    }
    this.finishError(run, MarketErrors.DEADLINE_EXCEEDED, "the task's deadline passed before any attempt delivered");
  }

  // ------------------------------------------------------------------------------------------
  // The one final result

  private finishError(run: Run, code: string, message: string): void {
    void this.finish(run, failedResult(run.rec, code, message, this.p.clock.now()));
  }

  /**
   * `taskFinished` goes out as soon as the result is decided, so the next auction already scores
   * with it; the result is stored before it is published, so a result someone saw is always one
   * `colony task` can show.
   */
  private async finish(run: Run, decided: Result, delivered?: DeliveredAttempt, done?: Done): Promise<void> {
    if (run.finished) return;
    // (E.g. NO_BIDDERS decided while the task is being stored: its result follows its `accepted`.)
    if (this.afterAccepted(run, () => void this.finish(run, decided, delivered, done))) return;
    run.finished = true;
    this.clearTimers(run);
    run.rec.state = "done";
    const phases = phasesOf(run.marks, done);
    const result: Result = { ...decided, timings: { ...decided.timings, phases } };
    run.rec.result = result;
    this.p.events.emit("taskFinished", {
      taskId: run.rec.id, submitter: ownerOf(run.rec), skill: skillKey(run.rec), prompt: run.rec.submit.prompt, status: result.status, error: result.error,
      attempts: run.rec.attempts.length, delivered, totalMs: result.timings.totalMs, learn: noLearning(run.rec), private: privacy(run.rec), at: result.timings.finishedAt,
    });
    // Published only once stored: a result the store refused (disk full) was published anyway, then
    // run again after a restart and published a second time (test/chaos/disk-full.test.ts).
    if (!(await this.storeResult(run))) return;
    this.runs.remove(run);
    this.p.counters.inc(`tasks.${result.status}`);
    this.out.result(ownerOf(run.rec), result, run.rec.submit.replyTo);
  }

  // ------------------------------------------------------------------------------------------
  // Status

  snapshot(): MarketSnapshot {
    return this.runs.snapshot();
  }
}
