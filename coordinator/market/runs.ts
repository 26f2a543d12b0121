/**
 * The market's in-memory state: every unfinished task (a Run) by task id and by its open auction,
 * and how many each submitter has. Plain bookkeeping; the state machine that moves Runs is
 * market.ts.
 */
import type { Timer } from "../../common/clock.ts";
import { recordKey } from "./agent-ref.ts";
import type { Auction } from "./auction.ts";
import type { Marks } from "./phases.ts";
import { FAULTS } from "./results.ts";
import { ownerOf, type TaskRecord, type TaskStore } from "./task-store.ts";

/** The attempt that holds the task: its award is waiting for an ack, or it runs. */
export interface Current {
  auctionId: string;
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  /** `checking`: the output arrived and the task's check runs (off the event loop, checks.ts). */
  phase: "awaiting-ack" | "running" | "checking";
  timer?: Timer;
}

/** In-memory state of an unfinished task; `rec` is what the store holds. */
export interface Run {
  rec: TaskRecord & { maxTokens: number };
  auction?: Auction | undefined;
  auctionTimer?: Timer | undefined;
  current?: Current | undefined;
  deadlineTimer?: Timer | undefined;
  /** Record keys of the agents that failed this task (agent-ref.ts): they sit out its later auctions. */
  failedAgents: Set<string>;
  /** The latest store write of this task (close() waits for it). */
  writes: Promise<void>;
  finished: boolean;
  /** When each step of the task happened (phases.ts; memory only). */
  marks: Marks;
  /**
   * Set while the task's first write is in flight (its first auction already runs, market.ts
   * onSubmit): resolves true once it is stored and `accepted` went out, false if it was not.
   */
  accepting?: Promise<boolean> | undefined;
}

export interface MarketSnapshot {
  openAuctions: { taskId: string; auctionId: string; attempt: number; bids: number; expected: number; closesAt: number }[];
  runningTasks: { taskId: string; nodeId: string; agentId: string; phase: string }[];
}

export class RunTable {
  private readonly byTask = new Map<string, Run>();
  private readonly byAuction = new Map<string, Run>();
  /** Unfinished tasks per submitter (quota.ts). */
  private readonly openByOwner = new Map<string, number>();

  add(rec: Run["rec"]): Run {
    const failed = rec.attempts.flatMap((a) => (a.nodeId && a.agentId && FAULTS.has(a.outcome) ? [recordKey({ nodeId: a.nodeId, agentId: a.agentId, genome: a.genome })] : []));
    const run: Run = { rec, failedAgents: new Set(failed), writes: Promise.resolve(), finished: false, marks: {} };
    this.byTask.set(rec.id, run);
    const owner = ownerOf(rec);
    this.openByOwner.set(owner, (this.openByOwner.get(owner) ?? 0) + 1);
    return run;
  }

  /** The task is finished (or was never accepted). */
  remove(run: Run): void {
    if (!this.byTask.delete(run.rec.id)) return;
    if (run.auction) this.byAuction.delete(run.auction.auctionId);
    const owner = ownerOf(run.rec);
    const left = (this.openByOwner.get(owner) ?? 1) - 1;
    if (left > 0) this.openByOwner.set(owner, left);
    else this.openByOwner.delete(owner);
  }

  openOf(owner: string): number {
    return this.openByOwner.get(owner) ?? 0;
  }

  /** The run's auction is now `auction` (its previous one, if any, is forgotten). */
  setAuction(run: Run, auction: Auction): void {
    if (run.auction) this.byAuction.delete(run.auction.auctionId);
    run.auction = auction;
    this.byAuction.set(auction.auctionId, run);
  }

  /**
   * The task stored under `id`: unfinished (from memory) or finished (from the store). Checked again
   * after the read: an identical submit may have been accepted meanwhile.
   */
  async find(id: string, store: Pick<TaskStore, "getTask">): Promise<TaskRecord | undefined> {
    const running = this.byTask.get(id)?.rec;
    if (running) return running;
    const stored = await store.getTask(id);
    return this.byTask.get(id)?.rec ?? stored;
  }

  get(taskId: string): Run | undefined {
    return this.byTask.get(taskId);
  }

  byAuctionId(auctionId: string): Run | undefined {
    return this.byAuction.get(auctionId);
  }

  all(): Run[] {
    return [...this.byTask.values()];
  }

  snapshot(): MarketSnapshot {
    const snap: MarketSnapshot = { openAuctions: [], runningTasks: [] };
    for (const run of this.byTask.values()) {
      const a = run.auction;
      if (a?.isOpen) snap.openAuctions.push({ taskId: run.rec.id, auctionId: a.auctionId, attempt: a.attempt, bids: a.bids.length, expected: a.expectedCount, closesAt: a.closesAt });
      if (run.current) snap.runningTasks.push({ taskId: run.rec.id, nodeId: run.current.nodeId, agentId: run.current.agentId, phase: run.current.phase });
    }
    return snap;
  }
}
