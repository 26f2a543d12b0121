/**
 * `npm run bench -- auction [--tasks N] [--concurrency K] [--coordinator-tcp]`: the market over real
 * MQTT on loopback. The coordinator's own client reaches its embedded broker in memory, as in
 * production; --coordinator-tcp makes it use loopback TCP like every other client here.
 *
 * For 10 and 100 simulated nodes (each its own MQTT client, spread over 2 child processes):
 *  - latency: sequential submits, time from publishing the submit to receiving the `awarded` event
 *    (p50/p99); every node answers at once, so this measures the early close of the auction;
 *  - throughput: K submits in flight, completed tasks (result received) per second;
 *  - bare MQTT: the same message pattern (submit, announce, N replies, award, ack, done, result)
 *    between plain clients on the same broker with no Colony logic (no schema, no store, no
 *    scoring), and the ratio Colony/bare of the throughputs.
 * Last stdout line: one-line JSON summary.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import mqtt, { type MqttClient } from "mqtt";
import { silentLogger } from "../common/logger.ts";
import { ANONYMOUS, encode, topics } from "../common/protocol.ts";
import { CoordinatorConfigSchema } from "../coordinator/config.ts";
import { Coordinator } from "../coordinator/coordinator.ts";

const args = process.argv.slice(2);
const argInt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
// 1000 per phase: with 200 the p99 of the sequential latencies is the 2nd-worst sample and swung
// between 9 and 18 ms from run to run; 1000 takes about a minute for both fleet sizes.
const TASKS = argInt("--tasks", 1000);
const CONCURRENCY = argInt("--concurrency", 8);
const COORDINATOR_TCP = args.includes("--coordinator-tcp");

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function simNodes(url: string, mode: "colony" | "bare", n: number, prefix: string): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  const groups = [0, 1].map((g) => Array.from({ length: n }, (_, i) => `${prefix}${i}`).filter((_, i) => i % 2 === g));
  await Promise.all(
    groups.map(
      (ids) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", "bench/_sim-nodes.ts", JSON.stringify({ url, mode, ids })], { stdio: ["ignore", "pipe", "inherit"] });
          procs.push(child);
          readline.createInterface({ input: child.stdout! }).on("line", (l) => l === "ready" && resolve());
          child.once("exit", (code) => reject(new Error(`sim nodes exited with ${code}`)));
        }),
    ),
  );
  return procs;
}

function connect(url: string): Promise<MqttClient> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { protocolVersion: 4 });
    c.once("connect", () => {
      (c.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      resolve(c);
    });
  });
}

/** Runs `count` tasks with `k` in flight; `one(i)` resolves with the task's submit-to-award ms. */
async function closedLoop(count: number, k: number, one: (i: number) => Promise<number>): Promise<{ seconds: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: k }, async () => {
      while (next < count) lat.push(await one(next++));
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, lat };
}

/** Colony results that were not ok (must stay 0: every simulated node answers correctly). */
let notOk = 0;

async function colonyRun(url: string, sub: MqttClient, nodes: number, tag: string) {
  // One wildcard-free subscription per task would dominate; this client has full rights
  // (insecure broker), so it follows all task topics with one subscription.
  await sub.subscribeAsync(`${topics.submitterRoot(ANONYMOUS)}/tasks/+/+`, { qos: 1 });
  const waiting = new Map<string, { t0: number; awardAt?: number; resolve: (ms: number) => void }>();
  sub.on("message", (topic, payload) => {
    const parts = topic.split("/");
    const w = waiting.get(parts[5]!);
    if (!w) return;
    if (parts[6] === "events" && payload.includes('"awarded"')) w.awardAt = performance.now();
    else if (parts[6] === "result") {
      waiting.delete(parts[5]!);
      if (!payload.includes('"status":"ok"')) notOk++;
      w.resolve((w.awardAt ?? performance.now()) - w.t0);
    }
  });
  const one = (i: number) =>
    new Promise<number>((resolve) => {
      const id = `${tag}-${nodes}-${i}-${Math.random().toString(36).slice(2, 8)}`;
      waiting.set(id, { t0: performance.now(), resolve });
      sub.publish(topics.submit(ANONYMOUS), encode({ id, prompt: "bench", maxTokens: 8 }), { qos: 1 });
    });
  return one;
}

async function bareRun(url: string, nodes: number) {
  // The bare coordinator: announce on submit, award to the first replier after N replies, result on done.
  const coord = await connect(url);
  const sub = await connect(url);
  const replies = new Map<string, { n: number; first?: string }>();
  coord.on("message", (topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (topic === "bench/submit") {
      replies.set(m.id, { n: 0 });
      coord.publish("bench/announce", JSON.stringify({ auctionId: `au-${m.id}`, taskId: m.id, attempt: 1, prompt: m.prompt, maxTokens: 8, deadlineAt: Date.now() + 60_000, closesAt: Date.now() + 1000 }), { qos: 1 });
    } else if (topic.endsWith("/bid")) {
      const r = replies.get(m.taskId)!;
      r.n++;
      r.first ??= m.nodeId;
      if (r.n === nodes) coord.publish(`bench/nodes/${r.first}/award`, JSON.stringify({ auctionId: m.auctionId, taskId: m.taskId, attempt: 1, agentId: m.agentId, prompt: "bench", maxTokens: 8, deadlineAt: 0, ackWithinMs: 2000 }), { qos: 1 });
    } else if (topic.endsWith("/done")) {
      replies.delete(m.taskId);
      coord.publish(`bench/tasks/${m.taskId}/result`, JSON.stringify({ id: m.taskId, status: "ok", output: m.output, attempts: [] }), { qos: 1 });
    }
  });
  await coord.subscribeAsync(["bench/submit", "bench/nodes/+/bid", "bench/nodes/+/ack", "bench/nodes/+/done"], { qos: 1 });
  await sub.subscribeAsync("bench/tasks/+/result", { qos: 1 });
  const waiting = new Map<string, { t0: number; resolve: (ms: number) => void }>();
  sub.on("message", (topic) => {
    const id = topic.split("/")[2]!;
    const w = waiting.get(id);
    if (w) {
      waiting.delete(id);
      w.resolve(performance.now() - w.t0);
    }
  });
  const one = (i: number) =>
    new Promise<number>((resolve) => {
      const id = `bare-${nodes}-${i}`;
      waiting.set(id, { t0: performance.now(), resolve });
      sub.publish("bench/submit", JSON.stringify({ id, prompt: "bench", maxTokens: 8 }), { qos: 1 });
    });
  return { one, close: async () => (await coord.endAsync(), await sub.endAsync()) };
}

const ROUNDS = 4;
const summary: Record<string, unknown> = { bench: "auction", tasksPerPhase: TASKS, concurrency: CONCURRENCY, coordinatorTcp: COORDINATOR_TCP, rounds: ROUNDS, cores: os.cpus().length, loadavg1: +os.loadavg()[0]!.toFixed(1) };
for (const nodes of [10, 100]) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-bench-"));
  const config = CoordinatorConfigSchema.parse({ port: 0, host: "127.0.0.1", dataDir, insecure: true, mdns: false, logLevel: "silent", bidWindowMs: 2000, seed: 1, brokerOverTcp: COORDINATOR_TCP });
  const coordinator = new Coordinator(config, { logger: silentLogger });
  await coordinator.start();
  const url = coordinator.brokerUrl;
  // Both populations run side by side; each only reacts to its own topics.
  const procs = [...(await simNodes(url, "colony", nodes, "sim")), ...(await simNodes(url, "bare", nodes, "bare"))];
  while (coordinator.registry.eligibleNodes(undefined, new Set()).length < nodes) await new Promise((r) => setTimeout(r, 20));
  const sub = await connect(url);
  const one = await colonyRun(url, sub, nodes, "warm");
  const bare = await bareRun(url, nodes);
  await closedLoop(20, 1, one); // warm-up: JIT, LevelDB
  await closedLoop(20, 1, bare.one);
  // Colony and bare alternate in rounds so that load from other processes hits both alike.
  const per = Math.ceil(TASKS / ROUNDS);
  const lat: number[] = [];
  const bareLat: number[] = [];
  let colonyS = 0;
  let bareS = 0;
  let colonySeqS = 0;
  let bareSeqS = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const seq = await closedLoop(per, 1, one);
    lat.push(...seq.lat);
    colonySeqS += seq.seconds;
    const bseq = await closedLoop(per, 1, bare.one);
    bareLat.push(...bseq.lat);
    bareSeqS += bseq.seconds;
    colonyS += (await closedLoop(per, CONCURRENCY, one)).seconds;
    bareS += (await closedLoop(per, CONCURRENCY, bare.one)).seconds;
  }
  for (const p of procs) p.kill("SIGTERM");
  await bare.close();
  await sub.endAsync();
  const counters = coordinator.counters.snapshot();
  if (process.env.BENCH_DEBUG) console.error(JSON.stringify(counters));
  await coordinator.close();
  rmSync(dataDir, { recursive: true, force: true });
  const total = per * ROUNDS;
  const colonyTps = total / colonyS;
  const bareTps = total / bareS;
  const r = {
    awardP50Ms: +percentile(lat, 50).toFixed(2),
    awardP99Ms: +percentile(lat, 99).toFixed(2),
    colonyTasksPerS: +colonyTps.toFixed(1),
    bareTasksPerS: +bareTps.toFixed(1),
    ratio: +(colonyTps / bareTps).toFixed(2),
    colonySeqTasksPerS: +(total / colonySeqS).toFixed(1),
    bareSeqTasksPerS: +(total / bareSeqS).toFixed(1),
    bareRoundTripP50Ms: +percentile(bareLat, 50).toFixed(2),
    ok: counters["tasks.ok"] ?? 0,
    notOk,
    dropped: counters["dropped"] ?? 0,
  };
  console.log(`nodes=${nodes}: submit->award p50 ${r.awardP50Ms} ms p99 ${r.awardP99Ms} ms (sequential); throughput colony ${r.colonyTasksPerS}/s vs bare MQTT ${r.bareTasksPerS}/s (K=${CONCURRENCY}) ratio ${r.ratio}`);
  summary[`n${nodes}`] = r;
}
console.log(JSON.stringify(summary));
process.exit(0);
