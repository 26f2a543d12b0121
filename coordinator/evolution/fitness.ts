/**
 * Fitness of every agent in every niche it works in, kept incrementally from the market's events
 * (never by scanning the store), so a decision cycle reads it in O(agents x niches).
 *
 * The formulas (docs/evolution.md, "Fitness"), for agent a in niche n = (skill key k, device class d):
 *
 * - success(a, n)  = posterior mean of a's ONE track record for k (the reputation part owns it;
 *                    this book never counts successes of its own): (1 + s + 1) / (2 + s + f + 2)
 *                    with a neutral 0.5 claim, so a claim never buys fitness;
 * - trials(a, n)   = s + f of that record;
 * - energyPerSuccessJ = joules of every delivered attempt of a on k / verified-or-provisional
 *                    successes among them (what one success costs, failures included); a
 *                    submitter's feedback that overturns a verdict moves the success count;
 * - latencyMs      = mean ms from award to result over delivered attempts;
 * - wins           = awards of a on k in the last `windowMs` (window-counter.ts).
 *
 * d is the device class of a's node: an agent lives on one node, so its niches are its skills on
 * its device class, and a Pi agent competes with Pi agents (the cheap niche), not with a laptop's.
 */
import { posteriorMean, type Record } from "../../common/accuracy.ts";
import type { AgentRef } from "../market/agent-ref.ts";
import { recordKey } from "../market/agent-ref.ts";
import type { AttemptAwarded, FeedbackApplied, MarketEventBus, TaskAccepted, TaskFinished } from "../market/events.ts";
import { WindowCounter, type WindowCounterState } from "./window-counter.ts";

/** What the book persists per (agent, skill key) so a restart keeps windows and sums. */
export interface AgentSkillState {
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  skill: string;
  delivered: number;
  successes: number;
  energyJ: number;
  latencyMsSum: number;
  lastWinAt?: number | undefined;
  wins: WindowCounterState;
}

export interface DemandState {
  skill: string;
  accepted: WindowCounterState;
  /** Accepted tasks per UTC hour of day, all time: the daily pattern keep-warm predicts from. */
  hourly: number[];
}

export interface AgentFitness {
  nodeId: string;
  agentId: string;
  genome?: string | undefined;
  skill: string;
  success: number;
  trials: number;
  energyPerSuccessJ?: number | undefined;
  latencyMs?: number | undefined;
  wins: number;
  lastWinAt?: number | undefined;
}

export interface Demand {
  skill: string;
  /** Tasks accepted in the last window and in the one before. */
  current: number;
  previous: number;
  hourly: readonly number[];
}

class AgentSkill {
  readonly wins: WindowCounter;
  constructor(readonly s: Omit<AgentSkillState, "wins">, windowMs: number, wins?: WindowCounterState) {
    this.wins = new WindowCounter(windowMs, 10, wins);
  }
  toJSON(): AgentSkillState {
    return { ...this.s, wins: this.wins.toJSON() };
  }
}

export interface FitnessOptions {
  events: MarketEventBus;
  windowMs: number;
  /** The single track record (reputation.ts). */
  record: (agent: AgentRef, skill: string) => Record;
  now: () => number;
}

export class FitnessBook {
  private readonly stats = new Map<string, AgentSkill>();
  private readonly demand = new Map<string, { accepted: WindowCounter; hourly: number[] }>();
  /** Award time of attempts in flight, for latency: `taskId#attempt`. */
  private readonly awardedAt = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly o: FitnessOptions) {}

  start(): void {
    const ev = this.o.events;
    this.unsubscribe = [
      ev.on("taskAccepted", (e) => this.onAccepted(e)),
      ev.on("attemptAwarded", (e) => this.onAwarded(e)),
      ev.on("attemptFailed", (e) => this.awardedAt.delete(`${e.taskId}#${e.attempt}`)),
      ev.on("taskFinished", (e) => this.onFinished(e)),
      ev.on("feedback", (e) => this.onFeedback(e)),
    ];
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private entry(ref: AgentRef, skill: string): AgentSkill {
    const id = `${recordKey(ref)}|${skill}`;
    let e = this.stats.get(id);
    if (!e) {
      e = new AgentSkill({ nodeId: ref.nodeId, agentId: ref.agentId, genome: ref.genome, skill, delivered: 0, successes: 0, energyJ: 0, latencyMsSum: 0 }, this.o.windowMs);
      this.stats.set(id, e);
    }
    // The node may rename an agent: the record key stays, the name follows.
    e.s.agentId = ref.agentId;
    this.dirty.add(id);
    return e;
  }

  private onAccepted(e: TaskAccepted): void {
    let d = this.demand.get(e.skill);
    if (!d) this.demand.set(e.skill, (d = { accepted: new WindowCounter(this.o.windowMs), hourly: new Array<number>(24).fill(0) }));
    d.accepted.add(e.at);
    d.hourly[new Date(e.at).getUTCHours()]! += 1;
    this.dirty.add(`demand|${e.skill}`);
  }

  private onAwarded(e: AttemptAwarded): void {
    const s = this.entry(e, e.skill);
    s.wins.add(e.at);
    s.s.lastWinAt = Math.max(s.s.lastWinAt ?? 0, e.at);
    this.awardedAt.set(`${e.taskId}#${e.attempt}`, e.at);
  }

  private onFinished(e: TaskFinished): void {
    const d = e.delivered;
    for (let i = 1; i <= e.attempts; i++) if (i !== d?.attempt) this.awardedAt.delete(`${e.taskId}#${i}`);
    if (!d) return;
    const s = this.entry(d, e.skill);
    s.s.delivered += 1;
    if (d.verdict.success) s.s.successes += 1;
    s.s.energyJ += d.cost.energyJ ?? 0;
    const key = `${e.taskId}#${d.attempt}`;
    const at = this.awardedAt.get(key);
    this.awardedAt.delete(key);
    s.s.latencyMsSum += at !== undefined ? Math.max(0, e.at - at) : (d.cost.promptMs ?? 0) + (d.cost.generateMs ?? 0);
  }

  /** A submitter's verdict replaces the check's: the success count follows, so energy per success does too. */
  private onFeedback(e: FeedbackApplied): void {
    if (e.verdict.success === e.previous.success) return;
    const s = this.entry(e, e.skill);
    s.s.successes = Math.max(0, Math.min(s.s.delivered, s.s.successes + (e.verdict.success ? 1 : -1)));
  }

  /** Every agent's fitness per skill key, now. */
  agents(): AgentFitness[] {
    const now = this.o.now();
    return [...this.stats.values()].map(({ s, wins }) => {
      const rec = this.o.record(s, s.skill);
      return {
        nodeId: s.nodeId, agentId: s.agentId, genome: s.genome, skill: s.skill,
        success: posteriorMean(0.5, rec), trials: rec.successes + rec.failures,
        energyPerSuccessJ: s.successes > 0 && s.energyJ > 0 ? s.energyJ / s.successes : undefined,
        latencyMs: s.delivered > 0 ? s.latencyMsSum / s.delivered : undefined,
        wins: wins.current(now), lastWinAt: s.lastWinAt,
      };
    });
  }

  demands(): Demand[] {
    const now = this.o.now();
    return [...this.demand].map(([skill, d]) => ({ skill, current: d.accepted.current(now), previous: d.accepted.previous(now), hourly: d.hourly }));
  }

  // Persistence: the owner (evolution.ts) saves what changed and loads it back at start.
  load(states: Iterable<AgentSkillState>, demands: Iterable<DemandState>): void {
    for (const st of states) {
      const { wins, ...rest } = st;
      this.stats.set(`${recordKey(rest)}|${rest.skill}`, new AgentSkill(rest, this.o.windowMs, wins));
    }
    for (const d of demands) this.demand.set(d.skill, { accepted: new WindowCounter(this.o.windowMs, 10, d.accepted), hourly: d.hourly.slice(0, 24) });
  }

  /** The entries changed since the last call, keyed for the store. */
  takeDirty(): { key: string; value: AgentSkillState | DemandState }[] {
    const out: { key: string; value: AgentSkillState | DemandState }[] = [];
    for (const id of this.dirty) {
      if (id.startsWith("demand|")) {
        const skill = id.slice(7);
        const d = this.demand.get(skill);
        if (d) out.push({ key: id, value: { skill, accepted: d.accepted.toJSON(), hourly: [...d.hourly] } });
      } else {
        const s = this.stats.get(id);
        if (s) out.push({ key: id, value: s.toJSON() });
      }
    }
    this.dirty.clear();
    return out;
  }

  /** Forgets a retired agent's working state (its lineage keeps its fitness history). */
  forget(ref: AgentRef): string[] {
    const prefix = `${recordKey(ref)}|`;
    const gone = [...this.stats.keys()].filter((k) => k.startsWith(prefix));
    for (const k of gone) this.stats.delete(k);
    return gone;
  }
}
