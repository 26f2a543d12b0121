/**
 * A deterministic simulation of a fleet under the architect (docs/evolution-bench.md): a fake clock,
 * seeded streams, and the REAL parts that decide and learn: the policy (coordinator/architect/
 * policy.ts, fed by buildHistory over a real Lineage, FitnessBook and Exemplars), the track records
 * (coordinator/market/track-record.ts, fed as reputation.ts feeds them), the coordinator's scoring
 * (pickWinner) and the node's cost model (node/cost-model.ts). No MQTT, no llama.cpp, no store: it
 * measures the policy's dynamics, not the transport. bench/evolution.ts prints it; the unit test
 * test/unit/evolution-sim.test.ts runs a shrunken one.
 *
 * Per task: every node with an agent of the skill bids its best agent as node/bidder.ts picks it
 * (posterior mean of its record with its claim plus the UCB1 bonus when several of its agents could
 * take the task, minus 0.2 x latency share; queue, sleep and wake
 * priced by estimateCost), the coordinator scores the bids with pickWinner (record, exploration,
 * latency, energy), the outcome is drawn from the winner's hidden accuracy, and the market's events
 * go out as market.ts emits them: taskAccepted, attemptAwarded, then taskFinished when the work ends
 * (a machine check: verdict source "check", cost.energyJ from the cost model). Every attempt
 * delivers (no timeouts, no offline nodes). The architect plans once per window (intervalMs =
 * windowMs), 1 ms before the window ends so the demand counter's 10 buckets cover exactly that
 * window, and its decisions are carried out as architect.ts and evolution.ts do: every decision
 * counts against the hourly budget, a spawn beyond the node's maxAgents is refused
 * (POPULATION_LIMIT, recorded in the policy's refusals), a child claims what its parent proved
 * (variation.ts) and starts without a record, a retirement forgets the agent's fitness, a wake
 * keeps the agent loaded (reported awake, bidding without a wake cost) for the decision's holdMs.
 */
import { PROTOCOL_VERSION } from "../common/protocol.ts";
import { claimFor, genomeHash, type Genome } from "../common/genome.ts";
import { FakeClock } from "../common/clock.ts";
import { Rng } from "../common/random.ts";
import { buildHistory } from "../coordinator/architect/history.ts";
import { plan, type PolicyState } from "../coordinator/architect/policy.ts";
import { EvolutionSettingsSchema, type EvolutionSettings } from "../coordinator/architect/settings.ts";
import { Exemplars } from "../coordinator/evolution/exemplars.ts";
import { FitnessBook } from "../coordinator/evolution/fitness.ts";
import { Lineage } from "../coordinator/evolution/lineage.ts";
import { recordKey, type AgentRef } from "../coordinator/market/agent-ref.ts";
import { MarketEventBus, type TaskFinished } from "../coordinator/market/events.ts";
import { explorationBonus, pickWinner, posteriorMean, type BidView } from "../coordinator/market/scoring.ts";
import { TrackRecords } from "../coordinator/market/track-record.ts";
import type { NodeEntry } from "../coordinator/registry.ts";
import { estimateCost } from "../node/cost-model.ts";
import { WARMUP_TRIALS } from "../node/bidder.ts";
import { childAccuracy, deviceClasses, dominantSkill, FOUNDERS, NODES, shiftingPhases, SKILLS, type DeviceClass, type Phase, type Skill } from "./_evolution-fleet.ts";
import { summarise, type DecisionRecord, type SimResult, type Win, type WindowReport } from "./_evolution-report.ts";

export type { SimResult } from "./_evolution-report.ts";

const HOUR = 3600_000;
export const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const PROMPT = "12345678901234567890123456789012"; // 32 characters, the length every task is priced at
const MAX_TOKENS = 16;

/** What the simulation overrides in the defaults (settings.ts), for a one-hour window and ~240 tasks per window. */
export const SIM_SETTINGS = { intervalMs: HOUR, windowMs: HOUR, minTrials: 20, spawnDemandPerAgent: 48, idleRetireMs: 6 * HOUR, fleetMaxAgents: 16 } as const;

/**
 * The documented bound: the niche the demand moved to gains an agent within this many windows of
 * the shift (the first plan after the shift sees one full window of the new demand; one more window
 * allows for a child of the same skill that is still young, or a budget spent by other spawns).
 */
export const FOLLOW_WITHIN_WINDOWS = 2;

export interface SimOptions {
  /** Seeds every stream (tasks, outcomes, children, ties, the policy). Default 1. */
  seed?: number;
  /** The task mix over time. Default shiftingPhases(): mostly add, then reverse, then sort. */
  phases?: Phase[];
  /** Default 8. */
  windowsPerPhase?: number;
  /** Default 240. */
  tasksPerWindow?: number;
  /** Over SIM_SETTINGS, over the defaults of settings.ts. Default none. */
  settings?: Partial<EvolutionSettings>;
  /** Whether the submitter's verdicts count in full (reputation.ts trustedSubmitters). Default true. */
  trustedSubmitter?: boolean;
  /** false: a frozen fleet, no architect. Default true. */
  architect?: boolean;
  /** Each task's time budget. Default 60000 (the coordinator's defaultDeadlineMs). */
  deadlineMs?: number;
}

interface SimAgent {
  nodeId: string;
  genome: Genome;
  hash: string;
  accuracy: Partial<Record<Skill, number>>;
  generation: number;
  lastUsedAt: number;
  /** A wake decision keeps the agent loaded until then (the node's hold). */
  heldUntil: number;
  bornWindow: number;
  wins: number;
}

interface SimNode {
  nodeId: string;
  cls: DeviceClass;
  agents: SimAgent[];
  slotFreeAt: number[];
}

// The lineage's store section, in memory: the simulation keeps no history on disk.
const memorySection = () => ({ put: async () => {}, batch: async () => {}, async *iterator() {} }) as unknown as ConstructorParameters<typeof Lineage>[0];

export async function simulate(o: SimOptions = {}): Promise<SimResult> {
  const sim = new FleetSim(o);
  await sim.start();
  return sim.run();
}

class FleetSim {
  readonly settings: EvolutionSettings;
  private readonly phases: Phase[];
  private readonly clock = new FakeClock(T0);
  // A throwing listener must fail the simulation, not be swallowed as the market's bus would.
  private readonly bus = new MarketEventBus((err) => {
    throw err;
  });
  private readonly records = new TrackRecords();
  private readonly fitness: FitnessBook;
  private readonly exemplars = new Exemplars(this.bus);
  private readonly lineage = new Lineage(memorySection());
  private readonly nodes: SimNode[];
  // Separate streams: the frozen fleet sees the same tasks as the evolving one.
  private readonly taskRng: Rng;
  private readonly outcomeRng: Rng;
  private readonly childRng: Rng;
  private readonly tieRng: Rng;
  private state: PolicyState = { cycle: 0, dominatedSince: {}, recent: [], refusals: [] };
  private pending: TaskFinished[] = [];
  private seq = 0;
  private readonly decisions: DecisionRecord[] = [];
  private readonly everBorn: SimAgent[] = [];
  private readonly wins: Win[] = [];
  private window = 0;
  private phaseSkill: Skill = "add";
  private tally: { taken: number; heldBackWhy: string[] } = { taken: 0, heldBackWhy: [] };
  private readonly lastAgentLost: SimResult["lastAgentLost"] = [];
  private nextPlanAt: number;

  constructor(private readonly o: SimOptions) {
    this.settings = EvolutionSettingsSchema.parse({ ...SIM_SETTINGS, ...o.settings });
    this.phases = o.phases ?? shiftingPhases();
    const seed = o.seed ?? 1;
    this.taskRng = new Rng(`${seed}:tasks`);
    this.outcomeRng = new Rng(`${seed}:outcomes`);
    this.childRng = new Rng(`${seed}:children`);
    this.tieRng = new Rng(`${seed}:ties`);
    this.nextPlanAt = T0 + this.settings.intervalMs - 1;
    this.fitness = new FitnessBook({ events: this.bus, windowMs: this.settings.windowMs, record: (a, s) => this.records.get(recordKey(a), s), now: () => this.clock.now() });
    const classes = new Map(deviceClasses().map((c) => [c.name, c]));
    this.nodes = NODES.map((n) => ({ nodeId: n.nodeId, cls: classes.get(n.deviceClass)!, agents: [], slotFreeAt: new Array<number>(classes.get(n.deviceClass)!.profile.slots).fill(0) }));
  }

  async start(): Promise<void> {
    const trusted = this.o.trustedSubmitter ?? true;
    // As reputation.ts: one observation per delivered attempt, in the base (trusted) or the submitter's window.
    this.bus.on("taskFinished", (e) => {
      const d = e.delivered;
      if (d) this.records.note(recordKey(d), e.skill, d.verdict.success, trusted ? undefined : { submitter: e.submitter, taskId: e.taskId });
    });
    this.fitness.start();
    this.exemplars.start();
    for (const f of FOUNDERS) this.node(f.nodeId).agents.push({ nodeId: f.nodeId, genome: f.genome, hash: genomeHash(f.genome), accuracy: f.accuracy, generation: 0, lastUsedAt: -Infinity, heldUntil: 0, bornWindow: -1, wins: 0 });
    for (const n of this.nodes) await this.lineage.observe(n.nodeId, this.status(n), T0);
  }

  private node(id: string): SimNode {
    return this.nodes.find((n) => n.nodeId === id)!;
  }

  private asleep(a: SimAgent, cls: DeviceClass, now: number): boolean {
    return now >= a.heldUntil && now - a.lastUsedAt >= cls.profile.sleepAfterMs;
  }

  private status(n: SimNode): NonNullable<NodeEntry["status"]> {
    const now = this.clock.now();
    const agents = n.agents.map((a) => ({
      agentId: a.genome.id, skills: a.genome.skills, model: a.genome.model, state: this.asleep(a, n.cls, now) ? ("asleep" as const) : ("awake" as const),
      genome: a.hash, spec: a.genome, generation: a.generation, ...(a.genome.parent ? { parent: a.genome.parent } : {}),
    }));
    return { state: "online", nodeId: n.nodeId, protocol: PROTOCOL_VERSION, deviceClass: n.cls.name, slots: n.cls.profile.slots, agents, models: [...new Set(agents.map((a) => a.model))], at: now };
  }

  private registry() {
    const now = this.clock.now();
    return {
      list: (): NodeEntry[] =>
        this.nodes.map((n) => {
          const status = this.status(n);
          return { nodeId: n.nodeId, online: true, status, heartbeat: { nodeId: n.nodeId, at: now, busy: 0, queued: 0, agents: status.agents.map((a) => ({ agentId: a.agentId, state: a.state })) }, lastSeen: now };
        }),
    };
  }

  private advanceTo(t: number): void {
    // Finishes due by then go out first, in time order, each at its own time.
    while (this.pending.length && this.pending[0]!.at <= t) {
      const e = this.pending.shift()!;
      this.clock.advance(e.at - this.clock.now());
      this.bus.emit("taskFinished", e);
    }
    this.clock.advance(t - this.clock.now());
  }

  /** One task through the market; returns its outcome and cost. */
  private task(skill: Skill, deadlineMs: number): { success: boolean; energyJ: number } | undefined {
    const now = this.clock.now();
    const taskId = `t${++this.seq}`;
    this.bus.emit("taskAccepted", { taskId, skill, submit: { prompt: PROMPT, skill }, maxTokens: MAX_TOKENS, deadlineAt: now + deadlineMs, at: now });
    const offers: { bid: BidView; agent: SimAgent; node: SimNode; est: ReturnType<typeof estimateCost>; start: number }[] = [];
    for (const n of this.nodes) {
      const start = Math.max(now, Math.min(...n.slotFreeAt));
      let best: (typeof offers)[number] | undefined;
      let bestScore = -Infinity;
      const able = n.agents.filter((a) => a.genome.skills.includes(skill));
      const nodeTrials = able.reduce((t, a) => { const r = this.records.get(recordKey(ref(a)), skill); return t + r.successes + r.failures; }, 0);
      for (const a of able) {
        const est = estimateCost({
          promptChars: PROMPT.length, maxTokens: MAX_TOKENS, contextSize: a.genome.contextSize ?? 256, asleep: this.asleep(a, n.cls, start), queueMs: start - now,
          calibration: n.cls.calibration, threads: n.cls.threads, snapshot: { cpuLoad: 0, freeMemMB: 4096, totalMemMB: 8192, at: now }, profile: n.cls.profile,
        });
        if (est.latencyMs > deadlineMs) continue;
        const claim = claimFor(a.genome, skill);
        // node/bidder.ts: the node's own pick among its agents, exploring (UCB1, each agent first WARMUP_TRIALS times) when several could take the task.
        const rec = this.records.get(recordKey(ref(a)), skill);
        const tried = rec.successes + rec.failures;
        const bonus = able.length <= 1 ? 0 : tried < WARMUP_TRIALS ? 10 : explorationBonus(tried, nodeTrials);
        const score = posteriorMean(claim, rec) + bonus - 0.2 * (est.latencyMs / deadlineMs);
        if (score > bestScore) {
          bestScore = score;
          best = { bid: { key: n.nodeId, agentId: a.genome.id, latencyMs: est.latencyMs, energyJ: est.energyJ, accuracy: claim }, agent: a, node: n, est, start };
        }
      }
      if (best) offers.push(best);
    }
    const { winner } = pickWinner(offers.map((x) => x.bid), (b) => this.records.get(recordKey(ref(offers.find((x) => x.bid === b)!.agent)), skill), this.records.total(skill), { budgetMs: deadlineMs }, () => this.tieRng.next());
    if (!winner) return undefined;
    const w = offers.find((x) => x.bid.key === winner.key)!;
    const { agent: a, node: n, est } = w;
    this.bus.emit("attemptAwarded", {
      taskId, skill, attempt: 1, auctionId: `${taskId}.1`, nodeId: n.nodeId, agentId: a.genome.id, genome: a.hash,
      bid: { latencyMs: est.latencyMs, energyJ: est.energyJ, accuracy: w.bid.accuracy, wakeMs: est.wakeMs, queueMs: est.queueMs }, score: winner.score, bids: offers.length, at: now,
    });
    const end = w.start + est.computeMs;
    n.slotFreeAt[n.slotFreeAt.indexOf(Math.min(...n.slotFreeAt))] = end;
    a.lastUsedAt = end;
    a.wins++;
    this.wins.push({ skill, window: this.window, bornWindow: a.bornWindow, generation: a.generation });
    const success = this.outcomeRng.next() < (a.accuracy[skill] ?? 0);
    const output = success ? "ok" : "wrong";
    const finished: TaskFinished = {
      taskId, submitter: "bench", skill, prompt: PROMPT, status: success ? "ok" : "error", ...(success ? {} : { error: { code: "CHECK_FAILED", message: "output did not pass the check" } }),
      attempts: 1, totalMs: end - now, at: end,
      delivered: { attempt: 1, nodeId: n.nodeId, agentId: a.genome.id, genome: a.hash, output, verdict: { success, source: "check" }, cost: { energyJ: est.energyJ, energySource: "model", tokens: est.genTokens } },
    };
    const i = this.pending.findIndex((p) => p.at > end);
    this.pending.splice(i < 0 ? this.pending.length : i, 0, finished);
    return { success, energyJ: est.energyJ };
  }

  async run(): Promise<SimResult> {
    const perPhase = this.o.windowsPerPhase ?? 8;
    const perWindow = this.o.tasksPerWindow ?? 240;
    const deadlineMs = this.o.deadlineMs ?? 60_000;
    const W = this.settings.windowMs;
    const windows: WindowReport[] = [];
    let w = 0;
    for (const phase of this.phases) {
      this.phaseSkill = dominantSkill(phase);
      for (let k = 0; k < perPhase; k++, w++) {
        this.window = w;
        this.tally = { taken: 0, heldBackWhy: [] };
        const start = T0 + w * W;
        let tasks = 0;
        let successes = 0;
        let energyJ = 0;
        for (let i = 0; i < perWindow; i++) {
          const skill = pickSkill(phase, this.taskRng);
          // Poisson-like arrivals: each task at a random instant of its slot of the window.
          await this.until(start + Math.floor(((i + this.taskRng.next()) * (W - 1)) / perWindow));
          const r = this.task(skill, deadlineMs);
          tasks++;
          if (r?.success) successes++;
          energyJ += r?.energyJ ?? 0;
        }
        await this.until(start + W - 1);
        const per = this.agentsPerSkill();
        const niches = new Set(this.nodes.flatMap((n) => n.agents.flatMap((a) => a.genome.skills.map((s) => `${s}@${n.cls.name}`))));
        windows.push({
          window: w, phase: phase.name, tasks, successes, energyJ, accuracy: successes / tasks, joulesPerTask: energyJ / tasks, successesPerKJ: energyJ > 0 ? (successes / energyJ) * 1000 : 0,
          population: this.nodes.reduce((s, n) => s + n.agents.length, 0), agentsPerSkill: per, niches: niches.size, skillsCovered: SKILLS.filter((s) => per[s] > 0).length,
          taken: this.tally.taken, heldBack: this.tally.heldBackWhy.length, heldBackWhy: this.tally.heldBackWhy, wonByChildren: this.wins.filter((x) => x.window === w && x.generation > 0).length,
        });
      }
    }
    this.fitness.close();
    this.exemplars.close();
    return summarise({
      settings: this.settings, phases: this.phases, perPhase, windows, decisions: this.decisions, wins: this.wins, lastAgentLost: this.lastAgentLost,
      foundersWith: (skill) => FOUNDERS.filter((f) => f.genome.skills.includes(skill)).length,
      children: {
        born: this.everBorn.length, everWon: this.everBorn.filter((a) => a.wins > 0).length,
        retiredNeverWon: this.everBorn.filter((a) => a.wins === 0 && !this.nodes.some((n) => n.agents.includes(a))).length,
      },
    });
  }

  /** Runs the clock to `t`: finishes in time order, and the architect every intervalMs (1 ms before each multiple, see above). */
  private async until(t: number): Promise<void> {
    while (this.o.architect !== false && this.nextPlanAt <= t) {
      this.advanceTo(this.nextPlanAt);
      await this.cycle(this.window);
      const per = this.agentsPerSkill();
      for (const s of SKILLS) if (per[s] === 0) this.lastAgentLost.push({ window: this.window, skill: s });
      this.nextPlanAt += this.settings.intervalMs;
    }
    this.advanceTo(t);
  }

  private agentsPerSkill(): Record<Skill, number> {
    const per = Object.fromEntries(SKILLS.map((s) => [s, 0])) as Record<Skill, number>;
    for (const n of this.nodes) for (const a of n.agents) for (const s of a.genome.skills) if (s in per) per[s as Skill]++;
    return per;
  }

  /** One architect cycle, as architect.ts runs it (every node is online; distil decisions are not simulated). */
  private async cycle(window: number): Promise<void> {
    const now = this.clock.now();
    const history = buildHistory({ now, seed: this.o.seed ?? 1, evolution: { lineage: this.lineage, fitness: this.fitness, exemplars: this.exemplars }, registry: this.registry(), settings: this.settings, state: this.state });
    const p = plan(history);
    const heldBackWhy = this.tally.heldBackWhy;
    heldBackWhy.push(...p.heldBack.map((h) => `${h.decision.kind} ${h.decision.niche ?? h.decision.agentId}: ${h.why}`));
    for (const d of p.decisions) {
      if (d.kind === "distil") {
        heldBackWhy.push(`distil ${d.niche}: not simulated (distillation is measured by bench distil-fleet)`);
        continue;
      }
      p.state.recent.push({ kind: d.kind, at: now });
      this.tally.taken++;
      const rec: DecisionRecord = { window, at: now, kind: d.kind, agentId: d.agentId, nodeId: d.nodeId, niche: d.niche, reason: d.reason, phaseSkill: this.phaseSkill, ...(d.child ? { skills: d.child.genome.skills } : {}) };
      this.decisions.push(rec);
      if (d.kind === "spawn" && d.child) {
        const parentView = history.agents.find((a) => a.agentId === d.parents?.[0] && a.spec)!;
        const parent = this.node(parentView.nodeId).agents.find((a) => a.genome.id === parentView.agentId)!;
        const n = this.node(d.nodeId);
        await this.lineage.spawning({ nodeId: n.nodeId, agentId: d.agentId, genome: d.child.hash, spec: d.child.genome, parents: [parent.genome.id], generation: parent.generation + 1, reason: d.reason }, now);
        if (n.agents.length >= n.cls.maxAgents) {
          rec.refused = "POPULATION_LIMIT";
          await this.lineage.ended(n.nodeId, d.agentId, "refused", `refused by node ${n.nodeId}: POPULATION_LIMIT`, now);
          p.state.refusals.push({ nodeId: n.nodeId, parent: parent.genome.id, at: now, code: "POPULATION_LIMIT" });
          continue;
        }
        const child: SimAgent = { nodeId: n.nodeId, genome: d.child.genome, hash: d.child.hash, accuracy: childAccuracy(parent.accuracy, this.childRng), generation: parent.generation + 1, lastUsedAt: -Infinity, heldUntil: 0, bornWindow: window, wins: 0 };
        this.everBorn.push(child);
        n.agents.push(child);
        await this.lineage.born(n.nodeId, d.agentId, d.child.hash, now);
      } else if (d.kind === "retire") {
        const n = this.node(d.nodeId);
        const a = n.agents.find((x) => x.genome.id === d.agentId)!;
        n.agents.splice(n.agents.indexOf(a), 1);
        await this.lineage.ended(n.nodeId, d.agentId, "retired", d.reason, now);
        this.fitness.forget(ref(a));
      } else if (d.kind === "wake") {
        const a = this.node(d.nodeId).agents.find((x) => x.genome.id === d.agentId);
        if (a) a.heldUntil = now + (d.holdMs ?? HOUR);
      }
    }
    this.state = p.state;
  }

}

const ref = (a: SimAgent): AgentRef => ({ nodeId: a.nodeId, agentId: a.genome.id, genome: a.hash });

function pickSkill(p: Phase, rng: Rng): Skill {
  let x = rng.next();
  for (const s of SKILLS) if ((x -= p.mix[s]) < 0) return s;
  return SKILLS[SKILLS.length - 1]!;
}
