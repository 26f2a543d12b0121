/**
 * Evolution's part of the coordinator: the lineage of every agent, the fitness book, the exemplars
 * of verified successes, and the life cycle commands that carry out the architect's decisions. It
 * listens to the market's events and the registry's node statuses; it never edits the market.
 *
 * - A node's status: lineage records founders and agents that left (lineage.ts).
 * - spawn: lineage `pending` -> command -> `created`/`exists`: alive (the child claims what its parent
 *   proved: variation.ts; docs/evolution.md); `refused`: recorded with the node's code.
 * - retire: command -> `retired`/`absent`: the life ends with the decision's reason; the agent's
 *   records stay with the coordinator.
 * - The fitness book's changes are written every `flushMs`; the lineage is published retained
 *   (`evolution/lineage`) at most every `publishMs` after a change.
 */
import { every, type Clock, type Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, type Outbox } from "../../common/protocol.ts";
import type { MarketEventBus } from "../market/events.ts";
import type { Reputation } from "../market/reputation.ts";
import type { TaskStore } from "../market/task-store.ts";
import type { Registry } from "../registry.ts";
import { Commands, type CommandOutcome } from "./commands.ts";
import { Exemplars } from "./exemplars.ts";
import { FitnessBook, type AgentSkillState, type DemandState } from "./fitness.ts";
import { Lineage } from "./lineage.ts";
import type { Child } from "./variation.ts";

export interface EvolutionOptions {
  store: TaskStore;
  events: MarketEventBus;
  registry: Registry;
  reputation: Pick<Reputation, "record">;
  out: Outbox;
  clock: Clock;
  counters: Counters;
  logger: Logger;
  windowMs: number;
  ackTimeoutMs?: number;
  flushMs?: number;
  publishMs?: number;
}

export class Evolution implements Lifecycle {
  lineage!: Lineage;
  readonly fitness: FitnessBook;
  readonly exemplars: Exemplars;
  readonly commands: Commands;
  private section!: ReturnType<TaskStore["section"]>;
  private flushTimer: Timer | undefined;
  private publishTimer: Timer | undefined;
  private observing: Promise<unknown> = Promise.resolve();
  private offStatus: (() => void) | undefined;

  constructor(private readonly o: EvolutionOptions) {
    this.fitness = new FitnessBook({ events: o.events, windowMs: o.windowMs, record: (a, s) => o.reputation.record(a, s), now: () => o.clock.now() });
    this.exemplars = new Exemplars(o.events);
    this.commands = new Commands({ out: o.out, clock: o.clock, counters: o.counters, ackTimeoutMs: o.ackTimeoutMs });
  }

  async start(): Promise<void> {
    this.section = this.o.store.section("evo");
    this.lineage = new Lineage(this.section);
    await this.lineage.load();
    const states: AgentSkillState[] = [];
    const demands: DemandState[] = [];
    for await (const [key, value] of this.section.iterator({ gte: "fit:", lt: "fit:\uffff" })) {
      (key.startsWith("fit:demand|") ? demands : states).push(value as never);
    }
    this.fitness.load(states, demands);
    this.fitness.start();
    this.exemplars.start();
    this.offStatus = this.o.registry.events.on("nodeStatus", ({ nodeId, status }) => {
      // One at a time, in arrival order: two statuses of one node must not interleave their writes.
      this.observing = this.observing.then(() => this.lineage.observe(nodeId, status, this.o.clock.now())).then((n) => n > 0 && this.changed(), (err) => this.o.logger.error({ err }, "lineage update failed"));
    });
    this.flushTimer = every(this.o.clock, this.o.flushMs ?? 5000, () => void this.flush().catch((err) => this.o.logger.error({ err }, "fitness write failed")));
    this.publish();
  }

  async close(): Promise<void> {
    this.offStatus?.();
    this.commands.close();
    this.fitness.close();
    this.exemplars.close();
    this.flushTimer?.cancel();
    this.publishTimer?.cancel();
    await this.observing;
    await this.flush();
  }

  private async flush(): Promise<void> {
    const dirty = this.fitness.takeDirty();
    if (dirty.length) await this.section.batch(dirty.map(({ key, value }) => ({ type: "put" as const, key: `fit:${key}`, value: value as never })));
  }

  /** The lineage changed: publish it soon (coalesced). */
  changed(): void {
    this.publishTimer ??= this.o.clock.setTimer(this.o.publishMs ?? 1000, () => {
      this.publishTimer = undefined;
      this.publish();
    });
  }

  publish(): void {
    this.o.out.send(channels.evolutionLineage, [], this.lineage.snapshot(this.o.clock.now()));
  }

  /** Spawns `child` (of the parent on `parentNodeId`) on `nodeId`; resolves with the node's answer. */
  spawn(nodeId: string, child: Child, parent: { nodeId: string; agentId: string; generation: number }, reason: string): Promise<CommandOutcome> {
    return this.spawnChild(nodeId, child, { parents: [parent.agentId], generation: parent.generation + 1, reason });
  }

  /** Spawns `child` with any number of parents (a distilled child has several) on `nodeId`. */
  async spawnChild(nodeId: string, child: Child, lineage: { parents: string[]; generation: number; reason: string }): Promise<CommandOutcome> {
    const { genome } = child;
    const { reason } = lineage;
    await this.lineage.spawning({ nodeId, agentId: genome.id, genome: child.hash, spec: genome, parents: lineage.parents, generation: lineage.generation, reason }, this.o.clock.now());
    this.changed();
    const outcome = await this.commands.send(nodeId, { kind: "spawn", agentId: genome.id, genome, lineage });
    const now = this.o.clock.now();
    if (outcome.status === "created" || outcome.status === "exists") {
      await this.lineage.born(nodeId, genome.id, outcome.genome ?? child.hash, now);
      this.o.counters.inc("evolution.spawned");
    } else {
      const why = outcome.status === "refused" ? `refused by node ${nodeId}: ${outcome.error?.code ?? "?"} ${outcome.error?.message ?? ""}`.trim() : `node ${nodeId} did not answer the spawn`;
      await this.lineage.ended(nodeId, genome.id, "refused", why, now);
      this.o.counters.inc(`evolution.spawn-refused`);
    }
    this.changed();
    return outcome;
  }

  async retire(nodeId: string, agentId: string, reason: string): Promise<CommandOutcome> {
    const outcome = await this.commands.send(nodeId, { kind: "retire", agentId, reason });
    if (outcome.status === "retired" || outcome.status === "absent") {
      const ref = this.o.registry.ref(nodeId, agentId) ?? { nodeId, agentId, genome: this.lineage.get(nodeId, agentId)?.genome };
      await this.lineage.ended(nodeId, agentId, "retired", reason, this.o.clock.now());
      this.fitness.forget(ref);
      this.o.counters.inc("evolution.retired");
      this.changed();
    }
    return outcome;
  }

  wake(nodeId: string, agentId: string, holdMs: number, reason: string): Promise<CommandOutcome> {
    return this.commands.send(nodeId, { kind: "wake", agentId, holdMs, reason });
  }
}
