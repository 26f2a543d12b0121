/**
 * Answers every announce with one bid for the node's best agent, or one decline (bidder.ts decides).
 * Synchronous from decode to publish: nothing on this path awaits I/O, so a bid leaves within a
 * millisecond even while llama.cpp generates (on its own threads).
 *
 * Clocks: an announce's times are on the coordinator's clock; they are moved onto the node's with
 * the offset the link learned (common/clock.ts SenderClock), so a node whose clock is off by
 * minutes (a Pi before NTP) still bids. An announce whose window closed before it arrived is
 * counted and logged (`dropped.announce.late`), never silently ignored.
 */
import type { Clock, SenderClock } from "../common/clock.ts";
import type { Counters } from "../common/counters.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import { channels, type Announce, type Outbox } from "../common/protocol.ts";
import { decideBid, type BidderNode } from "./bidder.ts";

/** A clock this far from the coordinator's is worth a warning (times are converted anyway). */
const SKEW_WARN_MS = 2000;
const SKEW_WARN_EVERY_MS = 3600_000;
/** Auctions remembered for dedup and for honouring awards of our own bids. */
const REMEMBERED = 4096;

export class BidDesk implements Lifecycle {
  private readonly bidFor = new Set<string>();
  private lastSkewWarning = -Infinity;
  /** Announce-to-bid handler times in ms (bench/node.ts). */
  readonly latencies: number[] = [];

  constructor(
    private readonly nodeId: string,
    private readonly view: () => BidderNode,
    private readonly out: Outbox,
    private readonly clock: Clock,
    private readonly coordinatorClock: SenderClock,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {}
  async close(): Promise<void> {}

  /** Whether this node answered the auction (an award for it is honoured even with a full queue). */
  answered(auctionId: string): boolean {
    return this.bidFor.has(auctionId);
  }

  onAnnounce(a: Announce): void {
    const t0 = performance.now();
    this.counters.inc("announces");
    const cc = this.coordinatorClock;
    const local: Announce = { ...a, deadlineAt: cc.toLocal(a.deadlineAt), closesAt: cc.toLocal(a.closesAt) };
    const now = this.clock.now();
    this.noteSkew(now);
    if (local.closesAt < now) return this.counters.drop("announce.late", { taskId: a.taskId, lateMs: Math.round(now - local.closesAt) });
    // One bid per node per auction, even when the broker redelivers the announce.
    if (this.bidFor.has(a.auctionId)) return;
    this.bidFor.add(a.auctionId);
    if (this.bidFor.size > REMEMBERED) for (const k of [...this.bidFor].slice(0, REMEMBERED / 2)) this.bidFor.delete(k);
    const decision = decideBid(local, this.view(), now);
    if (decision.bid.type === "bid") this.counters.inc("bids");
    else {
      this.counters.inc(`declines.${decision.bid.reason}`);
      this.log.debug({ taskId: a.taskId, reason: decision.bid.reason, detail: decision.bid.detail }, "declined");
    }
    this.out.send(channels.nodeBid, [this.nodeId], decision.bid);
    this.latencies.push(performance.now() - t0);
    if (this.latencies.length > 10_000) this.latencies.splice(0, 5000);
  }

  private noteSkew(now: number): void {
    const skewMs = this.coordinatorClock.offsetMs ?? 0;
    if (Math.abs(skewMs) < SKEW_WARN_MS || now - this.lastSkewWarning < SKEW_WARN_EVERY_MS) return;
    this.lastSkewWarning = now;
    this.log.warn({ skewMs }, "this node's clock differs from the coordinator's; announce and award times are converted, but check NTP");
  }
}
