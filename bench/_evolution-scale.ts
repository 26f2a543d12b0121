/**
 * The scale figure of bench/evolution.ts: one architect decision cycle over a large history. The
 * market's events for `experiences` tasks (taskAccepted, attemptAwarded, taskFinished with a checked
 * verdict and its joules) across `agents` agents, 5 skills and 4 device classes go into the real
 * FitnessBook, Exemplars and TrackRecords (fed as reputation.ts feeds them); then each cycle does
 * what architect.ts does before it acts: buildHistory over a real in-memory Lineage of every life,
 * the registry's view and the fitness book, then plan(), then the fitness written into the lineage.
 * A cycle reads only this incremental state, never the task store, so its cost depends on agents
 * and niches, not on the number of experiences. Who wins each task is drawn at random (the auction
 * is not what is measured here); the store's writes are not simulated.
 */
import { PROTOCOL_VERSION } from "../common/protocol.ts";
import { GenomeSchema, genomeHash, type Genome } from "../common/genome.ts";
import { FakeClock } from "../common/clock.ts";
import { Rng } from "../common/random.ts";
import { buildHistory } from "../coordinator/architect/history.ts";
import { plan } from "../coordinator/architect/policy.ts";
import { EvolutionSettingsSchema } from "../coordinator/architect/settings.ts";
import { Exemplars } from "../coordinator/evolution/exemplars.ts";
import { FitnessBook } from "../coordinator/evolution/fitness.ts";
import { Lineage } from "../coordinator/evolution/lineage.ts";
import { recordKey } from "../coordinator/market/agent-ref.ts";
import { MarketEventBus } from "../coordinator/market/events.ts";
import { TrackRecords } from "../coordinator/market/track-record.ts";
import type { NodeEntry } from "../coordinator/registry.ts";
import type { NicheFitness } from "../common/protocol.ts";
import { SKILLS } from "./_evolution-fleet.ts";

const HOUR = 3600_000;
const CLASSES = ["raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "x86-laptop"];
const AGENTS_PER_NODE = 8;

export interface ScaleOptions {
  experiences: number;
  agents: number;
  cycles: number;
  seed?: number;
}

export interface ScaleReport {
  experiences: number;
  events: number;
  agents: number;
  nodes: number;
  niches: number;
  ingestSeconds: number;
  eventsPerS: number;
  experiencesPerS: number;
  /** buildHistory + plan, per cycle. */
  cycleMs: { median: number; max: number; all: number[] };
  buildMs: { median: number; max: number };
  planMs: { median: number; max: number };
  /** The fitness written into the lineage after the plan (architect.ts does it every cycle). */
  recordFitnessMs: { median: number; max: number };
  lastPlan: { decisions: number; heldBack: number };
  heapMB: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const stat = (xs: number[]) => ({ median: median(xs), max: Math.max(...xs) });

export async function scaleCycle(o: ScaleOptions): Promise<ScaleReport> {
  const rng = new Rng(`${o.seed ?? 1}:scale`);
  const T0 = Date.UTC(2026, 0, 5);
  // The experiences are spread over 1000 hours (a little over 40 days).
  const spanMs = 1000 * HOUR;
  const clock = new FakeClock(T0);
  const bus = new MarketEventBus((err) => {
    throw err;
  });
  const records = new TrackRecords();
  bus.on("taskFinished", (e) => e.delivered && records.note(recordKey(e.delivered), e.skill, e.delivered.verdict.success));
  const settings = EvolutionSettingsSchema.parse({ windowMs: HOUR, fleetMaxAgents: Math.max(64, o.agents * 2) });
  const fitness = new FitnessBook({ events: bus, windowMs: settings.windowMs, record: (a, s) => records.get(recordKey(a), s), now: () => clock.now() });
  const exemplars = new Exemplars(bus);
  fitness.start();
  exemplars.start();

  // 1000 agents, 8 per node, node i of class i mod 4; each agent one skill, every third a second one.
  const agents: { nodeId: string; genome: Genome; hash: string; accuracy: number }[] = [];
  for (let i = 0; i < o.agents; i++) {
    const skills = i % 3 === 0 ? [SKILLS[i % 5]!, SKILLS[(i + 2) % 5]!] : [SKILLS[i % 5]!];
    const genome = GenomeSchema.parse({ id: `a${i}`, model: `models/m${i % 20}.gguf`, skills, sampling: { temperature: 0.1 + (i % 7) / 10 } });
    agents.push({ nodeId: `n${Math.floor(i / AGENTS_PER_NODE)}`, genome, hash: genomeHash(genome), accuracy: 0.5 + 0.45 * rng.next() });
  }
  const nodeIds = [...new Set(agents.map((a) => a.nodeId))];
  const entries: NodeEntry[] = nodeIds.map((nodeId, i) => {
    const mine = agents.filter((a) => a.nodeId === nodeId);
    const info = mine.map((a) => ({ agentId: a.genome.id, skills: a.genome.skills, model: a.genome.model, state: "asleep" as const, genome: a.hash, spec: a.genome, generation: 0 }));
    return {
      nodeId, online: true, lastSeen: T0 + spanMs,
      status: { state: "online", nodeId, protocol: PROTOCOL_VERSION, deviceClass: CLASSES[i % CLASSES.length]!, slots: 1, agents: info, models: [...new Set(info.map((a) => a.model))], at: T0 },
      heartbeat: { nodeId, at: T0 + spanMs, busy: 0, queued: 0, agents: info.map((a) => ({ agentId: a.agentId, state: a.state })) },
    };
  });
  const lineage = new Lineage({ put: async () => {}, batch: async () => {}, async *iterator() {} } as unknown as ConstructorParameters<typeof Lineage>[0]);
  for (const n of entries) await lineage.observe(n.nodeId, n.status!, T0);
  const bySkill = new Map(SKILLS.map((s) => [s, agents.filter((a) => a.genome.skills.includes(s))]));

  const prompt = "12345678901234567890123456789012";
  const t0 = performance.now();
  for (let i = 0; i < o.experiences; i++) {
    const skill = SKILLS[rng.int(0, SKILLS.length - 1)]!;
    const pool = bySkill.get(skill)!;
    const a = pool[rng.int(0, pool.length - 1)]!;
    const at = T0 + Math.floor((i * spanMs) / o.experiences);
    const taskId = `t${i}`;
    const success = rng.next() < a.accuracy;
    bus.emit("taskAccepted", { taskId, skill, submit: { prompt, skill }, maxTokens: 16, deadlineAt: at + 60_000, at });
    bus.emit("attemptAwarded", { taskId, skill, attempt: 1, auctionId: `${taskId}.1`, nodeId: a.nodeId, agentId: a.genome.id, genome: a.hash, bid: { latencyMs: 500, energyJ: 1, accuracy: 0.5 }, score: 0.5, bids: 3, at });
    bus.emit("taskFinished", {
      taskId, submitter: "bench", skill, prompt, status: success ? "ok" : "error", attempts: 1, totalMs: 500, at: at + 500,
      delivered: { attempt: 1, nodeId: a.nodeId, agentId: a.genome.id, genome: a.hash, output: success ? "ok" : "wrong", verdict: { success, source: "check" }, cost: { energyJ: 1 + rng.next(), energySource: "model" } },
    });
  }
  const ingestSeconds = (performance.now() - t0) / 1000;

  const registry = { list: () => entries };
  // One untimed cycle a window earlier, so dominance has lasted a window when the timed cycles run
  // and they take the whole retire path (hundreds of retirements, all but the budget held back).
  clock.advance(spanMs - settings.windowMs);
  let state = plan(buildHistory({ now: clock.now(), seed: 1, evolution: { lineage, fitness, exemplars }, registry, settings, state: { cycle: 0, dominatedSince: {}, recent: [], refusals: [] } })).state;
  clock.advance(settings.windowMs);
  const build: number[] = [];
  const planned: number[] = [];
  const written: number[] = [];
  let last = { decisions: 0, heldBack: 0 };
  for (let c = 0; c < o.cycles; c++) {
    clock.advance(settings.intervalMs);
    const a = performance.now();
    const history = buildHistory({ now: clock.now(), seed: 1, evolution: { lineage, fitness, exemplars }, registry, settings, state });
    const b = performance.now();
    const p = plan(history);
    const d = performance.now();
    const fit = new Map<string, NicheFitness[]>();
    for (const x of history.agents) fit.set(`${x.nodeId}/${x.agentId}`, x.fitness.map((f) => ({ niche: `${f.skill}@${x.deviceClass}`, success: f.success, trials: f.trials, wins: f.wins })));
    await lineage.recordFitness(fit, clock.now());
    written.push(performance.now() - d);
    build.push(b - a);
    planned.push(d - b);
    // Decisions are not carried out: every cycle plans over the same fleet (the worst case: nothing shrinks).
    state = p.state;
    last = { decisions: p.decisions.length, heldBack: p.heldBack.length };
  }
  const cycle = build.map((x, i) => x + planned[i]!);
  fitness.close();
  exemplars.close();
  const niches = fitness.agents().length;
  return {
    experiences: o.experiences, events: 3 * o.experiences, agents: o.agents, nodes: entries.length, niches,
    ingestSeconds, eventsPerS: (3 * o.experiences) / ingestSeconds, experiencesPerS: o.experiences / ingestSeconds,
    cycleMs: { ...stat(cycle), all: cycle }, buildMs: stat(build), planMs: stat(planned), recordFitnessMs: stat(written), lastPlan: last,
    heapMB: process.memoryUsage().heapUsed / 2 ** 20,
  };
}
