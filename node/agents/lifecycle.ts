/**
 * The node side of agent life cycle (docs/node.md, "Agent life cycle"): the coordinator's spawn,
 * retire and wake (keep-warm) commands, obeyed one at a time in the order they came (one promise
 * chain), each answered by one ack on `nodes/{nodeId}/command-ack` with `at` on the node's clock.
 *
 * - spawn: idempotent by outcome (the same genome again: `exists`; another genome under the id:
 *   AGENT_EXISTS). Checked before anything is stored: the population limit, the model (found,
 *   verified by the gate, adapter included), the memory the model can ever get, the disk a
 *   download needs. The agent is created asleep (nothing is loaded), stored, then announced.
 * - retire: the agent leaves the pool at once (no new bids or awards); its accepted tasks finish
 *   first (up to `retireWaitMs`, else AGENT_BUSY and the agent is back); then it sleeps (its model
 *   is disposed when no other agent uses it) and the retirement is stored.
 * - wake: wakes the agent and holds it awake for `holdMs` (the pool's idle and memory sleepers skip it).
 * - train-quote, train, train-cancel: handed to the node's trainer (node/trainer/), beside the chain.
 * - fetch: fetches and verifies a pushed model (node/models/model-fetcher.ts) so a later spawn of a
 *   `colony:<sha256>` genome starts at once; beside the chain (a transfer may take minutes). Acks
 *   `fetched`, `exists` (already held) or `refused` with the model's code.
 */
import type { Clock } from "../../common/clock.ts";
import { ColonyError, CommonErrors } from "../../common/errors.ts";
import { genomeHash } from "../../common/genome.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import { channels, type Command, type CommandAck, type Outbox } from "../../common/protocol.ts";
import { NodeErrors } from "../errors.ts";
import type { AgentMaker } from "./agent-maker.ts";
import type { AgentPool } from "./agent-pool.ts";
import type { AgentStore } from "./agent-store.ts";
import type { CommandIntake } from "./command-intake.ts";

export interface LifecycleParts {
  nodeId: string;
  pool: AgentPool;
  store: AgentStore;
  maker: AgentMaker;
  /** True once every accepted task of the agent has ended, false after `withinMs` (jobs.ts). */
  settled: (agentId: string, withinMs: number) => Promise<boolean>;
  /** The population limit (profile.ts maxAgentsFor). */
  maxAgents: () => number;
  /** MB a model needs when loaded (the pool's estimate). */
  modelNeedMB: (file: string) => number;
  /** MB the device can ever give models: total memory less the profile's reserve. */
  memoryForModelsMB: () => number;
  publishStatus: () => void;
  out: Outbox;
  clock: Clock;
  logger: Logger;
  /**
   * How long a retire waits for the agent's running and queued tasks before it refuses with
   * AGENT_BUSY. Default 120 000 ms (a task's deadline usually ends it sooner).
   */
  retireWaitMs?: number | undefined;
  /** Fetches and verifies a pushed model (node/models/model-fetcher.ts); absent: fetch commands are refused. */
  models?: { ensure(sha256: string): Promise<{ fetchedBytes: number }> } | undefined;
  /** The node's trainer (node/trainer/trainer-desk.ts); absent: training commands are refused with TRAINER_OFF. */
  trainer?: { onCommand(c: TrainingCommand): Promise<Outcome> } | undefined;
}

type TrainingCommand = Extract<Command, { kind: "train-quote" | "train" | "train-cancel" }>;
type Outcome = Pick<CommandAck, "status" | "genome" | "error" | "quote">;

const isTraining = (c: Command): c is TrainingCommand => c.kind === "train-quote" || c.kind === "train" || c.kind === "train-cancel";

export class AgentLifecycle implements Lifecycle {
  private chain: Promise<void> = Promise.resolve();
  private closing = false;
  /** Aborted at close: a spawn's download stops. */
  private readonly abort = new AbortController();
  private stop!: () => void;
  /** Resolves at close: a retire waiting for tasks gives up (no ack; the coordinator re-sends). */
  private readonly stopped = new Promise<undefined>((r) => (this.stop = () => r(undefined)));

  constructor(private readonly p: LifecycleParts) {}

  async start(): Promise<void> {}

  /** Waits for the command in progress; later commands are left unacked (the coordinator re-sends them). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stop();
    this.abort.abort(new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is shutting down"));
    await Promise.all([this.chain, ...this.fetches]);
  }

  onCommand(c: Command): void {
    // A transfer may take minutes, and a training command answers at once while its job runs on:
    // both go beside the chain, holding up no spawn, retire or wake.
    if (c.kind === "fetch" || isTraining(c)) {
      const done = this.answer(c, () => (isTraining(c) ? this.train(c) : this.fetch(c as Extract<Command, { kind: "fetch" }>)));
      this.fetches.add(done);
      void done.finally(() => this.fetches.delete(done));
      return;
    }
    this.enqueue(c, () => this.run(c));
  }

  private readonly fetches = new Set<Promise<void>>();

  private async fetch(c: Extract<Command, { kind: "fetch" }>): Promise<Outcome> {
    if (!this.p.models) throw new ColonyError(NodeErrors.MODEL_MISSING, `${this.p.nodeId} fetches no pushed models`);
    const r = await this.p.models.ensure(c.sha256);
    return { status: r.fetchedBytes > 0 ? "fetched" : "exists" };
  }

  private train(c: TrainingCommand): Promise<Outcome> {
    if (!this.p.trainer) return Promise.reject(new ColonyError(NodeErrors.TRAINER_OFF, `${this.p.nodeId} does not offer training (config "trainer")`));
    return this.p.trainer.onCommand(c);
  }

  onBadCommand(r: Extract<CommandIntake, { kind: "refuse" }>): void {
    this.enqueue({ commandId: r.commandId, agentId: r.agentId, kind: r.command }, async () => ({ status: "refused", error: r.error }));
  }

  private enqueue(c: Pick<Command, "commandId" | "agentId" | "kind">, fn: () => Promise<Outcome | undefined>): void {
    this.chain = this.chain.then(() => this.answer(c, fn));
  }

  /** Runs one command and acks its outcome (none when the node is closing: the coordinator re-sends). */
  private async answer(c: Pick<Command, "commandId" | "agentId" | "kind">, fn: () => Promise<Outcome | undefined>): Promise<void> {
    if (this.closing) return;
    let outcome: Outcome | undefined;
    try {
      outcome = await fn();
    } catch (err) {
      // A command cut short by the shutdown is not answered: the coordinator re-sends it.
      if (this.closing) return;
      const e = err instanceof ColonyError ? err : new ColonyError(CommonErrors.INTERNAL, (err as Error)?.message ?? String(err));
      outcome = { status: "refused", error: { code: e.code, message: e.message.slice(0, 4000) } };
    }
    if (!outcome) return;
    const { nodeId } = this.p;
    this.p.logger.info({ commandId: c.commandId, agentId: c.agentId, kind: c.kind, status: outcome.status, code: outcome.error?.code }, "life cycle command");
    this.p.out.send(channels.nodeCommandAck, [nodeId], { commandId: c.commandId, nodeId, agentId: c.agentId, kind: c.kind, ...outcome, at: this.p.clock.now() });
  }

  private run(c: Command): Promise<Outcome | undefined> {
    switch (c.kind) {
      case "spawn":
        return this.spawn(c);
      case "retire":
        return this.retire(c);
      case "wake":
        return this.wake(c);
      case "fetch":
        return this.fetch(c);
      default:
        return this.train(c);
    }
  }

  private async spawn(c: Extract<Command, { kind: "spawn" }>): Promise<Outcome> {
    const { pool } = this.p;
    const hash = genomeHash(c.genome);
    const hosted = pool.get(c.agentId);
    if (hosted) {
      if (hosted.genomeHash === hash) return { status: "exists", genome: hash };
      throw new ColonyError(NodeErrors.AGENT_EXISTS, `agent ${c.agentId} exists on ${this.p.nodeId} with genome ${hosted.genomeHash.slice(0, 12)}; the spawn's is ${hash.slice(0, 12)}`);
    }
    const limit = this.p.maxAgents();
    if (pool.agents.size >= limit) throw new ColonyError(NodeErrors.POPULATION_LIMIT, `${this.p.nodeId} hosts ${pool.agents.size} agents; its limit is ${limit}`);
    const agent = await this.p.maker.spawned(c.genome, c.lineage.generation, {}, this.abort.signal);
    const need = this.p.modelNeedMB(agent.modelFile);
    const room = this.p.memoryForModelsMB();
    if (need > room) throw new ColonyError(NodeErrors.MEMORY_BUDGET, `${c.genome.model.slice(0, 200)} needs ~${Math.round(need)} MB loaded; ${this.p.nodeId} has ${Math.round(room)} MB above its reserve`);
    await this.p.store.putSpawned({ genome: c.genome, lineage: c.lineage, at: this.p.clock.now(), files: { model: agent.modelFile, adapter: agent.adapterFile } });
    pool.add(agent);
    this.p.publishStatus();
    return { status: "created", genome: agent.genomeHash };
  }

  private async retire(c: Extract<Command, { kind: "retire" }>): Promise<Outcome | undefined> {
    const { pool, store } = this.p;
    const record = { at: this.p.clock.now(), reason: c.reason };
    const agent = pool.get(c.agentId);
    if (!agent) {
      // A stored spawn the node could not host at its start: forget it too.
      if (store.spawned(c.agentId)) await store.retire(c.agentId, record);
      return { status: "absent" };
    }
    // Out of the pool first: no new bid or award for it while its accepted tasks finish.
    pool.remove(c.agentId);
    this.p.publishStatus();
    const idle = await Promise.race([this.p.settled(c.agentId, this.p.retireWaitMs ?? 120_000), this.stopped]);
    if (idle !== true) {
      pool.add(agent);
      if (idle === undefined) return undefined;
      this.p.publishStatus();
      throw new ColonyError(NodeErrors.AGENT_BUSY, `agent ${c.agentId} still has tasks after ${this.p.retireWaitMs ?? 120_000} ms; it keeps working`);
    }
    await agent.sleep();
    await store.retire(c.agentId, record);
    this.p.publishStatus();
    return { status: "retired" };
  }

  private async wake(c: Extract<Command, { kind: "wake" }>): Promise<Outcome> {
    const agent = this.p.pool.get(c.agentId);
    if (!agent) throw new ColonyError(NodeErrors.AGENT_NOT_FOUND, `no agent ${c.agentId} on ${this.p.nodeId}`);
    // MEMORY_RESERVE (or a load failure) propagates with its code.
    await this.p.pool.ensureAwake(agent);
    this.p.pool.hold(agent, this.p.clock.now() + c.holdMs);
    return { status: "warmed" };
  }
}
