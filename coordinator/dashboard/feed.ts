/**
 * The dashboard feed: a learner like the others (docs/coordinator.md, "Market events"). It turns the
 * market's events into sanitized dashboard events (common/protocol/dashboard.ts), published live on
 * `colony/v1/dashboard/events` and, retained, as the newest `maxRecent` on `dashboard/recent`; and
 * every `intervalMs` (when it changed, and at once when a node comes or goes) a retained snapshot of
 * the nodes with their device readings and agents on `dashboard/fleet`. The observer role may read
 * `colony/v1/dashboard/#` (coordinator/auth/acl.ts): nothing here carries a prompt or an output
 * unless `showPrompts`.
 */
import { every, type Clock, type Timer } from "../../common/clock.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import { channels, type Outbox } from "../../common/protocol.ts";
import { MAX_RANKED, type DashboardEvent, type DashboardFleet } from "../../common/protocol/dashboard.ts";
import type { MarketEventBus } from "../market/events.ts";
import type { Registry } from "../registry.ts";

export interface DashboardFeedOptions {
  events: MarketEventBus;
  registry: Registry;
  out: Outbox;
  clock: Clock;
  /** How often the fleet snapshot is compared and published when changed (the coordinator's `statsIntervalMs`). */
  intervalMs: number;
  /** Include prompts and outputs in the events (config `dashboardShowPrompts`). Default false. */
  showPrompts?: boolean;
  /** Events kept in the retained `dashboard/recent`. Default 200. */
  maxRecent?: number;
}

interface AgentTally {
  wins: number;
  successes: number;
  energyJ: number;
  claimed: Record<string, number>;
}

/** The recent list is republished at most this often (ms): a burst of events costs one retained message. */
const RECENT_DEBOUNCE_MS = 250;

export class DashboardFeed implements Lifecycle {
  private unsubscribe: (() => void)[] = [];
  private timer: Timer | undefined;
  private recentTimer: Timer | undefined;
  private readonly recent: DashboardEvent[] = [];
  /** Per node and per `${nodeId}/${agentId}`, since start; bounded by the fleet's agents. */
  private readonly nodeTally = new Map<string, { energyJ: number; tasksDone: number }>();
  private readonly agentTally = new Map<string, AgentTally>();
  private lastFleet = "";
  private started = false;

  constructor(private readonly o: DashboardFeedOptions) {}

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const ev = this.o.events;
    const show = this.o.showPrompts === true;
    this.unsubscribe = [
      ev.on("taskAccepted", (e) => this.emit({ kind: "opened", taskId: e.taskId, skill: e.skill, at: e.at, ...(show ? { prompt: e.submit.prompt } : {}) })),
      ev.on("attemptAwarded", (e) => {
        const t = this.agent(e.nodeId, e.agentId);
        t.wins++;
        t.claimed[e.skill] = e.bid.accuracy;
        this.emit({
          kind: "awarded", taskId: e.taskId, skill: e.skill, attempt: e.attempt, auctionId: e.auctionId, nodeId: e.nodeId, agentId: e.agentId, estimate: e.bid, score: e.score, bids: e.bids, at: e.at,
          ...(e.ranked ? { ranked: e.ranked().slice(0, MAX_RANKED).map(({ reason, ...r }) => ({ ...r, ...(reason ? { reason } : {}) })) } : {}),
        });
      }),
      ev.on("attemptFailed", (e) =>
        this.emit({ kind: "failed", taskId: e.taskId, skill: e.skill, attempt: e.attempt, nodeId: e.nodeId, agentId: e.agentId, outcome: e.outcome, code: e.error.code, message: e.error.message.slice(0, 1024), at: e.at }),
      ),
      ev.on("taskFinished", (e) => {
        const d = e.delivered;
        if (d) {
          const energy = d.cost.energyJ ?? 0;
          const n = this.nodeTally.get(d.nodeId) ?? { energyJ: 0, tasksDone: 0 };
          n.energyJ += energy;
          if (e.status === "ok") n.tasksDone++;
          this.nodeTally.set(d.nodeId, n);
          const a = this.agent(d.nodeId, d.agentId);
          a.energyJ += energy;
          if (d.verdict.success) a.successes++;
        }
        this.emit({
          kind: "finished", taskId: e.taskId, skill: e.skill, status: e.status, ...(e.error ? { code: e.error.code } : {}), attempts: e.attempts,
          ...(d ? { nodeId: d.nodeId, agentId: d.agentId, success: d.verdict.success, verdictSource: d.verdict.source } : {}),
          ...(d?.cost.energyJ !== undefined ? { energyJ: d.cost.energyJ } : {}), ...(d?.cost.tokens !== undefined ? { tokens: d.cost.tokens } : {}),
          totalMs: e.totalMs, at: e.at, ...(show && d ? { output: d.output } : {}),
        });
      }),
      ev.on("feedback", (e) => this.emit({ kind: "feedback", taskId: e.taskId, nodeId: e.nodeId, agentId: e.agentId, success: e.verdict.success, at: e.at })),
      this.o.registry.events.on("nodeOnline", () => this.publishFleet()),
      this.o.registry.events.on("nodeOffline", () => this.publishFleet()),
    ];
    this.publishRecent();
    this.publishFleet();
    this.timer = every(this.o.clock, this.o.intervalMs, () => this.publishFleet());
  }

  private agent(nodeId: string, agentId: string): AgentTally {
    const key = `${nodeId}/${agentId}`;
    let t = this.agentTally.get(key);
    if (!t) this.agentTally.set(key, (t = { wins: 0, successes: 0, energyJ: 0, claimed: {} }));
    return t;
  }

  private emit(e: DashboardEvent): void {
    if (!this.started) return;
    this.o.out.send(channels.dashboardEvents, [], e);
    this.recent.push(e);
    const max = this.o.maxRecent ?? 200;
    if (this.recent.length > max) this.recent.splice(0, this.recent.length - max);
    if (!this.recentTimer) {
      this.recentTimer = this.o.clock.setTimer(RECENT_DEBOUNCE_MS, () => {
        this.recentTimer = undefined;
        this.publishRecent();
      });
    }
  }

  private publishRecent(): void {
    this.o.out.send(channels.dashboardRecent, [], { at: this.o.clock.now(), events: this.recent });
  }

  /** The fleet as the registry sees it now, with the tallies. */
  fleet(): DashboardFleet {
    return {
      at: this.o.clock.now(),
      nodes: this.o.registry.list().map((n) => {
        const hb = n.heartbeat;
        const tally = this.nodeTally.get(n.nodeId) ?? { energyJ: 0, tasksDone: 0 };
        return {
          nodeId: n.nodeId, online: n.online, lastSeen: n.lastSeen,
          ...(n.status ? { deviceClass: n.status.deviceClass, slots: n.status.slots } : {}),
          ...(hb ? { busy: hb.busy, queued: hb.queued, ...(hb.device ? { device: hb.device } : {}) } : {}),
          energyJ: tally.energyJ, tasksDone: tally.tasksDone,
          agents: (n.status?.agents ?? []).map((a) => {
            const t = this.agentTally.get(`${n.nodeId}/${a.agentId}`) ?? { wins: 0, successes: 0, energyJ: 0, claimed: {} };
            return {
              agentId: a.agentId, state: hb?.agents.find((h) => h.agentId === a.agentId)?.state ?? a.state, skills: a.skills, model: a.model,
              ...(a.generation !== undefined ? { generation: a.generation } : {}), wins: t.wins, successes: t.successes, energyJ: t.energyJ, claimed: { ...t.claimed },
            };
          }),
        };
      }),
    };
  }

  private publishFleet(): void {
    if (!this.started) return;
    const snap = this.fleet();
    // Compared without `at` and `lastSeen`, which move with every heartbeat.
    const key = JSON.stringify(snap.nodes.map(({ lastSeen: _l, ...n }) => n));
    if (key === this.lastFleet) return;
    this.lastFleet = key;
    this.o.out.send(channels.dashboardFleet, [], snap);
  }

  async close(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.timer?.cancel();
    this.recentTimer?.cancel();
    this.timer = this.recentTimer = undefined;
  }
}
