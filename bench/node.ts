/**
 * Node daemon benchmark (`npm run bench -- node`). Last stdout line: one JSON summary.
 *  - fleet overhead: gen tok/s of a 200-token task through coordinator + MQTT + node vs direct
 *    node-llama-cpp in this process, same model, threads and greedy sampling (target ratio >= 0.9);
 *  - sleep: memory freed by sleeping an agent / the RSS its wake + generation added (target >= 0.9);
 *  - wake: agent wake time vs bare loadModel + createContext (target <= 1.2x);
 *  - announce-to-bid p99 while the node generates (target <= 5 ms). Headline: the node in its own
 *    `colony node` process (as deployed: its own event loop; it calibrates its llama.cpp threads
 *    like any node, BENCH_NODE_THREADS overrides them), the broker and coordinator in this process,
 *    the time from publishing an announce to receiving its bid at an MQTT client here. Details: the
 *    same with the node daemon inside this process (one event loop with broker, coordinator and the
 *    announcing client), the bid handler's own p99 (decode to publish, inside the daemon), and a
 *    control: the same announces to the node process while it is idle. With each, the node process's
 *    event-loop delay over the same window, scraped from its own /metrics (prom-client).
 * The model is a random llama (512 wide, 8 layers, 109 MB F32) written by the trainer's exporter, EOS disabled, so
 * every generation runs to maxTokens.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import v8 from "node:v8";
import vm from "node:vm";
import { decode, encode, topics, BidSchema, ResultSchema, type Announce, type Result } from "../common/protocol.ts";
import { startHarness } from "../test/fixtures/coordinator-harness.ts";
import { genome, startNode, writeRandomModel } from "../test/fixtures/node-helpers.ts";
import { submitterOf } from "../coordinator/submitter.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const rssMB = () => {
  gc();
  gc();
  return process.memoryUsage().rss / 2 ** 20;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const log = (...a: unknown[]) => console.log(...a);
/** Polls `done` every `everyMs`; a wait past `ms` is a failure that names what never happened, not a hang. */
async function waitFor(done: () => boolean, what: string, ms = 120_000, everyMs = 2): Promise<void> {
  const t0 = performance.now();
  while (!done()) {
    if (performance.now() - t0 > ms) throw new Error(`bench node: no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const TOKENS = 200;
const dir = mkdtempSync(path.join(os.tmpdir(), "colony-bench-node-"));
const h = await startHarness();
const model = await writeRandomModel(dir, "bench", { dim: 512, layers: 8, ffn: 1536, ctx: 512 }, 5);
const maxThreads = Math.min(2, os.availableParallelism());
const node = await startNode({ nodeId: "bench-node", url: h.url, cred: await h.nodeCred("bench-node"), dataDir: path.join(dir, "node"), genomes: [genome("bench-agent", model, ["bench"], { contextSize: 512 })], threads: maxThreads, sleepAfterMs: 3_600_000, progressIntervalMs: 100 });
const d = node.daemon;
const threads = d.runtime.threadsFor(model);
const cal = d.calibrations.get(model)!;
log(`model ${model}: calibrated ${cal.genTokensPerS.toFixed(0)} tok/s gen, ${cal.promptTokensPerS.toFixed(0)} tok/s prompt at ${threads} threads, load ${cal.loadMs.toFixed(0)} ms`);

// ---- fleet vs direct -------------------------------------------------------------------------
const s = await h.submitter();
const results = new Map<string, Result>();
s.on("message", (_t, p) => {
  const m = decode(ResultSchema, p);
  if (m.ok) results.set(m.value.id, m.value);
});
async function viaFleet(i: number): Promise<{ e2eTps: number; genTps: number }> {
  const id = `bench-${i}`;
  await s.subscribeAsync(topics.taskResult(submitterOf(s), id), { qos: 1 });
  const t0 = performance.now();
  await s.publishAsync(topics.submit(submitterOf(s)), encode({ id, prompt: "hello world", skill: "bench", maxTokens: TOKENS, deadlineMs: 120_000 }), { qos: 1 });
  await waitFor(() => results.has(id), `result of ${id}`);
  const ms = performance.now() - t0;
  const r = results.get(id)!;
  if (r.status !== "ok") throw new Error(JSON.stringify(r));
  return { e2eTps: (r.cost?.tokens ?? TOKENS) / (ms / 1000), genTps: TOKENS / ((r.timings.generateMs ?? ms) / 1000) };
}
const llama = d.runtime.instance;
async function direct(): Promise<{ e2eTps: number; genTps: number }> {
  const { LlamaCompletion } = await import("node-llama-cpp");
  const m = await llama.loadModel({ modelPath: model });
  const ctx = await m.createContext({ contextSize: 512, threads, sequences: 1 });
  const c = new LlamaCompletion({ contextSequence: ctx.getSequence() });
  let first = 0;
  let n = 0;
  const t0 = performance.now();
  await c.generateCompletion("hello world", { maxTokens: TOKENS, temperature: 0, onToken: (t) => {
    if (n === 0) first = performance.now();
    n += t.length;
  } });
  const t1 = performance.now();
  await ctx.dispose();
  await m.dispose();
  return { e2eTps: TOKENS / ((t1 - t0) / 1000), genTps: Math.max(1, n - 1) / ((t1 - first) / 1000) };
}
await viaFleet(0); // warm-up: wakes the agent
const fleetRuns: number[] = [];
const fleetGen: number[] = [];
const directRuns: number[] = [];
const directGen: number[] = [];
for (let i = 1; i <= 3; i++) {
  const f = await viaFleet(i);
  fleetRuns.push(f.e2eTps);
  fleetGen.push(f.genTps);
  const x = await direct();
  directRuns.push(x.e2eTps);
  directGen.push(x.genTps);
}
const fleetTps = median(fleetRuns);
const directTps = median(directRuns);
log(`fleet end-to-end ${fleetTps.toFixed(0)} tok/s (node-side generation ${median(fleetGen).toFixed(0)}), direct ${directTps.toFixed(0)} tok/s (generation ${median(directGen).toFixed(0)}): ratio ${(fleetTps / directTps).toFixed(3)}`);

// ---- announce-to-bid while generating --------------------------------------------------------
const sup = await h.superClient();
const sent = new Map<string, number>();
const rtts: number[] = [];
sup.on("message", (t, p) => {
  if (t !== topics.nodeBid("bench-node")) return;
  const m = decode(BidSchema, p);
  if (!m.ok) return;
  const t0 = sent.get(m.value.auctionId);
  if (t0 !== undefined) rtts.push(performance.now() - t0);
});
await sup.subscribeAsync(topics.nodeBid("bench-node"), { qos: 0 });
d.bids.latencies.length = 0;
const long = viaFleet(100);
await waitFor(() => d.activeJobs > 0 || results.has("bench-100"), "job on the in-process node", 60_000, 1);
let generatingAnnounces = 0;
for (let i = 0; i < 300; i++) {
  const now = Date.now();
  const a: Announce = { auctionId: `bench-a${i}`, taskId: `bench-t${i}`, attempt: 1, prompt: "hello", skill: "bench", maxTokens: 8, deadlineAt: now + 600_000, closesAt: now + 10_000, sentAt: now };
  sent.set(a.auctionId, performance.now());
  if (d.activeJobs > 0) generatingAnnounces++;
  sup.publish(topics.announce, encode(a), { qos: 0 });
  await new Promise((r) => setTimeout(r, 3));
}
await long;
await new Promise((r) => setTimeout(r, 200));
const bidP99 = pct(rtts, 0.99);
const handlerP99 = pct(d.bids.latencies, 0.99);
log(`detail: announce-to-bid with the node in this process: p50 ${pct(rtts, 0.5).toFixed(2)} ms, p99 ${bidP99.toFixed(2)} ms (${rtts.length} bids, ${generatingAnnounces} sent while generating); handler p99 ${handlerP99.toFixed(3)} ms`);

// ---- the headline: the same, with the node in its own process (as deployed) -----------------
// Above, node, coordinator, broker and this client share one event loop; a deployed node has its own.
let childBidP99 = NaN;
let childBidP50 = NaN;
let childBids = 0;
let childSent = 0;
let idleBidP50 = NaN;
let idleBidP99 = NaN;
/** The node process's event-loop delay (prom-client's nodejs_eventloop_lag_*, reset at every scrape) per phase. */
const loopLag: Record<string, { p99Ms: number; maxMs: number }> = {};
let metricsPort: number | undefined;
/** Scrapes the node process's metrics: the event-loop delay since the previous scrape. */
async function scrapeLoopLag(): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, "m").exec(text)?.[1] ?? NaN) * 1000;
  return { p99Ms: +read("nodejs_eventloop_lag_p99_seconds").toFixed(2), maxMs: +read("nodejs_eventloop_lag_max_seconds").toFixed(2) };
}
{
  const { spawn } = await import("node:child_process");
  const { chmodSync, writeFileSync } = await import("node:fs");
  const credFile = path.join(dir, "child-cred.json");
  writeFileSync(credFile, JSON.stringify(await h.nodeCred("bench-child")));
  chmodSync(credFile, 0o600);
  // Its metrics (the event-loop delay below) on loopback only.
  const metricsConfig = path.join(dir, "child-config.json");
  writeFileSync(metricsConfig, JSON.stringify({ metricsHost: "127.0.0.1" }));
  const agentsFile = path.join(dir, "child-agents.json");
  writeFileSync(agentsFile, JSON.stringify({ agents: [{ id: "child-agent", model, skills: ["bench2"], contextSize: 512 }] }));
  const child = spawn(process.execPath, ["bin/colony.mjs", "node", "--coordinator", h.url, "--credentials", credFile, "--node-id", "bench-child", "--agents", agentsFile, "--data-dir", path.join(dir, "child"), "--threads", process.env.BENCH_NODE_THREADS ?? String(maxThreads), "--profile", "generic", "--metrics-port", "0", "--config", metricsConfig], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, COLONY_LOG_LEVEL: "warn" } });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        if (metricsPort !== undefined) return;
        out += c.toString();
        const line = out.split("\n").find((l) => l.includes('"ready":true') && l.endsWith("}"));
        if (!line) return;
        metricsPort = (JSON.parse(line) as { metricsPort?: number }).metricsPort;
        if (metricsPort === undefined) reject(new Error(`the node process's ready line has no metricsPort: ${line}`));
        else resolve();
      });
      child.once("exit", (code) => reject(new Error(`child node exited ${code}`)));
    });
    // "ready" means its status is published, not yet read by the coordinator.
    await waitFor(() => h.coordinator.registry.isOnline("bench-child"), "registration of the node process", 10_000);
    const childRtts: number[] = [];
    const sentC = new Map<string, number>();
    let generating = false;
    sup.on("message", (t, p) => {
      if (t === topics.nodeProgress("bench-child")) generating = true;
      if (t !== topics.nodeBid("bench-child")) return;
      const m = decode(BidSchema, p);
      if (!m.ok) return;
      const t0 = sentC.get(m.value.auctionId);
      if (t0 !== undefined) childRtts.push(performance.now() - t0);
    });
    await sup.subscribeAsync([topics.nodeBid("bench-child"), topics.nodeProgress("bench-child")], { qos: 0 });
    const id = "bench-child-long";
    await s.subscribeAsync(topics.taskResult(submitterOf(s), id), { qos: 1 });
    await s.publishAsync(topics.submit(submitterOf(s)), encode({ id, prompt: "hello world", skill: "bench2", maxTokens: 480, deadlineMs: 120_000 }), { qos: 1 });
    await waitFor(() => generating || results.has(id), "progress from the node process", 60_000);
    if (!generating) throw new Error(`the node process never generated: ${JSON.stringify(results.get(id))}`);
    await scrapeLoopLag(); // resets the window: what follows is the generating phase
    for (let i = 0; i < 300 && !results.has(id); i++) {
      const now = Date.now();
      const a: Announce = { auctionId: `bench-c${i}`, taskId: `bench-ct${i}`, attempt: 1, prompt: "hello", skill: "bench2", maxTokens: 8, deadlineAt: now + 600_000, closesAt: now + 10_000, sentAt: now };
      sentC.set(a.auctionId, performance.now());
      childSent++;
      sup.publish(topics.announce, encode(a), { qos: 0 });
      await new Promise((r) => setTimeout(r, 3));
    }
    await new Promise((r) => setTimeout(r, 200));
    loopLag.generating = await scrapeLoopLag();
    childBids = childRtts.length;
    childBidP99 = pct(childRtts, 0.99);
    childBidP50 = pct(childRtts, 0.5);
    log(`announce-to-bid, node in its own process as deployed, while it generates: p50 ${childBidP50.toFixed(2)} ms, p99 ${childBidP99.toFixed(2)} ms (${childBids} bids to ${childSent} announces; target <= 5 ms)`);
    await waitFor(() => results.has(id), `result of ${id}`, 120_000, 10);
    // The control: the same announces, the same path, with the node idle. What the generating run adds
    // on top of this is the generation's doing (the loop-delay readings below; docs/latency.md).
    childRtts.length = 0;
    await scrapeLoopLag();
    for (let i = 0; i < 300; i++) {
      const now = Date.now();
      const a: Announce = { auctionId: `bench-i${i}`, taskId: `bench-it${i}`, attempt: 1, prompt: "hello", skill: "bench2", maxTokens: 8, deadlineAt: now + 600_000, closesAt: now + 10_000, sentAt: now };
      sentC.set(a.auctionId, performance.now());
      sup.publish(topics.announce, encode(a), { qos: 0 });
      await new Promise((r) => setTimeout(r, 3));
    }
    await new Promise((r) => setTimeout(r, 200));
    loopLag.idle = await scrapeLoopLag();
    // prom-client samples the loop every 10 ms, so an idle loop already reads about 10 ms: compare the two.
    log(`the node process's event-loop delay (its /metrics, 10 ms sampling): p99 ${loopLag.generating?.p99Ms} ms, max ${loopLag.generating?.maxMs} ms while it generates; p99 ${loopLag.idle.p99Ms} ms, max ${loopLag.idle.maxMs} ms idle`);
    idleBidP50 = pct(childRtts, 0.5);
    idleBidP99 = pct(childRtts, 0.99);
    log(`control: announce-to-bid, node in its own process, idle: p50 ${idleBidP50.toFixed(2)} ms, p99 ${idleBidP99.toFixed(2)} ms (${childRtts.length} bids)`);
  } finally {
    // A child that already exited (a config error, say) must not leave this waiting for an exit it saw.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  }
}

// ---- sleep and wake --------------------------------------------------------------------------
const agent = d.pool.get("bench-agent")!;
await agent.sleep();
const wakeMs: number[] = [];
const bareMs: number[] = [];
const freedRatios: number[] = [];
const bareLoad = async () => {
  const t = performance.now();
  const m = await llama.loadModel({ modelPath: model });
  const ctx = await m.createContext({ contextSize: 512, threads, sequences: 1 });
  bareMs.push(performance.now() - t);
  await ctx.dispose();
  await m.dispose();
};
// 5 pairs; the bare load goes first in every other pair so that neither side always follows the other.
for (let i = 0; i < 5; i++) {
  if (i % 2 === 1) await bareLoad();
  const r0 = rssMB();
  const t = performance.now();
  await agent.wake();
  wakeMs.push(performance.now() - t);
  await agent.generate("hello", { maxTokens: 16 });
  const r1 = rssMB();
  await agent.sleep();
  const r2 = rssMB();
  freedRatios.push((r1 - r2) / Math.max(1e-9, r1 - r0));
  if (i % 2 === 0) await bareLoad();
}
const sleepRatio = median(freedRatios);
const wakeRatio = median(wakeMs) / median(bareMs);
log(`sleep freed ${freedRatios.map((x) => x.toFixed(2)).join(", ")} of the wake's resident memory; wake ${median(wakeMs).toFixed(0)} ms vs bare load+context ${median(bareMs).toFixed(0)} ms (${wakeRatio.toFixed(2)}x)`);

await node.close();
await h.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({
  bench: "node",
  model: "random llama 512x8, 109 MB F32",
  threads,
  tokens: TOKENS,
  fleetTokPerS: +fleetTps.toFixed(1),
  directTokPerS: +directTps.toFixed(1),
  fleetOverDirect: +(fleetTps / directTps).toFixed(3),
  sleepFreedOverResident: +sleepRatio.toFixed(3),
  wakeMs: +median(wakeMs).toFixed(1),
  bareLoadMs: +median(bareMs).toFixed(1),
  wakeOverBare: +wakeRatio.toFixed(3),
  // Headline: the node in its own process, as deployed.
  announceToBidP99Ms: +childBidP99.toFixed(3),
  announceToBidP50Ms: +childBidP50.toFixed(3),
  announceToBidIdleP99Ms: +idleBidP99.toFixed(3),
  announceToBidIdleP50Ms: +idleBidP50.toFixed(3),
  announceToBidBids: childBids,
  announceToBidTarget: 5,
  nodeLoopLag: loopLag,
  // Detail: the node daemon inside the bench process.
  announceToBidP99MsInProcess: +bidP99.toFixed(3),
  bidHandlerP99MsInProcess: +handlerP99.toFixed(3),
  loadAvg1m: +os.loadavg()[0]!.toFixed(1),
}));
