/**
 * Everything the market publishes, built in one place from the task's record: task events (with
 * the QoS rule), announces, awards, cancels and the one final result. The market decides when;
 * this file decides what the messages say.
 */
import { channels, type Announce, type Award, type Outbox, type Result, type TaskEvent } from "../../common/protocol.ts";
import type { BidMessage } from "./auction.ts";
import type { Run } from "./runs.ts";

export class MarketOutbox {
  constructor(private readonly out: Outbox) {}

  /**
   * Every event of the life of a task at QoS 1, so they arrive in the documented order: a broker
   * forwards a QoS 0 message at once while a QoS 1 message goes through its persistence first, so a
   * QoS 0 `announced` overtook the QoS 1 `accepted` every time (test/integration/task-events.test.ts).
   * Progress stays QoS 0: there may be many, each superseded by the next, and it only follows
   * `awarded`, after a round trip to the node.
   */
  taskEvent(owner: string, taskId: string, ev: TaskEvent): void {
    const qos = ev.type === "progress" ? 0 : 1;
    this.out.send(channels.taskEvent, [owner, taskId], ev, { qos });
  }

  /**
   * Every time is on the coordinator's clock; `sentAt` lets a node convert them to its own. `to`:
   * a private task's announce goes to each of these nodes on its own topic (no other node sees the
   * prompt); otherwise one message on its skill's topic, which only nodes with the skill read, or
   * for a task without a skill on the market topic every node reads.
   */
  announce(rec: Run["rec"], a: { auctionId: string; attempt: number; closesAt: number; excluded: { nodeId: string; agentId: string }[]; to?: readonly string[] | undefined }, now: number): void {
    const s = rec.submit;
    const msg: Announce = {
      auctionId: a.auctionId, taskId: rec.id, attempt: a.attempt, prompt: s.prompt,
      ...(s.skill ? { skill: s.skill } : rec.niche ? { niche: rec.niche } : {}),
      maxTokens: rec.maxTokens,
      deadlineAt: rec.deadlineAt,
      ...(s.minAccuracy !== undefined ? { minAccuracy: s.minAccuracy } : {}),
      closesAt: a.closesAt,
      sentAt: now,
      ...(a.excluded.length ? { excludedAgents: a.excluded.slice(0, 1024) } : {}),
    };
    if (a.to) for (const nodeId of a.to) this.out.send(channels.nodeAnnounce, [nodeId], msg);
    else if (s.skill) this.out.send(channels.skillAnnounce, [s.skill], msg);
    else this.out.send(channels.announce, [], msg);
  }

  /** The award to the winning node, and the `awarded` event to the task's submitter. */
  awarded(rec: Run["rec"], owner: string, a: { auctionId: string; attempt: number; nodeId: string; agentId: string; ackWithinMs: number; bid: BidMessage["estimate"]; score: number; bids: number }, now: number): void {
    const msg: Award = {
      auctionId: a.auctionId, taskId: rec.id, attempt: a.attempt, agentId: a.agentId, prompt: rec.submit.prompt,
      ...(rec.submit.skill ? { skill: rec.submit.skill } : {}),
      maxTokens: rec.maxTokens,
      deadlineAt: rec.deadlineAt, sentAt: now, ackWithinMs: a.ackWithinMs,
    };
    this.out.send(channels.nodeAward, [a.nodeId], msg);
    this.taskEvent(owner, rec.id, { type: "awarded", id: rec.id, at: now, attempt: a.attempt, auctionId: a.auctionId, nodeId: a.nodeId, agentId: a.agentId, score: a.score, bid: a.bid, bids: a.bids });
  }

  cancel(nodeId: string, auctionId: string, taskId: string, reason: string): void {
    this.out.send(channels.nodeCancel, [nodeId], { auctionId, taskId, reason });
  }

  /** Retained on the task's result topic in its submitter's folder, and a copy to the submitter's `replyTo`. */
  result(owner: string, result: Result, replyTo?: string): void {
    this.out.send(channels.taskResult, [owner, result.id], result, { alsoTo: replyTo });
  }

  /** A stored result sent again to the submitter that asked for it (`get`), not retained: it expired from the broker. */
  resultAgain(owner: string, result: Result): void {
    this.out.send(channels.taskResult, [owner, result.id], result, { retain: false });
  }

  /** The retained result leaves the broker (retention.ts); the store keeps it. */
  expireResult(owner: string, taskId: string): void {
    this.out.clear(channels.taskResult, [owner, taskId]);
  }
}
