/**
 * `npm run bench -- auction [--tasks N] [--concurrency K] [--nodes 10,100] [--eligible F] [--broker embedded|mosquitto] [--coordinator-tcp]`: Colony's market
 * against a bare MQTT auction, both over real MQTT with the same link and the same security.
 *
 * What is compared, for 10 and 100 simulated nodes:
 *  - Colony: the real coordinator (coordinator/coordinator.ts) with authentication and the topic
 *    ACL on (`insecure: false`, as users run it): its embedded aedes broker with the fleet-auth hooks,
 *    its own client on the in-memory link to that broker (--coordinator-tcp: loopback TCP).
 *  - bare: a minimal hand-written coordinator (bench/_bare-coordinator.ts: no schema, no store, no
 *    registry, no scoring) on a second embedded broker built exactly as the coordinator builds its
 *    own (coordinator/broker.ts with createAedesAuthHooks and the same fleet secret), reached over
 *    the same kind of link (in memory, or TCP with --coordinator-tcp), logged in with a coordinator
 *    credential. A second broker, so that both sides can use Colony's own topics without hearing
 *    each other.
 *  - On both sides every other client holds a credential issued by coordinator/auth.ts from the
 *    fleet's secret (loadOrCreateFleetSecret + issueCredential) and passes the same ACL rules: the
 *    nodes (bench/_sim-nodes.ts, each its own MQTT client over loopback TCP, spread over 2 child
 *    processes per side, the same code on both sides) as `node.simN`, the submitter as
 *    `submitter.bench`.
 *  - The same messages per task on both sides (topics, QoS, retain, payload shapes): submit;
 *    events `accepted`, `announced`; announce; N bids (QoS 0); award; event `awarded`; ack; done;
 *    verdict to the node; result (retained). Plus, on both, node heartbeats every 5 s; Colony's
 *    coordinator also publishes its retained fleet stats about once a second, the bare one does not.
 * Measured: latency = sequential submits, submit published -> `awarded` event received (p50/p99;
 * every node answers at once, so this is the auction's early close); throughput = K submits in
 * flight, tasks whose result arrived per second; ratio = Colony/bare throughput. The two sides
 * alternate in 4 rounds so that load from other processes hits both alike. Colony's per-submitter
 * rate limit stays on, raised so that the one bench submitter is never refused; a `rejected` event
 * or a task unfinished after 20 s ends the bench with an error instead of a hang.
 * Last stdout line: one-line JSON summary.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { silentLogger } from "../common/logger.ts";
import { connectMqtt, type MqttClient } from "../common/mqtt-connect.ts";
import { encode, topics } from "../common/protocol.ts";
import { createAedesAuthHooks, issueCredential, loadOrCreateFleetSecret } from "../coordinator/auth.ts";
import { EmbeddedBroker } from "../coordinator/broker.ts";
import { CoordinatorConfigSchema } from "../coordinator/config.ts";
import { Coordinator } from "../coordinator/coordinator.ts";
import { writeMosquittoFiles } from "../coordinator/auth.ts";
import { startMosquitto } from "../test/fixtures/mosquitto.ts";
import { startBareCoordinator } from "./_bare-coordinator.ts";

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
/** Fleet sizes to run, e.g. `--nodes 10` or `--nodes 10,100,1000` (default 10,100). */
/**
 * The share of the fleet with the tasks' skill (`--eligible 0.1`: every tenth node; the others have
 * other skills, so with skill-scoped announces they never hear these tasks). Default 1: every node a
 * generalist and tasks without a skill, announced to all, as in the figures before skill topics.
 */
const ELIGIBLE = args.includes("--eligible") ? Number(args[args.indexOf("--eligible") + 1]) : 1;
if (!(ELIGIBLE > 0 && ELIGIBLE <= 1)) throw new Error("bench auction: --eligible takes a fraction in (0, 1]");
const SKILL = ELIGIBLE < 1 ? "bench" : undefined;
/** `embedded` (aedes inside each coordinator, default) or `mosquitto` (Debian's, one per side). */
const BROKER = args.includes("--broker") ? args[args.indexOf("--broker") + 1]! : "embedded";
if (BROKER !== "embedded" && BROKER !== "mosquitto") throw new Error("bench auction: --broker takes embedded or mosquitto");
const NODE_COUNTS = (args.includes("--nodes") ? args[args.indexOf("--nodes") + 1]! : "10,100").split(",").map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench auction: --nodes takes a comma-separated list of fleet sizes, got ${x}`);
  return n;
});
const SUBMITTER = "bench";
const USER = `submitter.${SUBMITTER}`;
const STALL_MS = 20_000; // 10x the bid window: a task this old is lost, not slow

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Every simulated-node process, so that an early exit (a stalled or rejected task) leaves none behind. */
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});

async function simNodes(url: string, nodes: { id: string; username: string; password: string; skill?: string }[]): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  const groups = [0, 1].map((g) => nodes.filter((_, i) => i % 2 === g));
  await Promise.all(
    groups.map(
      (group) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", "bench/_sim-nodes.ts", JSON.stringify({ url, nodes: group })], { stdio: ["pipe", "pipe", "inherit"] });
          procs.push(child);
          children.add(child);
          child.once("exit", () => children.delete(child));
          readline.createInterface({ input: child.stdout! }).on("line", (l) => l === "ready" && resolve());
          child.once("exit", (code) => reject(new Error(`sim nodes exited with ${code}`)));
        }),
    ),
  );
  return procs;
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

/** The submitter of one side: submits in its own folder, follows its tasks with one subscription. */
async function submitter(url: string, credential: { username: string; password: string }, tag: string, skill: string | undefined) {
  const sub = await connectMqtt({ url, ...credential, logger: silentLogger });
  (sub.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  await sub.subscribeAsync(`${topics.submitterRoot(USER)}/tasks/+/+`, { qos: 1 });
  const waiting = new Map<string, { t0: number; awardAt?: number; resolve: (ms: number) => void }>();
  const state = { notOk: 0 };
  sub.on("message", (topic, payload) => {
    const parts = topic.split("/");
    const w = waiting.get(parts[5]!);
    if (!w) return;
    if (parts[6] === "events" && payload.includes('"awarded"')) w.awardAt = performance.now();
    else if (parts[6] === "events" && payload.includes('"rejected"')) {
      console.error(`${tag}: task ${parts[5]} rejected: ${payload.toString().slice(0, 300)}`);
      process.exit(1);
    }
    else if (parts[6] === "result") {
      waiting.delete(parts[5]!);
      if (!payload.includes('"status":"ok"')) state.notOk++;
      w.resolve((w.awardAt ?? performance.now()) - w.t0);
    }
  });
  // A task that never finishes would hang the closed loop: fail loudly instead, saying where it stopped.
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const [id, w] of waiting) {
      if (now - w.t0 < STALL_MS) continue;
      console.error(`${tag}: task ${id} unfinished after ${STALL_MS} ms (${w.awardAt ? "awarded, no result" : "not awarded"}); ${waiting.size} in flight`);
      process.exit(1);
    }
  }, 1000);
  watchdog.unref();
  let n = 0;
  const one = () =>
    new Promise<number>((resolve) => {
      const id = `${tag}-${n++}-${Math.random().toString(36).slice(2, 8)}`;
      waiting.set(id, { t0: performance.now(), resolve });
      sub.publish(topics.submit(USER), encode({ id, prompt: "bench", maxTokens: 8, ...(skill ? { skill } : {}) }), { qos: 1 });
    });
  return { one, state, close: () => (clearInterval(watchdog), sub.endAsync()) };
}

/**
 * Both brokers must enforce the ACL: a node's credential may not read another node's awards. aedes
 * refuses the subscription; mosquitto grants it and never delivers (its read ACL applies per
 * message), so a probe award from the coordinator must not arrive.
 */
async function assertAclOn(url: string, credential: { username: string; password: string }, coordinatorCred: { username: string; password: string }): Promise<void> {
  const c = await connectMqtt({ url, ...credential, clientId: `${credential.username}:acl-check`, logger: silentLogger });
  let delivered = false;
  c.on("message", () => (delivered = true));
  // mqtt.js rejects a subscription the broker refused (SUBACK 0x80 [MQTT-3.9.3]).
  const refused = await c.subscribeAsync(topics.nodeAward("sim1"), { qos: 1 }).then((g) => g[0]?.qos === 128, (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0] === 128);
  if (!refused) {
    const coord = await connectMqtt({ url, ...coordinatorCred, clientId: `${coordinatorCred.username}:acl-check`, logger: silentLogger });
    await coord.publishAsync(topics.nodeAward("sim1"), "acl probe", { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    await coord.endAsync(true);
  }
  await c.endAsync(true);
  if (delivered) throw new Error(`the broker at ${url} let ${credential.username} read another node's awards: ACL off`);
}

const ROUNDS = 4;
const summary: Record<string, unknown> = {
  bench: "auction", auth: true, broker: BROKER, link: COORDINATOR_TCP || BROKER === "mosquitto" ? "tcp" : "memory", eligible: ELIGIBLE, tasksPerPhase: TASKS, concurrency: CONCURRENCY, rounds: ROUNDS, cores: os.cpus().length, loadavg1: +os.loadavg()[0]!.toFixed(1),
};
for (const nodes of NODE_COUNTS) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-bench-"));
  // --broker mosquitto: each side gets its own mosquitto with the fleet's generated password and ACL
  // files (coordinator/auth/mosquitto-config.ts), reached over loopback TCP by both coordinators.
  let mosquittos: { url: string; close(): Promise<void> }[] = [];
  if (BROKER === "mosquitto") {
    const fleetSecret = await loadOrCreateFleetSecret(dataDir); // the coordinator below finds and uses it
    const files = await writeMosquittoFiles(path.join(dataDir, "mosquitto"), { secret: fleetSecret, nodes: Array.from({ length: nodes }, (_, i) => `sim${i}`), submitters: [SUBMITTER] });
    mosquittos = [await startMosquitto(files), await startMosquitto(files)];
  }
  const config = CoordinatorConfigSchema.parse({ port: 0, host: "127.0.0.1", dataDir, insecure: false, mdns: false, logLevel: "silent", bidWindowMs: 2000, seed: 1, brokerOverTcp: COORDINATOR_TCP, broker: mosquittos[0]?.url,
    // The per-submitter rate limit stays on (its check runs on every submit) but high enough for the
    // bench's one submitter: at the default 20/s after a burst of 500 it ends the bench RATE_LIMITED.
    submitRate: 1_000_000 });
  const coordinator = new Coordinator(config, { logger: silentLogger });
  await coordinator.start();
  const secret = await loadOrCreateFleetSecret(dataDir); // the one the coordinator just created
  const embedded = mosquittos.length ? undefined : new EmbeddedBroker({ host: "127.0.0.1", port: 0, hooks: createAedesAuthHooks({ secret, insecure: false, logger: silentLogger }), logger: silentLogger });
  await embedded?.start();
  const bareUrl = mosquittos[1]?.url ?? embedded!.localUrl;
  // Every (1/ELIGIBLE)-th node has the tasks' skill; the others one of nine other skills.
  const every = Math.round(1 / ELIGIBLE);
  const skillOf = (i: number) => (SKILL === undefined ? undefined : i % every === 0 ? SKILL : `other${i % 9}`);
  const eligible = Array.from({ length: nodes }, (_, i) => i).filter((i) => SKILL === undefined || skillOf(i) === SKILL).length;
  const bareCoordinator = await startBareCoordinator({
    url: bareUrl, credential: issueCredential(secret, "coordinator"), nodes: eligible, skill: SKILL,
    stream: COORDINATOR_TCP || !embedded ? undefined : () => embedded.connectInMemory(),
  });
  const creds = Array.from({ length: nodes }, (_, i) => ({ id: `sim${i}`, ...issueCredential(secret, "node", `sim${i}`), ...(skillOf(i) ? { skill: skillOf(i) } : {}) }));
  await assertAclOn(coordinator.brokerUrl, creds[0]!, issueCredential(secret, "coordinator"));
  await assertAclOn(bareUrl, creds[0]!, issueCredential(secret, "coordinator"));
  const procs = [...(await simNodes(coordinator.brokerUrl, creds)), ...(await simNodes(bareUrl, creds))];
  while (coordinator.registry.eligibleNodes(undefined, new Set()).length < nodes) await new Promise((r) => setTimeout(r, 20));
  if (coordinator.registry.eligibleNodes(SKILL, new Set()).length !== eligible) throw new Error(`bench auction: ${eligible} nodes should have skill ${SKILL}`);
  const submitterCred = issueCredential(secret, "submitter", SUBMITTER);
  const colony = await submitter(coordinator.brokerUrl, submitterCred, "colony", SKILL);
  const bare = await submitter(bareUrl, submitterCred, "bare", SKILL);
  await closedLoop(20, 1, colony.one); // warm-up: JIT, LevelDB
  await closedLoop(20, 1, bare.one);
  // Colony and bare alternate in rounds so that load from other processes hits both alike.
  const per = Math.ceil(TASKS / ROUNDS);
  const lat: number[] = [];
  const bareLat: number[] = [];
  const s = { colony: 0, bare: 0, colonySeq: 0, bareSeq: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const seq = await closedLoop(per, 1, colony.one);
    lat.push(...seq.lat);
    s.colonySeq += seq.seconds;
    const bseq = await closedLoop(per, 1, bare.one);
    bareLat.push(...bseq.lat);
    s.bareSeq += bseq.seconds;
    s.colony += (await closedLoop(per, CONCURRENCY, colony.one)).seconds;
    s.bare += (await closedLoop(per, CONCURRENCY, bare.one)).seconds;
  }
  for (const p of procs) p.kill("SIGTERM");
  await colony.close();
  await bare.close();
  await bareCoordinator.endAsync(true);
  await embedded?.close();
  for (const m of mosquittos) await m.close();
  const counters = coordinator.counters.snapshot();
  if (process.env.BENCH_DEBUG) console.error(JSON.stringify(counters));
  await coordinator.close();
  rmSync(dataDir, { recursive: true, force: true });
  const total = per * ROUNDS;
  const colonyTps = total / s.colony;
  const bareTps = total / s.bare;
  const r = {
    awardP50Ms: +percentile(lat, 50).toFixed(2),
    awardP99Ms: +percentile(lat, 99).toFixed(2),
    bareAwardP50Ms: +percentile(bareLat, 50).toFixed(2),
    bareAwardP99Ms: +percentile(bareLat, 99).toFixed(2),
    colonyTasksPerS: +colonyTps.toFixed(1),
    bareTasksPerS: +bareTps.toFixed(1),
    ratio: +(colonyTps / bareTps).toFixed(2),
    colonySeqTasksPerS: +(total / s.colonySeq).toFixed(1),
    bareSeqTasksPerS: +(total / s.bareSeq).toFixed(1),
    ok: counters["tasks.ok"] ?? 0,
    notOk: colony.state.notOk,
    bareNotOk: bare.state.notOk,
    dropped: counters["dropped"] ?? 0,
  };
  console.log(`nodes=${nodes}${SKILL ? ` (${eligible} eligible)` : ""}: submit->award p50/p99 colony ${r.awardP50Ms}/${r.awardP99Ms} ms, bare ${r.bareAwardP50Ms}/${r.bareAwardP99Ms} ms (sequential); throughput colony ${r.colonyTasksPerS}/s vs bare ${r.bareTasksPerS}/s (K=${CONCURRENCY}) ratio ${r.ratio}`);
  summary[`n${nodes}`] = r;
}
summary.loadavg1End = +os.loadavg()[0]!.toFixed(1);
console.log(JSON.stringify(summary));
process.exit(0);
