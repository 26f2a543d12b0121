/**
 * The coordinator's Prometheus metrics (docs/operations.md lists every one). A learner like the
 * others: it subscribes to the market's events (market/events.ts) for what only they carry
 * (latencies, outcomes, joules, tokens), and reads the existing `Counters` and the registry when
 * scraped for the rest, so nothing is counted twice in two places.
 *
 * One prom-client `Registry` per instance, never the library's global one: two coordinators in one
 * process (the tests) each expose their own figures.
 */
import client from "prom-client";
import { counterFromReads as fromCounters } from "../../common/counter-metrics.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { MarketEventBus } from "../market/events.ts";
import type { Registry as FleetRegistry } from "../registry.ts";
import { attemptOutcomeLabel, MAX_DROP_REASONS, outcomeLabel, skillLabel, skillLabels } from "./labels.ts";

export interface FleetMetricsSources {
  events: MarketEventBus;
  counters: Counters;
  registry: FleetRegistry;
  /** Open auctions and running tasks now (Market.snapshot()). */
  market: { snapshot(): { openAuctions: readonly unknown[]; runningTasks: readonly unknown[] } };
  /** The market's attempt limit: a failed attempt below it sends the task back to auction. */
  maxAttempts: number;
  /** Also the Node.js process metrics (`process_*`, `nodejs_*`). Default true. */
  processMetrics?: boolean;
}

// Seconds from acceptance to the first award: a few ms on a quiet LAN, up to the bid window (300 ms
// by default) when a node answers late, seconds while auctions wait for nodes after a restart.
const AWARD_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Seconds from acceptance to the final result: small models answer in tens of ms, the default
// deadline is 60 s.
const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const AGENT_STATES = ["awake", "asleep", "busy", "loading"] as const;

export class FleetMetrics implements Lifecycle {
  readonly registry = new client.Registry();
  private unsubscribe: (() => void)[] = [];
  /** Tasks accepted and not yet awarded, with when: the award latency's start. Bounded by open tasks. */
  private readonly awaitingAward = new Map<string, number>();
  private readonly accepted: client.Counter<"skill">;
  private readonly finished: client.Counter<"outcome" | "skill">;
  private readonly awardLatency: client.Histogram<string>;
  private readonly duration: client.Histogram<"status">;
  private readonly failed: client.Counter<"outcome">;
  private readonly reauctions: client.Counter<string>;
  private readonly penalties: client.Counter<string>;
  private readonly energy: client.Counter<"skill">;
  private readonly tokens: client.Counter<"skill">;
  private readonly feedback: client.Counter<"success">;

  constructor(private readonly s: FleetMetricsSources) {
    const r = [this.registry];
    const counters = s.counters;

    // From market events.
    this.accepted = new client.Counter({ name: "colony_tasks_accepted_total", help: "Tasks accepted (stored and announced), by skill.", labelNames: ["skill"], registers: r });
    this.finished = new client.Counter({ name: "colony_tasks_total", help: "Tasks finished, by outcome (ok, or the error code in lower case) and skill.", labelNames: ["outcome", "skill"], registers: r });
    this.awardLatency = new client.Histogram({ name: "colony_award_latency_seconds", help: "Seconds from a task's acceptance to its first award.", buckets: AWARD_BUCKETS, registers: r });
    this.duration = new client.Histogram({ name: "colony_task_duration_seconds", help: "Seconds from a task's acceptance to its final result, by status.", labelNames: ["status"], buckets: DURATION_BUCKETS, registers: r });
    this.failed = new client.Counter({ name: "colony_attempts_failed_total", help: "Attempts that failed through the agent's fault, by outcome.", labelNames: ["outcome"], registers: r });
    this.reauctions = new client.Counter({ name: "colony_reauctions_total", help: "Failed attempts that sent their task back to auction (retries).", registers: r });
    this.penalties = new client.Counter({ name: "colony_penalties_total", help: "Penalties given to agents (one per failed attempt; docs/scoring.md).", registers: r });
    this.energy = new client.Counter({ name: "colony_energy_joules_total", help: "Joules the delivering attempts reported, by skill.", labelNames: ["skill"], registers: r });
    this.tokens = new client.Counter({ name: "colony_tokens_total", help: "Tokens the delivering attempts generated, by skill.", labelNames: ["skill"], registers: r });
    this.feedback = new client.Counter({ name: "colony_feedback_total", help: "Submitter feedback applied, by verdict.", labelNames: ["success"], registers: r });
    for (const skill of skillLabels()) {
      this.accepted.inc({ skill }, 0);
      this.finished.inc({ outcome: "ok", skill }, 0);
      this.energy.inc({ skill }, 0);
      this.tokens.inc({ skill }, 0);
    }

    // From the Counters the market and inbound already keep (read at scrape time).
    const n = (name: string) => () => counters.get(name);
    const byLabel = (label: string, values: readonly string[], prefix: string) => ({ label, values: Object.fromEntries(values.map((v) => [v, n(prefix + v)])) });
    fromCounters(this.registry, "colony_auctions_total", "Auctions opened.", n("auctions.opened"));
    fromCounters(this.registry, "colony_auctions_awarded_total", "Auctions that ended with a winner.", n("auctions.awarded"));
    fromCounters(this.registry, "colony_bids_total", "Answers to announces the auctions accepted, by type (bid or decline).", { label: "type", values: { bid: n("bids.accepted"), decline: n("bids.declined") } });
    new client.Counter({
      name: "colony_messages_dropped_total", help: "Inbound messages dropped (invalid, forged, unexpected), by reason.", labelNames: ["reason"], registers: r,
      collect() {
        this.reset();
        let reasons = 0;
        let other = 0;
        for (const [name, v] of Object.entries(counters.snapshot())) {
          if (!name.startsWith("dropped.")) continue;
          if (++reasons <= MAX_DROP_REASONS) this.inc({ reason: name.slice("dropped.".length) }, v);
          else other += v;
        }
        if (other > 0) this.inc({ reason: "other" }, other);
      },
    });
    fromCounters(this.registry, "colony_mqtt_refusals_total", "MQTT connects, wills, publishes and subscribes the broker refused (auth and topic ACL), by action.", byLabel("action", ["connect", "will", "publish", "subscribe"], "auth.refused."));
    fromCounters(this.registry, "colony_submits_rate_limited_total", "Submits and gets refused RATE_LIMITED.", n("submitters.rate-limited"));
    fromCounters(this.registry, "colony_models_pushed_total", "Pushed models nodes reported on, by result (stored, or refused: a bad hash or signature, no room).", { label: "result", values: { stored: n("models.reports.ok"), refused: n("models.reports.refused") } });
    fromCounters(this.registry, "colony_model_bytes_served_total", "Model bytes served to nodes' fetches.", n("models.fetch.bytes"));
    fromCounters(this.registry, "colony_model_rollouts_total", "Model x node rollouts that finished, by outcome (done, failed; coordinator/models/rollouts.ts).", byLabel("outcome", ["done", "failed"], "models.rollouts."));
    fromCounters(this.registry, "colony_distil_jobs_total", "Distillation jobs that ended, by state (passed, failed: stopped by the gate, error, cancelled; docs/mind.md).", byLabel("state", ["passed", "failed", "error", "cancelled"], "mind.jobs."));
    fromCounters(this.registry, "colony_distil_trainer_jobs_total", "Distillation jobs placed on trainer nodes, and of those the ones a node failed so the coordinator trained them (docs/mind.md, \"Trainer nodes\").", { label: "outcome", values: { placed: n("mind.trainers.awarded"), fallback: n("mind.trainers.fallback") } });
    fromCounters(this.registry, "colony_node_offline_total", "Times a node was taken offline, by why (last-will, heartbeat-timeout).", byLabel("why", ["last-will", "heartbeat-timeout"], "nodes.offline."));

    // From the registry and the market, now.
    const fleet = s.registry;
    new client.Gauge({
      name: "colony_nodes", help: "Nodes the coordinator knows, by state (online, offline).", labelNames: ["state"], registers: r,
      collect() {
        const nodes = fleet.list();
        const online = nodes.filter((n) => n.online).length;
        this.set({ state: "online" }, online);
        this.set({ state: "offline" }, nodes.length - online);
      },
    });
    new client.Gauge({
      name: "colony_agents", help: "Agents on online nodes, by state (awake, asleep, busy, loading).", labelNames: ["state"], registers: r,
      collect() {
        const by = new Map<string, number>(AGENT_STATES.map((st) => [st, 0]));
        for (const n of fleet.list()) {
          if (!n.online) continue;
          for (const a of n.status?.agents ?? []) {
            const st = n.heartbeat?.agents.find((h) => h.agentId === a.agentId)?.state ?? a.state;
            by.set(st, (by.get(st) ?? 0) + 1);
          }
        }
        for (const [state, v] of by) this.set({ state }, v);
      },
    });
    const market = s.market;
    new client.Gauge({ name: "colony_auctions_open", help: "Auctions open now.", registers: r, collect() { this.set(market.snapshot().openAuctions.length); } });
    new client.Gauge({ name: "colony_tasks_running", help: "Tasks awarded and not finished now.", registers: r, collect() { this.set(market.snapshot().runningTasks.length); } });

    if (s.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
  }

  async start(): Promise<void> {
    const ev = this.s.events;
    this.unsubscribe = [
      ev.on("taskAccepted", (e) => {
        this.accepted.inc({ skill: skillLabel(e.skill) });
        this.awaitingAward.set(e.taskId, e.at);
      }),
      ev.on("attemptAwarded", (e) => {
        const since = this.awaitingAward.get(e.taskId);
        if (since === undefined) return;
        this.awaitingAward.delete(e.taskId);
        this.awardLatency.observe(Math.max(0, e.at - since) / 1000);
      }),
      ev.on("attemptFailed", (e) => {
        this.failed.inc({ outcome: attemptOutcomeLabel(e.outcome) });
        this.penalties.inc();
        // Past the deadline or at the last attempt the task ends instead (market.ts startAttempt).
        if (e.outcome !== "deadline" && e.attempt < this.s.maxAttempts) this.reauctions.inc();
      }),
      ev.on("taskFinished", (e) => {
        this.awaitingAward.delete(e.taskId);
        const skill = skillLabel(e.skill);
        this.finished.inc({ outcome: outcomeLabel(e.status, e.error?.code), skill });
        this.duration.observe({ status: e.status }, Math.max(0, e.totalMs) / 1000);
        const cost = e.delivered?.cost;
        if (cost?.energyJ !== undefined && cost.energyJ > 0) this.energy.inc({ skill }, cost.energyJ);
        if (cost?.tokens !== undefined && cost.tokens > 0) this.tokens.inc({ skill }, cost.tokens);
      }),
      ev.on("feedback", (e) => this.feedback.inc({ success: String(e.verdict.success) })),
    ];
  }

  /** The text exposition format (what `/metrics` serves). */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async close(): Promise<void> {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.awaitingAward.clear();
  }
}
