// Agent life cycle on a real node: spawn, retire and wake commands published by a client with the
// coordinator's rights on the real coordinator's broker (auth on), acks on command-ack, the retained
// status, a restart on the same LevelDB, real llama.cpp on the seed models and a LoRA adapter.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { MqttClient } from "mqtt";
import { GenomeSchema, genomeHash } from "../../common/genome.ts";
import { decode, encode, topics, AckSchema, CommandAckSchema, DoneSchema, NodeStatusSchema, type Ack, type AgentInfo, type Award, type CommandAck, type Done, type NodeStatus } from "../../common/protocol.ts";
import { ColonyError } from "../../common/errors.ts";
import { AgentMaker } from "../../node/agents/agent-maker.ts";
import { resolveProfile } from "../../node/profile.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, SMALL, startNode, writeLoraAdapter, writeRandomModel } from "../fixtures/node-helpers.ts";

const NODE = "n-life";
const SEEDS = fileURLToPath(new URL("../../models/", import.meta.url));
const seedAdd = path.join(SEEDS, "seed-add.gguf");
const seedCount = path.join(SEEDS, "seed-count.gguf");
const countSha = (JSON.parse(readFileSync(path.join(SEEDS, "seed-manifest.json"), "utf8")) as { models: { name: string; sha256: string }[] }).models.find((m) => m.name === "seed-count")!.sha256;
const profile = { ...resolveProfile("generic"), maxAgents: 6 };
const fileGenomes = [genome("file-a", seedAdd, ["add"]), genome("file-b", seedCount, ["count"])];

const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-life-"));
let h: Harness;
let node: Awaited<ReturnType<typeof startNode>>;
let sup: MqttClient;
let small: string;
let adapter: string;
let status: NodeStatus | undefined;
const acks: CommandAck[] = [];
const awardAcks: Ack[] = [];
const dones: Done[] = [];
/** Command acks and task dones in arrival order. */
const events: string[] = [];

let nodeCred: { username?: string; password?: string } = {};
const startLifeNode = (retireWaitMs?: number) =>
  startNode({ nodeId: NODE, url: h.url, cred: nodeCred, dataDir: path.join(dir, "node"), genomes: fileGenomes, profile, sleepAfterMs: 400, ...(retireWaitMs !== undefined ? { retireWaitMs } : {}) });

before(async () => {
  h = await startHarness();
  small = await writeRandomModel(dir, "small", SMALL, 6);
  adapter = await writeLoraAdapter(seedAdd, path.join(dir, "add-lora.gguf"));
  sup = await h.superClient();
  sup.on("message", (t, p) => {
    if (t === topics.nodeCommandAck(NODE)) {
      const m = decode(CommandAckSchema, p);
      if (m.ok) (acks.push(m.value), events.push(`ack:${m.value.commandId}`));
    } else if (t === topics.nodeStatus(NODE)) {
      const m = decode(NodeStatusSchema, p);
      if (m.ok) status = m.value;
    } else if (t === topics.nodeDone(NODE)) {
      const m = decode(DoneSchema, p);
      if (m.ok) (dones.push(m.value), events.push(`done:${m.value.taskId}`));
    } else if (t === topics.nodeAck(NODE)) {
      const m = decode(AckSchema, p);
      if (m.ok) awardAcks.push(m.value);
    }
  });
  await sup.subscribeAsync([topics.nodeCommandAck(NODE), topics.nodeStatus(NODE), topics.nodeDone(NODE), topics.nodeAck(NODE)], { qos: 1 });
  nodeCred = await h.nodeCred(NODE);
  node = await startLifeNode();
});
after(async () => {
  await node?.close();
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});
async function until(f: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const info = (id: string): AgentInfo | undefined => (status?.state === "online" ? status.agents.find((a) => a.agentId === id) : undefined);

let seq = 0;
async function command(c: Record<string, unknown>): Promise<CommandAck> {
  const n = acks.filter((a) => a.commandId === c.commandId).length;
  await sup.publishAsync(topics.nodeCommand(NODE), encode(c), { qos: 1 });
  await until(() => acks.filter((a) => a.commandId === c.commandId).length > n);
  return acks.filter((a) => a.commandId === c.commandId)[n]!;
}
const spawn = (agentId: string, g: Record<string, unknown>, generation = 1) => ({
  kind: "spawn", commandId: `c-${++seq}`, agentId, sentAt: Date.now(), genome: { id: agentId, skills: ["add"], ...g }, lineage: { parents: ["file-a"], generation, reason: "test" },
});
const retire = (agentId: string) => ({ kind: "retire", commandId: `c-${++seq}`, agentId, sentAt: Date.now(), reason: "test" });
const wake = (agentId: string, holdMs: number) => ({ kind: "wake", commandId: `c-${++seq}`, agentId, sentAt: Date.now(), holdMs, reason: "test" });
const award = (id: string, agentId: string, o: Partial<Award> = {}): Award => ({ auctionId: `au-${id}`, taskId: id, attempt: 1, agentId, prompt: "add 12 34 =", skill: "add", maxTokens: 4, deadlineAt: Date.now() + 60_000, sentAt: Date.now(), ackWithinMs: 1000, ...o });
async function run(a: Award): Promise<Done> {
  await sup.publishAsync(topics.nodeAward(NODE), encode(a), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === a.taskId));
  return dones.find((d) => d.taskId === a.taskId)!;
}

test("spawn creates an asleep agent in the node's status with its spec and generation; a re-sent spawn acks exists; another genome under its id is AGENT_EXISTS", async () => {
  const c = spawn("kid-1", { model: seedAdd, promptTemplate: "{prompt}" }, 3);
  const ack = await command(c);
  assert.equal(ack.status, "created", JSON.stringify(ack.error));
  assert.deepEqual([ack.nodeId, ack.agentId, ack.kind], [NODE, "kid-1", "spawn"]);
  const spec = GenomeSchema.parse(c.genome);
  assert.equal(ack.genome, genomeHash(spec));
  await until(() => info("kid-1") !== undefined);
  assert.deepEqual({ ...info("kid-1") }, { agentId: "kid-1", skills: ["add"], model: seedAdd, state: "asleep", genome: genomeHash(spec), spec, generation: 3 });
  assert.equal(info("file-a")?.generation, 0);
  assert.equal(node.daemon.pool.get("kid-1")?.state, "asleep", "a spawn never loads the model");

  assert.equal((await command(c)).status, "exists", "the same command again");
  assert.equal((await command({ ...c, commandId: `c-${++seq}` })).status, "exists", "the same genome under a new command");
  const other = await command(spawn("kid-1", { model: seedCount }));
  assert.equal(other.status, "refused");
  assert.equal(other.error?.code, "AGENT_EXISTS");
});

test("spawn refusals: MODEL_MISSING, GENOME_INVALID, MEMORY_BUDGET, POPULATION_LIMIT; a pinned model the node holds is found by its hash", async () => {
  const code = async (c: Record<string, unknown>) => (await command(c)).error?.code;
  assert.equal(await code(spawn("kid-miss", { model: path.join(dir, "nope.gguf") })), "MODEL_MISSING");
  assert.equal(await code(spawn("kid-miss", { model: `nope.gguf#sha256=${"0".repeat(64)}` })), "MODEL_MISSING");
  const byHash = await command(spawn("kid-hash", { model: `elsewhere/seed-count.gguf#sha256=${countSha}`, skills: ["count"] }));
  assert.equal(byHash.status, "created", JSON.stringify(byHash.error));
  assert.equal(node.daemon.pool.get("kid-hash")?.modelFile, seedCount);

  const bad = await command({ ...spawn("kid-bad", { model: seedAdd, promptTemplate: "no placeholder" }) });
  assert.deepEqual([bad.status, bad.error?.code], ["refused", "GENOME_INVALID"]);
  assert.match(bad.error!.message, /promptTemplate/);
  const { reason: _r, ...noReason } = retire("kid-1");
  assert.equal(await code(noReason), "PAYLOAD_INVALID", "an envelope that names its command is refused with the decode code");
  // Nobody to tell: no ack, and the next command is answered as usual.
  const before = acks.length;
  await sup.publishAsync(topics.nodeCommand(NODE), "{not json", { qos: 1 });
  await sup.publishAsync(topics.nodeCommand(NODE), encode({ kind: "spawn", agentId: "x" }), { qos: 1 });
  assert.equal((await command(retire("never-there"))).status, "absent");
  assert.equal(acks.length, before + 1);

  node.probe.inject({ totalMemMB: profile.memoryReserveMB + 4 });
  try {
    assert.equal(await code(spawn("kid-big", { model: seedAdd })), "MEMORY_BUDGET");
  } finally {
    node.probe.inject({ totalMemMB: undefined });
  }
  const fillers: string[] = [];
  while (node.daemon.pool.agents.size < profile.maxAgents) {
    const id = `kid-fill-${fillers.length}`;
    assert.equal((await command(spawn(id, { model: seedAdd }))).status, "created");
    fillers.push(id);
  }
  assert.equal(await code(spawn("kid-over", { model: seedAdd })), "POPULATION_LIMIT");
  for (const id of fillers) assert.equal((await command(retire(id))).status, "retired");
});

test("an adapter on a spawned agent changes its answers; one made for another model is ADAPTER_INVALID", async () => {
  const ack = await command(spawn("kid-lora", { model: seedAdd, adapter }));
  assert.equal(ack.status, "created", JSON.stringify(ack.error));
  const plain = await run(award("t-plain", "file-a"));
  const tuned = await run(award("t-lora", "kid-lora"));
  assert.equal(plain.status, "ok");
  assert.equal(tuned.status, "ok", JSON.stringify(tuned.error));
  assert.notEqual(tuned.output, plain.output, "the adapter is applied");
  const wrong = await writeLoraAdapter(small, path.join(dir, "small-lora.gguf"));
  for (const a of [wrong, path.join(dir, "no-such-lora.gguf")]) {
    const r = await command(spawn("kid-wrong", { model: seedAdd, adapter: a }));
    assert.deepEqual([r.status, r.error?.code], ["refused", "ADAPTER_INVALID"], r.error?.message);
  }
});

test("retire acks retired and the agent leaves the status and the market; a re-sent retire acks absent", async () => {
  const c = retire("kid-1");
  assert.equal((await command(c)).status, "retired");
  await until(() => status?.state === "online" && !info("kid-1"));
  assert.equal(node.daemon.pool.get("kid-1"), undefined);
  assert.equal((await command(c)).status, "absent");
  await sup.publishAsync(topics.nodeAward(NODE), encode(award("t-gone", "kid-1")), { qos: 1 });
  await until(() => awardAcks.some((a) => a.taskId === "t-gone"));
  assert.match(awardAcks.find((a) => a.taskId === "t-gone")!.reason!, /AGENT_NOT_FOUND/);
  // An agent of the agents file, for the restart below.
  assert.equal((await command(retire("file-b"))).status, "retired");
});

test("wake acks warmed and holds the agent awake past sleepAfterMs, then it sleeps; an unknown agent is AGENT_NOT_FOUND", async () => {
  const ack = await command(wake("kid-hash", 1500));
  assert.equal(ack.status, "warmed", JSON.stringify(ack.error));
  const agent = node.daemon.pool.get("kid-hash")!;
  assert.equal(agent.state, "awake");
  await sleep(1000); // sleepAfterMs is 400: without the hold it would sleep now
  assert.equal(agent.state, "awake");
  await until(() => agent.state === "asleep", 5000);
  const nobody = await command(wake("nobody", 1000));
  assert.deepEqual([nobody.status, nobody.error?.code], ["refused", "AGENT_NOT_FOUND"]);
});

test("a retire during a running task lets the task finish, then retires", async () => {
  assert.equal((await command(spawn("kid-slow", { model: small }))).status, "created");
  await sup.publishAsync(topics.nodeAward(NODE), encode(award("t-slow", "kid-slow", { prompt: "abc", maxTokens: 400 })), { qos: 1 });
  await until(() => node.daemon.activeJobs === 1 && node.daemon.pool.get("kid-slow")?.state === "busy");
  const c = retire("kid-slow");
  const ack = await command(c);
  assert.equal(ack.status, "retired");
  const done = dones.find((d) => d.taskId === "t-slow")!;
  assert.equal(done?.status, "ok", "the accepted task was not dropped");
  assert.ok(events.indexOf("done:t-slow") < events.indexOf(`ack:${c.commandId}`), "done before the retire's ack");
  assert.equal(node.daemon.runtime.isLoaded(small), false, "the retired agent's model is freed");
});

test("a restarted node hosts the same population (spawned back, retired stays retired) and registers it; a retire that outwaits its bound is AGENT_BUSY", async () => {
  const hosted = [...node.daemon.pool.agents.keys()].sort();
  assert.ok(hosted.includes("kid-lora") && !hosted.includes("file-b"));
  await node.close();
  status = undefined;
  node = await startLifeNode(300);
  assert.deepEqual([...node.daemon.pool.agents.keys()].sort(), hosted);
  await until(() => status?.state === "online" && status.agents.length === hosted.length);
  assert.equal(info("kid-hash")?.generation, 1);
  assert.equal(info("file-b"), undefined);
  assert.equal((await command(spawn("kid-lora", { model: seedAdd, adapter }))).status, "exists");

  assert.equal((await command(spawn("kid-busy", { model: small }))).status, "created");
  await sup.publishAsync(topics.nodeAward(NODE), encode(award("t-busy", "kid-busy", { prompt: "abc", maxTokens: 1000 })), { qos: 1 });
  await until(() => node.daemon.pool.get("kid-busy")?.state === "busy");
  const busy = await command(retire("kid-busy"));
  assert.deepEqual([busy.status, busy.error?.code], ["refused", "AGENT_BUSY"]);
  assert.equal(node.daemon.activeJobs, 1, "the task still runs");
  assert.ok(node.daemon.pool.get("kid-busy"), "the agent is back in the pool");
  await sup.publishAsync(topics.nodeCancel(NODE), encode({ auctionId: "au-t-busy", taskId: "t-busy", reason: "test over" }), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === "t-busy"));
});

test("a model to download that does not fit the free disk is DISK_BUDGET; one that fits is downloaded; one the mirror lacks is MODEL_MISSING", async (t) => {
  const body = readFileSync(seedAdd);
  const server = http.createServer((req, res) => {
    if (req.url!.split("?")[0] !== "/user/repo/resolve/main/add.gguf") return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length, "content-type": "application/octet-stream" }).end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  let free = body.length - 1;
  const maker = new AgentMaker({
    runtime: node.daemon.runtime, baseDir: dir, modelsDir: path.join(dir, "downloads"), facts: new Map(), now: Date.now,
    freeDiskBytes: async () => free, hfEndpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
  });
  const code = (c: string) => (e: unknown) => e instanceof ColonyError && e.code === c;
  await assert.rejects(maker.locate("hf:user/repo/add.gguf", "model"), code("DISK_BUDGET"));
  free = 10 * body.length;
  const got = await maker.locate("hf:user/repo/add.gguf", "model");
  assert.deepEqual(readFileSync(got.file), body);
  free = 0;
  assert.equal((await maker.locate("hf:user/repo/add.gguf", "model")).file, got.file, "already downloaded: no disk needed");
  await assert.rejects(maker.locate("hf:user/repo/missing.gguf", "model"), code("MODEL_MISSING"));
});
