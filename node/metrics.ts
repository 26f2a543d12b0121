/**
 * A node's own Prometheus metrics (opt-in: `colony node --metrics-port N`; docs/operations.md, "A
 * node's metrics"): what this device did, read at scrape time from the daemon's Counters and agent
 * pool, so nothing is counted twice. Names carry `colony_node_`, so one Prometheus can scrape the
 * coordinator and every node without a clash; the node is the scrape target (Prometheus adds the
 * `instance` label), never a label here. One prom-client Registry per instance (never the global one).
 */
import client from "prom-client";
import type { Counters } from "../common/counters.ts";
import { counterFromReads as fromCounters } from "../common/counter-metrics.ts";
import type { Lifecycle } from "../common/lifecycle.ts";

export interface NodeMetricsSources {
  counters: Counters;
  /** The agents hosted now, with their state (the daemon's pool). */
  agents: () => Iterable<{ state: string }>;
  /** Also the Node.js process metrics (`process_*`, `nodejs_*`). Default true. */
  processMetrics?: boolean;
}

const AGENT_STATES = ["awake", "asleep", "busy", "loading"] as const;

export class NodeMetrics implements Lifecycle {
  readonly registry = new client.Registry();

  constructor(s: NodeMetricsSources) {
    const r = this.registry;
    const c = s.counters;
    const n = (name: string) => () => c.get(name);
    const sum = (prefix: string) => () => Object.entries(c.snapshot()).reduce((t, [k, v]) => (k.startsWith(prefix) ? t + v : t), 0);
    fromCounters(r, "colony_node_tasks_total", "Tasks this node ran, by status (ok, error).", { label: "status", values: { ok: n("tasks.done"), error: n("tasks.failed") } });
    fromCounters(r, "colony_node_tokens_total", "Tokens this node's agents generated for tasks delivered ok.", n("tasks.tokens"));
    fromCounters(r, "colony_node_energy_joules_total", "Joules this node reported for tasks delivered ok (metered, else modelled).", n("tasks.energy.joules"));
    fromCounters(r, "colony_node_bids_total", "Answers to announces, by type (bid, decline).", { label: "type", values: { bid: n("bids"), decline: sum("declines.") } });
    fromCounters(r, "colony_node_model_fetch_bytes_total", "Model bytes fetched from the coordinator, as they arrived (refused transfers included).", n("models.fetch.bytes"));
    fromCounters(r, "colony_node_models_fetched_total", "Pushed models fetched, by result (stored, refused).", { label: "result", values: { stored: n("models.fetched"), refused: n("models.refused") } });
    new client.Gauge({
      name: "colony_node_agents", help: "Agents this node hosts, by state (awake, asleep, busy, loading).", labelNames: ["state"], registers: [r],
      collect() {
        const by = new Map<string, number>(AGENT_STATES.map((st) => [st, 0]));
        for (const a of s.agents()) by.set(a.state, (by.get(a.state) ?? 0) + 1);
        for (const [state, v] of by) this.set({ state }, v);
      },
    });
    if (s.processMetrics !== false) client.collectDefaultMetrics({ register: r });
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  /** The text exposition format (what `/metrics` serves). */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
