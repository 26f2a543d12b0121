/**
 * The ecosystem benchmark's fleet, all real: the coordinator in this process (embedded aedes with
 * auth and ACLs, the market, evolution, the architect, the collective mind; started as the
 * integration tests start it, test/fixtures/coordinator-harness.ts) and one `colony node` process per
 * device (test/fixtures/colony-process.ts) with its device profile, injected probe readings, its
 * agents file and llama.cpp on one thread. The stream is submitted over MQTT as a trusted submitter
 * with each task's machine check; what the market did is read from its events.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { MqttClient } from "mqtt";
import type { CoordinatorConfig } from "../coordinator/config.ts";
import type { TaskFinished } from "../coordinator/market/events.ts";
import { newTaskId, submitAndWait } from "../coordinator/submitter.ts";
import type { Genome } from "../common/genome.ts";
import { topics, type DistilStart, type MindJob } from "../common/protocol.ts";
import { getSkill } from "../skills/index.ts";
import { resolveProfile } from "../node/profile.ts";
import { startHarness, type Harness } from "../test/fixtures/coordinator-harness.ts";
import { ColonyProcesses } from "../test/fixtures/colony-process.ts";
import type { ModelFile, NodeSpec, Task } from "./_ecosystem-population.ts";

/** A living agent as its node registered it. */
export interface LiveAgent {
  nodeId: string;
  agentId: string;
  deviceClass: string;
  generation: number;
  genome: Genome;
  /** The local model file (a seed, the weak checkpoint, or a distilled model in the coordinator's store). */
  modelFile: string;
  adapterFile?: string | undefined;
}

/** One stream task as the market handled it. */
export interface StreamRecord {
  skill: string;
  /** The skill key the market used: the skill, or for an unlabeled task the niche of its prompt. */
  key: string;
  ok: boolean;
  attempts: number;
  /** `${nodeId}/${agentId}` of the delivering attempt. */
  agent?: string | undefined;
  energyJ: number;
  ms: number;
}

/**
 * An idle agent sleeps after 30 s instead of its profile's minutes: the bench compresses time (a
 * generation's stream takes seconds to a minute, the architect's idle retirement is 2 min), so
 * awake memory reflects the agents the market uses now, not every agent woken since the start.
 */
export const SLEEP_AFTER_MS = 30_000;

export interface FleetOptions {
  dir: string;
  nodes: NodeSpec[];
  /** Model name -> file: the seed models and the weak checkpoint. */
  models: Record<string, ModelFile>;
  config: Partial<CoordinatorConfig>;
  log: (s: string) => void;
}

export class EcosystemFleet {
  private readonly procs = new ColonyProcesses();
  private readonly pids = new Map<string, number>();
  private sub!: MqttClient;
  private sup!: MqttClient;
  private constructor(readonly h: Harness, private readonly o: FleetOptions) {}

  static async start(o: FleetOptions): Promise<EcosystemFleet> {
    const h = await startHarness({ dataDir: path.join(o.dir, "coordinator"), config: o.config });
    const f = new EcosystemFleet(h, o);
    try {
      await f.startNodes();
      f.sub = await h.submitter();
      f.sup = await h.superClient();
    } catch (err) {
      await f.close();
      throw err;
    }
    return f;
  }

  private async startNodes(): Promise<void> {
    // The weak checkpoint enters the coordinator's model store (as `colony models add` would), so a
    // distillation job can find its agents' model by content.
    for (const [name, m] of Object.entries(this.o.models)) if (!name.startsWith("seed-")) await this.h.coordinator.models!.add(m.file, { name, skills: ["add"] });
    const modelKey = this.h.coordinator.signingKey!.publicKey;
    await Promise.all(this.o.nodes.map(async (n) => {
      const dir = path.join(this.o.dir, "nodes", n.nodeId);
      mkdirSync(dir, { recursive: true });
      const agents = n.agents.map((a) => {
        const m = this.o.models[a.model]!;
        return { id: a.id, model: `${m.file}#sha256=${m.sha256}`, skills: a.skills, accuracyPrior: a.claim ?? Object.fromEntries(a.skills.map((k) => [k, m.heldOut?.[k] ?? 0.5])), ...(a.temperature ? { sampling: { temperature: a.temperature, seed: 1 } } : {}) };
      });
      writeFileSync(path.join(dir, "agents.json"), JSON.stringify({ agents }, null, 2));
      writeFileSync(path.join(dir, "credentials.json"), JSON.stringify({ ...(await this.h.nodeCred(n.nodeId)), url: this.h.url }), { mode: 0o600 });
      // No GPU on this host: a profile that offloads layers is run on the CPU (same power model).
      const profile = resolveProfile(n.profile);
      const profileFile = path.join(dir, "profile.json");
      writeFileSync(profileFile, JSON.stringify({ ...profile, gpuLayers: 0 }));
      writeFileSync(path.join(dir, "config.json"), JSON.stringify({ modelKey, energyMeter: "model", heartbeatMs: 1000, sleepAfterMs: SLEEP_AFTER_MS, injectProbe: n.inject, logLevel: "error" }));
      const child = await this.procs.start(["node", "--node-id", n.nodeId, "--credentials", path.join(dir, "credentials.json"), "--profile", profileFile, "--agents", path.join(dir, "agents.json"), "--data-dir", path.join(dir, "data"), "--threads", "1", "--config", path.join(dir, "config.json")], 180_000);
      this.pids.set(n.nodeId, child.pid!);
    }));
    const want = this.o.nodes.reduce((k, n) => k + n.agents.length, 0);
    await this.until(() => this.liveAgents().length >= want, 60_000, "every node's agents to register");
  }

  async until(f: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!f()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The file a model reference names: a local path (with its pin) or `colony:<sha256>` in the coordinator's store. */
  fileOf(ref: string): string {
    if (ref.startsWith("colony:")) return this.h.coordinator.models!.get(ref.slice(7))!.file;
    return ref.split("#")[0]!;
  }

  liveAgents(): LiveAgent[] {
    const out: LiveAgent[] = [];
    for (const n of this.h.coordinator.registry.list()) {
      if (!n.online || !n.status) continue;
      for (const a of n.status.agents) {
        if (!a.spec) continue;
        out.push({ nodeId: n.nodeId, agentId: a.agentId, deviceClass: n.status.deviceClass, generation: a.generation ?? 0, genome: a.spec, modelFile: this.fileOf(a.spec.model), adapterFile: a.spec.adapter ? this.fileOf(a.spec.adapter) : undefined });
      }
    }
    return out.sort((a, b) => `${a.nodeId}/${a.agentId}`.localeCompare(`${b.nodeId}/${b.agentId}`));
  }

  /** Bytes of the distinct model files that awake agents hold per node (weights; contexts not counted), from the latest heartbeats. */
  awakeModelMB(): number {
    let bytes = 0;
    for (const n of this.h.coordinator.registry.list()) {
      if (!n.online || !n.status) continue;
      const awake = new Set((n.heartbeat?.agents ?? n.status.agents).filter((a) => a.state === "awake" || a.state === "busy").map((a) => a.agentId));
      const files = new Set(n.status.agents.filter((a) => awake.has(a.agentId) && a.spec).map((a) => this.fileOf(a.spec!.model)));
      for (const f of files) bytes += statSync(f).size;
    }
    return bytes / 2 ** 20;
  }

  /** Resident memory of the node processes (Node.js and llama.cpp together), from /proc. */
  nodeRssMB(): number {
    let kb = 0;
    for (const pid of this.pids.values()) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      } catch {
        // The process is gone.
      }
    }
    return kb / 1024;
  }

  /**
   * Submits the stream with `concurrency` tasks in flight, each with its skill's exact check (and
   * without its skill label when `labeled` is false), and returns what the market did with each.
   * Awake memory is sampled every second while it runs.
   */
  async runStream(tasks: Task[], labeled: boolean, concurrency: number): Promise<{ records: StreamRecord[]; awakeMB: number; rssMB: number; seconds: number }> {
    const finished = new Map<string, TaskFinished>();
    const off = this.h.coordinator.events.on("taskFinished", (e) => void finished.set(e.taskId, e));
    const samples: { awake: number; rss: number }[] = [];
    const sample = () => samples.push({ awake: this.awakeModelMB(), rss: this.nodeRssMB() });
    const sampler = setInterval(sample, 1000);
    const t0 = performance.now();
    const records: StreamRecord[] = [];
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        const t = tasks[next++]!;
        const skill = getSkill(t.skill);
        const id = newTaskId();
        const r = await submitAndWait(this.sub, { id, prompt: t.prompt, ...(labeled ? { skill: t.skill } : {}), maxTokens: skill.maxAnswerChars + 2, check: skill.toCheck(t) }, { timeoutMs: 60_000 }).catch(() => undefined);
        await this.until(() => finished.has(id), 5000, "the task's finished event").catch(() => {});
        const e = finished.get(id);
        const d = e?.delivered;
        records.push({ skill: t.skill, key: e?.skill ?? t.skill, ok: Boolean(d?.verdict.success) && r?.status === "ok", attempts: e?.attempts ?? 0, agent: d ? `${d.nodeId}/${d.agentId}` : undefined, energyJ: d?.cost.energyJ ?? 0, ms: e?.totalMs ?? 0 });
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
      // The agents the stream woke are still awake (they sleep after the profile's sleepAfterMs): one more reading after a heartbeat.
      await new Promise((r) => setTimeout(r, 1200));
      sample();
    } finally {
      clearInterval(sampler);
      off();
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    return { records, awakeMB: mean(samples.map((s) => s.awake)), rssMB: mean(samples.map((s) => s.rss)), seconds: (performance.now() - t0) / 1000 };
  }

  /** A distillation job asked for over MQTT with a coordinator credential (as `colony distil --coordinator` does), followed to its end. */
  async distil(req: DistilStart, timeoutMs: number): Promise<MindJob> {
    await this.sup.publishAsync(topics.mindDistil, JSON.stringify(req), { qos: 1 });
    let phase = "";
    let at = 0;
    await this.until(() => {
      const j = this.h.coordinator.mind.get(req.jobId);
      const now = `${j?.state} ${j?.progress?.phase ?? ""}`;
      // A line per phase, and every 15 s within one.
      if (j && (now !== phase || Date.now() - at > 15_000)) {
        (phase = now), (at = Date.now());
        this.o.log(`  job ${req.jobId}: ${now}${j.progress ? ` ${j.progress.step}/${j.progress.total}${j.progress.loss !== null ? ` loss ${j.progress.loss.toFixed(3)}` : ""}` : ""}`);
      }
      return Boolean(j && !["queued", "running"].includes(j.state));
    }, timeoutMs, `distillation job ${req.jobId}`);
    return this.h.coordinator.mind.get(req.jobId)!;
  }

  /** Waits until the mind has no queued or running job (the architect's distil decisions included). */
  async mindIdle(timeoutMs: number): Promise<void> {
    await this.until(() => this.h.coordinator.mind.list().every((j) => !["queued", "running"].includes(j.state)), timeoutMs, "the collective mind's jobs");
  }

  get bytesPushed(): number {
    return this.h.coordinator.counters.get("models.fetch.bytes");
  }

  async close(): Promise<void> {
    this.procs.killAll();
    await this.h.close();
  }
}
