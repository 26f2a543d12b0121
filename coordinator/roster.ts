/**
 * Which nodes were online, kept in the store, so that a coordinator that restarts (after a crash as
 * well) knows whom to wait for before it auctions anything: with the embedded broker every node was
 * disconnected, and each comes back after its own reconnect backoff (the node daemon's grows to 5 s).
 * `ready` resolves when every node known online before is back, or after `graceMs`, whichever comes
 * first, and never before `settleMs` (retained statuses arrive just after the subscription). Until
 * then resumed tasks and new submits wait; they do not end NO_BIDDERS.
 */
import type { Clock, Timer } from "../common/clock.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import type { TaskStore } from "./market/task-store.ts";
import type { Registry } from "./registry.ts";

export interface RosterOptions {
  store: TaskStore;
  registry: Registry;
  clock: Clock;
  logger: Logger;
  /** Longest wait for the nodes known before the restart. */
  graceMs: number;
  /** Shortest wait, for retained statuses to arrive. Default 300 ms. */
  settleMs?: number;
}

export class Roster implements Lifecycle {
  private expected = new Set<string>();
  private unsubscribe: (() => void)[] = [];
  private timers: Timer[] = [];
  private open!: () => void;
  private settled = false;
  private graceOver = false;
  private closed = false;
  /** The pending checks of afterReconnect (apart from the restart's timers), and their promises' resolvers. */
  private readonly polls = new Set<Timer>();
  private readonly waits = new Set<() => void>();
  /** Resolves once the market may auction. */
  readonly ready: Promise<void> = new Promise((r) => (this.open = r));

  constructor(private readonly o: RosterOptions) {}

  async start(): Promise<void> {
    const { store, registry, clock, logger } = this.o;
    for await (const nodeId of store.nodesOnline()) this.expected.add(nodeId);
    const write = (p: Promise<void>) => p.catch((err) => logger.error({ err }, "roster write failed"));
    this.unsubscribe = [
      registry.events.on("nodeOnline", ({ nodeId }) => {
        void write(store.putNodeOnline(nodeId, clock.now()));
        this.expected.delete(nodeId);
        this.check();
      }),
      registry.events.on("nodeOffline", ({ nodeId }) => void write(store.deleteNodeOnline(nodeId))),
    ];
    if (this.expected.size) logger.info({ nodes: [...this.expected], graceMs: this.o.graceMs }, "waiting for the nodes that were online before the restart");
    this.timers.push(
      clock.setTimer(this.o.settleMs ?? 300, () => ((this.settled = true), this.check())),
      clock.setTimer(this.o.graceMs, () => ((this.graceOver = true), this.check())),
    );
  }

  private check(): void {
    if (!this.settled || (this.expected.size > 0 && !this.graceOver)) return;
    if (this.expected.size) this.o.logger.warn({ missing: [...this.expected] }, "nodes known before the restart did not come back within the grace period; auctions start without them");
    this.expected.clear();
    for (const t of this.timers.splice(0)) t.cancel();
    this.open();
  }

  /**
   * After the coordinator's link reconnected (the broker may have restarted, and every node with
   * it): resolves once each node that was online has been heard from since (a status, a heartbeat:
   * it is connected and subscribed again) or went offline, or after `graceMs`; never before
   * `settleMs`. Auctions wait for it (market.hold).
   */
  afterReconnect(): Promise<void> {
    const { registry, clock, logger } = this.o;
    const since = clock.now();
    const known = registry.list().filter((n) => n.online).map((n) => n.nodeId);
    const settleMs = this.o.settleMs ?? 300;
    return new Promise<void>((done) => {
      const resolve = () => {
        this.waits.delete(resolve);
        done();
      };
      this.waits.add(resolve);
      const poll = () => {
        const waited = clock.now() - since;
        const seen = new Map(registry.list().map((n) => [n.nodeId, n]));
        const missing = known.filter((id) => seen.get(id)?.online && seen.get(id)!.lastSeen < since);
        if (this.closed || (waited >= settleMs && (missing.length === 0 || waited >= this.o.graceMs))) {
          if (missing.length && !this.closed) logger.warn({ missing }, "nodes not heard from within the grace period after the reconnect; auctions start without waiting for them");
          return resolve();
        }
        const t = clock.setTimer(50, () => {
          this.polls.delete(t);
          poll();
        });
        this.polls.add(t);
      };
      logger.info({ nodes: known.length, graceMs: this.o.graceMs }, "link reconnected: auctions wait for the nodes to be heard from again");
      poll();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const t of this.timers.splice(0)) t.cancel();
    // A pending afterReconnect resolves, so that nothing waits on a closed coordinator.
    for (const t of this.polls) t.cancel();
    this.polls.clear();
    for (const resolve of [...this.waits]) resolve();
    this.open();
  }
}
