import type { Bid } from "../../common/protocol.ts";

/**
 * One sealed-bid auction (one attempt of one task): which nodes are expected to answer, the bids
 * and declines received, and when it may close. Pure state: the market owns the timer and calls
 * `offer`, `nodeGone` and `close`. It closes as soon as every expected (online, eligible) node has
 * answered — the bid window is only the upper bound — which keeps submit-to-award near the
 * network round trip (bench/auction.ts).
 */
export type BidMessage = Extract<Bid, { type: "bid" }>;
export type OfferOutcome = "accepted" | "declined" | "closed" | "duplicate" | "excluded" | "unregistered-agent" | "wrong-task";

/** Why a bid's agent may not take part: not registered by the bidding node, or excluded. */
export type AgentScreen = (nodeId: string, agentId: string) => "excluded" | "unregistered-agent" | undefined;

export class Auction {
  readonly bids: BidMessage[] = [];
  readonly declines: Extract<Bid, { type: "decline" }>[] = [];
  private readonly waitingFor: Set<string>;
  private readonly answered = new Set<string>();
  private open = true;

  constructor(
    readonly auctionId: string,
    readonly taskId: string,
    readonly attempt: number,
    readonly openedAt: number,
    readonly closesAt: number,
    expectedNodes: Iterable<string>,
    private readonly screen: AgentScreen,
  ) {
    this.waitingFor = new Set(expectedNodes);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** True once every expected node has bid or declined (or gone offline). */
  get complete(): boolean {
    return this.waitingFor.size === 0;
  }

  get expectedCount(): number {
    return this.waitingFor.size + this.answered.size;
  }

  /** One sealed answer per node: the first counts, later ones are duplicates. */
  offer(msg: Bid): OfferOutcome {
    if (!this.open) return "closed";
    if (msg.taskId !== this.taskId) return "wrong-task";
    if (this.answered.has(msg.nodeId)) return "duplicate";
    this.answered.add(msg.nodeId);
    this.waitingFor.delete(msg.nodeId);
    if (msg.type === "decline") {
      this.declines.push(msg);
      return "declined";
    }
    const refused = this.screen(msg.nodeId, msg.agentId);
    if (refused) return refused;
    this.bids.push(msg);
    return "accepted";
  }

  /** A node went offline: stop waiting for it, and drop its bid (it could not run the task). */
  nodeGone(nodeId: string): void {
    this.waitingFor.delete(nodeId);
    if (!this.open) return;
    const i = this.bids.findIndex((b) => b.nodeId === nodeId);
    if (i >= 0) this.bids.splice(i, 1);
  }

  close(): void {
    this.open = false;
  }
}
