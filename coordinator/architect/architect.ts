/**
 * The architect: a scheduled coordinator part that reads history (evolution's lineage and fitness
 * book, the registry) every `intervalMs`, asks the pure policy (policy.ts) for decisions, carries
 * them out through evolution's life cycle commands (unless dry-run), and keeps every cycle's report
 * in the store (section `arch`, the last 1000) and on the retained `architect/decisions` topic,
 * which `colony architect plan` prints. It reads only in-memory views kept up to date by events, so a
 * cycle costs O(agents x niches), not a scan of the store.
 */
import { every, type Clock, type Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, type ArchitectReport, type Decision, type NicheFitness, type Outbox } from "../../common/protocol.ts";
import type { Evolution } from "../evolution/evolution.ts";
import type { TaskStore } from "../market/task-store.ts";
import type { Registry } from "../registry.ts";
import { buildHistory } from "./history.ts";
import { plan, type History, type Planned, type PolicyState } from "./policy.ts";
import type { EvolutionSettings } from "./settings.ts";

export interface ArchitectOptions {
  store: TaskStore;
  evolution: Evolution;
  registry: Registry;
  out: Outbox;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  settings: EvolutionSettings;
  seed: number;
  /** The collective mind's entry for distil decisions (coordinator/mind/mind.ts); absent: they are held back. */
  distil?: (d: Decision) => Promise<void>;
}

const KEEP_REPORTS = 1000;
const wire = ({ child: _c, ...d }: Planned): Decision => d;

export class Architect implements Lifecycle {
  private state: PolicyState = { cycle: 0, dominatedSince: {}, recent: [], refusals: [] };
  private section!: ReturnType<TaskStore["section"]>;
  private timer: Timer | undefined;
  private running: Promise<ArchitectReport> | undefined;
  private closed = false;
  last: ArchitectReport | undefined;

  constructor(private readonly o: ArchitectOptions) {}

  async start(): Promise<void> {
    this.section = this.o.store.section("arch");
    const saved = (await this.section.get("state")) as PolicyState | undefined;
    if (saved) this.state = saved;
    this.timer = every(this.o.clock, this.o.settings.intervalMs, () => void this.cycle().catch((err) => this.o.logger.error({ err }, "architect cycle failed")));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    await this.running?.catch(() => {});
  }

  /** One decision cycle now (the timer's, a test's); a cycle already running is awaited instead. */
  cycle(): Promise<ArchitectReport> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<ArchitectReport> {
    const { evolution, registry, settings } = this.o;
    const now = this.o.clock.now();
    const history = buildHistory({ now, seed: this.o.seed, evolution, registry, settings, state: this.state });
    const p = plan(history);
    // Fitness history goes into every living agent's lineage, whatever is decided.
    const fitness = new Map<string, NicheFitness[]>();
    for (const a of history.agents) fitness.set(`${a.nodeId}/${a.agentId}`, a.fitness.map((f) => ({ niche: `${f.skill}@${a.deviceClass}`, success: f.success, trials: f.trials, wins: f.wins, ...(f.energyPerSuccessJ !== undefined ? { energyPerSuccessJ: f.energyPerSuccessJ } : {}), ...(f.latencyMs !== undefined ? { latencyMs: f.latencyMs } : {}) })));
    await evolution.lineage.recordFitness(fitness, now);
    const heldBack = p.heldBack.map((h) => ({ decision: wire(h.decision), why: h.why }));
    const done: Decision[] = [];
    for (const d of p.decisions) {
      if (this.closed) break;
      if (settings.dryRun) {
        done.push(wire(d));
        continue;
      }
      if (!registry.isOnline(d.nodeId)) {
        heldBack.push({ decision: wire(d), why: `node ${d.nodeId} is offline` });
        continue;
      }
      if (d.kind === "distil" && !this.o.distil) {
        heldBack.push({ decision: wire(d), why: "no collective mind installed to distil" });
        continue;
      }
      p.state.recent.push({ kind: d.kind, at: now });
      done.push(wire(d));
      this.o.counters.inc(`architect.${d.kind}`);
      await this.carryOut(d, p.state, history.agents).catch((err) => this.o.logger.error({ err, decision: wire(d) }, "carrying out a decision failed"));
    }
    this.state = p.state;
    const report: ArchitectReport = { at: now, cycle: p.state.cycle, dryRun: settings.dryRun, decisions: done, heldBack };
    await this.section.batch([
      { type: "put", key: "state", value: this.state as never },
      { type: "put", key: `dec:${String(report.cycle).padStart(12, "0")}`, value: report as never },
      ...(report.cycle > KEEP_REPORTS ? [{ type: "del" as const, key: `dec:${String(report.cycle - KEEP_REPORTS).padStart(12, "0")}` }] : []),
    ]);
    this.last = report;
    if (!this.closed) {
      this.o.out.send(channels.architectDecisions, [], report);
      evolution.changed();
    }
    if (done.length) this.o.logger.info({ cycle: report.cycle, decisions: done.map((d) => `${d.kind} ${d.agentId}@${d.nodeId}: ${d.reason}`) }, "architect decided");
    return report;
  }

  private async carryOut(d: Planned, st: PolicyState, agents: History["agents"]): Promise<void> {
    const ev = this.o.evolution;
    const now = () => this.o.clock.now();
    if (d.kind === "spawn" && d.child) {
      const parent = agents.find((a) => a.agentId === d.parents?.[0] && a.spec);
      if (!parent) return;
      const out = await ev.spawn(d.nodeId, d.child, parent, d.reason);
      if (out.status === "refused" || out.status === "no-answer") {
        st.refusals.push({ nodeId: d.nodeId, parent: parent.agentId, at: now(), code: out.status === "refused" ? (out.error?.code ?? "REFUSED") : "NO_ANSWER" });
      }
    } else if (d.kind === "retire") {
      await ev.retire(d.nodeId, d.agentId, d.reason);
    } else if (d.kind === "wake") {
      await ev.wake(d.nodeId, d.agentId, d.holdMs ?? 3600_000, d.reason);
    } else if (d.kind === "distil") {
      await this.o.distil?.(wire(d));
    }
  }

  /** Reports of the last cycles, newest first (tests, `colony architect` over the store). */
  async reports(limit = 20): Promise<ArchitectReport[]> {
    const out: ArchitectReport[] = [];
    for await (const [, v] of this.section.iterator({ gte: "dec:", lt: "dec:\uffff", reverse: true, limit })) out.push(v as ArchitectReport);
    return out;
  }
}
