/**
 * Tells the node that ran an attempt how it was judged, with the agent's record for the skill as
 * the coordinator holds it after the verdict: the node files the verdict in its hot cache and picks
 * among its own agents with the record, without keeping one of its own. A subscriber to market
 * events; it must be subscribed after Reputation so the record it sends includes this verdict.
 */
import type { Lifecycle } from "../../common/lifecycle.ts";
import { channels, type Outbox, type Verdict } from "../../common/protocol.ts";
import type { AgentRef } from "./agent-ref.ts";
import type { MarketEventBus } from "./events.ts";
import type { Reputation } from "./reputation.ts";

export class VerdictRelay implements Lifecycle {
  private unsubscribe: (() => void)[] = [];
  constructor(private readonly events: MarketEventBus, private readonly reputation: Pick<Reputation, "record">, private readonly out: Outbox) {}

  async start(): Promise<void> {
    const ev = this.events;
    this.unsubscribe = [
      ev.on("taskFinished", (e) => {
        const d = e.delivered;
        if (d) this.send(d, { taskId: e.taskId, agentId: d.agentId, success: d.verdict.success, source: d.verdict.source }, e.skill);
      }),
      ev.on("attemptFailed", (e) => this.send(e, { taskId: e.taskId, agentId: e.agentId, success: false, source: "failure" }, e.skill)),
      ev.on("feedback", (e) =>
        this.send(e, { taskId: e.taskId, agentId: e.agentId, success: e.verdict.success, source: "feedback", ...(e.score !== undefined ? { score: e.score } : {}) }, e.skill),
      ),
    ];
  }

  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** `skill`: the task's track-record key (market.ts skillKey): a skill, a niche ("~c3"), or "*". */
  private send(agent: AgentRef, v: Omit<Verdict, "skill" | "niche" | "record">, skill: string): void {
    const key = skill === "*" ? {} : skill.startsWith("~") ? { niche: skill } : { skill };
    const msg: Verdict = { ...v, ...key, record: this.reputation.record(agent, skill) };
    this.out.send(channels.nodeVerdict, [agent.nodeId], msg);
  }
}
