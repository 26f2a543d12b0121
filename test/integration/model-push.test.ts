// Pushing models over MQTT end to end: the real coordinator (embedded aedes, auth and the topic ACL
// on) serving signed models from its store with the real model server, a real node daemon fetching
// them with its real fetcher over TCP, llama.cpp loading a pushed model for a spawned agent. Fetch
// commands and awards are published by a client with the coordinator's rights, as the evolution
// part does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { decode, encode, topics, CommandAckSchema, DoneSchema, ModelProgressSchema, ModelReportSchema, ModelRolloutsSchema, type Award, type CommandAck, type Done, type ModelProgress, type ModelReport } from "../../common/protocol.ts";
import { loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { deriveSigningKey, signManifest, type SignedManifest } from "../../common/model-manifest.ts";
import type { ModelStore } from "../../coordinator/models/model-store.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, startNode, TINY, writeLoraAdapter, writeRandomModel } from "../fixtures/node-helpers.ts";

const NODE = "n-push";
const dir = mkdtempSync(path.join(os.tmpdir(), "colony-push-it-"));
let h: Harness;
let sup: MqttClient;
let node: Awaited<ReturnType<typeof startNode>> | undefined;
let key: ReturnType<typeof deriveSigningKey>;
let seedFile: string;
const acks: CommandAck[] = [];
const reports: ModelReport[] = [];
const dones: Done[] = [];
const progress: ModelProgress[] = [];
/** Offsets whose chunk the server corrupts once (the test hook of the model server). */
const corruptOnce = new Set<number>();

const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

let store: ModelStore;
/** Signed manifests the store serves instead of its own (a tampered one, another fleet's). */
const served = new Map<string, SignedManifest>();

/** A random tiny model (its own seed: its own hash), added to the coordinator's store (which signs it). */
async function pushModel(name: string, seed: number, o: { lineage?: string; tamper?: (s: SignedManifest) => SignedManifest; shape?: typeof TINY } = {}): Promise<string> {
  const file = await writeRandomModel(dir, name, o.shape ?? TINY, seed);
  const signed = await store.add(file, { name, lineage: o.lineage ?? name, skills: ["add"] });
  if (o.tamper) served.set(signed.manifest.sha256, o.tamper(structuredClone(signed)));
  return signed.manifest.sha256;
}

const startPushNode = async () =>
  (node = await startNode({
    nodeId: NODE, url: h.url, cred: await h.nodeCred(NODE), dataDir: path.join(dir, "node"), genomes: [genome("seed", seedFile, ["add"])], calibrate: false,
    modelKey: key.publicKey, modelFetch: { chunkBytes: 4096, window: 4, requestTimeoutMs: 1000, retries: 4 },
  }));

before(async () => {
  h = await startHarness({ modelServer: { corrupt: (offset) => corruptOnce.delete(offset) } });
  key = deriveSigningKey(await loadOrCreateFleetSecret(h.dataDir));
  store = h.coordinator.modelStore!;
  const get = store.get.bind(store);
  store.get = (s) => {
    const e = get(s);
    return e && served.has(s) ? { ...e, signed: served.get(s)! } : e;
  };
  seedFile = await writeRandomModel(dir, "seed", TINY, 1);
  sup = await h.superClient();
  sup.on("message", (t, p) => {
    if (t === topics.nodeCommandAck(NODE)) {
      const m = decode(CommandAckSchema, p);
      if (m.ok) acks.push(m.value);
    } else if (t === topics.nodeModelReport(NODE)) {
      const m = decode(ModelReportSchema, p);
      if (m.ok) reports.push(m.value);
    } else if (t === topics.nodeModelProgress(NODE)) {
      const m = decode(ModelProgressSchema, p);
      if (m.ok) progress.push(m.value);
    } else if (t === topics.nodeDone(NODE)) {
      const m = decode(DoneSchema, p);
      if (m.ok) dones.push(m.value);
    }
  });
  await sup.subscribeAsync([topics.nodeCommandAck(NODE), topics.nodeModelReport(NODE), topics.nodeDone(NODE), topics.nodeModelProgress(NODE)], { qos: 1 });
  await startPushNode();
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
let seq = 0;
async function command(c: Record<string, unknown>): Promise<CommandAck> {
  await sup.publishAsync(topics.nodeCommand(NODE), encode(c), { qos: 1 });
  await until(() => acks.some((a) => a.commandId === c.commandId));
  return acks.find((a) => a.commandId === c.commandId)!;
}
const fetchCmd = (sha256: string) => ({ kind: "fetch", commandId: `c-${++seq}`, agentId: "prefetch", sentAt: Date.now(), sha256 });
const award = (id: string, agentId: string): Award => ({ auctionId: `au-${id}`, taskId: id, attempt: 1, agentId, prompt: "abc", skill: "add", maxTokens: 4, deadlineAt: Date.now() + 60_000, sentAt: Date.now(), ackWithinMs: 1000 });
async function run(a: Award): Promise<Done> {
  await sup.publishAsync(topics.nodeAward(NODE), encode(a), { qos: 1 });
  await until(() => dones.some((d) => d.taskId === a.taskId));
  return dones.find((d) => d.taskId === a.taskId)!;
}
const stored = (s: string) => node!.daemon.models.modelFile(s);

test("a fetch command fetches and verifies a model; a second fetches nothing; a corrupt chunk is fetched again", async () => {
  const s = await pushModel("pushed", 11);
  corruptOnce.add(8192);
  const ack = await command(fetchCmd(s));
  assert.equal(ack.status, "fetched", JSON.stringify(ack.error));
  assert.equal(ack.kind, "fetch");
  assert.equal(sha(stored(s)), s);
  assert.equal(statSync(stored(s)).mode & 0o777, 0o400);
  assert.equal(corruptOnce.size, 0, "the corrupt chunk was served");
  assert.ok(node!.daemon.counters.get("models.chunks.corrupt") >= 1);
  await until(() => reports.some((r) => r.sha256 === s));
  assert.deepEqual(reports.filter((r) => r.sha256 === s).map((r) => [r.ok, r.fetchedBytes]), [[true, statSync(stored(s)).size]]);
  assert.equal(h.coordinator.counters.get("models.reports.ok"), 1);
  const served = h.coordinator.counters.get("models.fetch.chunks");
  assert.equal((await command(fetchCmd(s))).status, "exists");
  assert.equal(h.coordinator.counters.get("models.fetch.chunks"), served, "nothing fetched the second time");
});

test("a spawn with model colony:<sha256> fetches the model, llama.cpp loads it and the agent answers; the seed agent keeps serving", async () => {
  const s = await pushModel("kid-model", 12);
  const ack = await command({ kind: "spawn", commandId: `c-${++seq}`, agentId: "kid", sentAt: Date.now(), genome: { id: "kid", model: `colony:${s}`, skills: ["add"] }, lineage: { parents: ["seed"], generation: 1, reason: "test" } });
  assert.equal(ack.status, "created", JSON.stringify(ack.error));
  assert.ok(existsSync(stored(s)));
  const d = await run(award("t-kid", "kid"));
  assert.equal(d.status, "ok", JSON.stringify(d.error));
  assert.equal(d.agentId, "kid");
  assert.equal((await run(award("t-seed", "seed"))).status, "ok");
  // In use: garbage collection keeps it.
  assert.ok(!(await node!.daemon.collectModels()).includes(s));
  assert.ok(existsSync(stored(s)));
});

test("refusals: a tampered manifest, another fleet's key, a rollback and an unknown hash are refused with their codes and reported", async () => {
  const code = async (s: string) => (await command(fetchCmd(s))).error?.code;
  const tampered = await pushModel("tampered", 21, { tamper: (x) => ({ ...x, manifest: { ...x.manifest, skills: ["math"] } }) });
  assert.equal(await code(tampered), "MODEL_SIGNATURE_INVALID");
  const other = deriveSigningKey(Buffer.from("another fleet's secret"));
  const foreign = await pushModel("foreign", 22, { tamper: (x) => signManifest(x.manifest, other.privateKey, other.keyId) });
  assert.equal(await code(foreign), "MODEL_FOREIGN_KEY");
  // The store numbers a lineage's versions: v1 then v2. A node that holds v2 refuses v1.
  const v1 = await pushModel("lin-v1", 24, { lineage: "lin" });
  const v2 = await pushModel("lin-v2", 23, { lineage: "lin" });
  assert.deepEqual([store.get(v1)?.signed.manifest.version, store.get(v2)?.signed.manifest.version], [1, 2]);
  assert.equal((await command(fetchCmd(v2))).status, "fetched");
  assert.equal(await code(v1), "MODEL_ROLLBACK");
  assert.equal(await code("f".repeat(64)), "MODEL_NOT_FOUND");
  for (const s of [tampered, foreign, v1]) assert.ok(!existsSync(stored(s)));
  await until(() => h.coordinator.counters.get("models.reports.refused") >= 4);
  for (const c of ["MODEL_SIGNATURE_INVALID", "MODEL_FOREIGN_KEY", "MODEL_ROLLBACK", "MODEL_NOT_FOUND"]) assert.equal(h.coordinator.counters.get(`models.refused.${c}`), 1, c);
  assert.equal(node!.daemon.counters.get("models.refused.MODEL_ROLLBACK"), 1);
  // A spawn of a refused model is refused with the model's code.
  const sp = await command({ kind: "spawn", commandId: `c-${++seq}`, agentId: "kid-bad", sentAt: Date.now(), genome: { id: "kid-bad", model: `colony:${foreign}`, skills: ["add"] }, lineage: { parents: ["seed"], generation: 1, reason: "test" } });
  assert.deepEqual([sp.status, sp.error?.code], ["refused", "MODEL_FOREIGN_KEY"]);
  assert.equal((await run(award("t-seed-2", "seed"))).status, "ok", "the node keeps serving");
});

test("a transfer's progress arrives in order, throttled, and reaches the total; a refusal carries its code; the rollout table (retained) shows both", async () => {
  // ~1 MB in 4 KiB chunks: ~250 chunks, so the throttle (250 ms or 5 %) has something to do.
  const s = await pushModel("progress", 51, { shape: { dim: 128, layers: 2, ffn: 256, ctx: 256 } });
  const total = store.get(s)!.signed.manifest.bytes;
  assert.equal((await command(fetchCmd(s))).status, "fetched");
  await until(() => progress.some((p) => p.sha256 === s && p.state === "done"));
  const mine = progress.filter((p) => p.sha256 === s);
  assert.deepEqual(mine.map((p) => p.seq), mine.map((_, i) => i), "in order, none lost");
  assert.equal(new Set(mine.map((p) => p.transferId)).size, 1);
  const states = mine.map((p) => p.state);
  assert.deepEqual(states.slice(-2), ["verifying", "done"]);
  assert.ok(states.slice(0, -2).every((x) => x === "fetching"));
  for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.bytes >= mine[i - 1]!.bytes, "bytes never go back");
  assert.deepEqual([mine.at(-1)!.bytes, mine.at(-1)!.total], [total, total]);
  const fetching = states.filter((x) => x === "fetching").length;
  assert.ok(fetching >= 2 && fetching <= 30, `${fetching} fetching messages for ${Math.ceil(total / 4096)} chunks`);

  const bad = await pushModel("progress-bad", 52, { tamper: (x) => ({ ...x, manifest: { ...x.manifest, skills: ["math"] } }) });
  assert.equal((await command(fetchCmd(bad))).error?.code, "MODEL_SIGNATURE_INVALID");
  await until(() => progress.some((p) => p.sha256 === bad && p.state === "failed"));
  const failed = progress.find((p) => p.sha256 === bad && p.state === "failed")!;
  assert.equal(failed.code, "MODEL_SIGNATURE_INVALID");
  assert.ok(failed.message);

  // The coordinator's table, and its retained copy as a late reader gets it.
  const table = h.coordinator.rollouts!;
  await until(() => table.get(s, NODE)?.state === "done" && table.get(bad, NODE)?.state === "failed");
  assert.deepEqual([table.get(s, NODE)!.bytes, table.get(s, NODE)!.total], [total, total]);
  assert.equal(table.get(bad, NODE)!.code, "MODEL_SIGNATURE_INVALID");
  const late = await h.superClient();
  try {
    const got = new Promise<unknown>((resolve) => late.on("message", (t, p) => t === topics.modelRollouts && resolve(JSON.parse(p.toString()))));
    await new Promise((r) => setTimeout(r, 300));
    await late.subscribeAsync(topics.modelRollouts, { qos: 1 });
    const snap = ModelRolloutsSchema.parse(await got);
    assert.equal(snap.rollouts.find((r) => r.sha256 === s && r.nodeId === NODE)?.state, "done");
    assert.equal(snap.rollouts.find((r) => r.sha256 === bad && r.nodeId === NODE)?.code, "MODEL_SIGNATURE_INVALID");
  } finally {
    await late.endAsync();
  }
});

test("a pushed LoRA adapter on a pushed base model: both fetched, the adapter checked against the base, the agent answers", async () => {
  const baseFile = await writeRandomModel(dir, "lora-base", TINY, 41);
  const base = (await store.add(baseFile, { name: "lora-base", skills: ["add"] })).manifest.sha256;
  const adapterFile = await writeLoraAdapter(baseFile, path.join(dir, "lora-a.gguf"));
  const adapter = (await store.add(adapterFile, { name: "lora-a", format: "gguf-lora", base, skills: ["add"] })).manifest.sha256;
  const ack = await command({ kind: "spawn", commandId: `c-${++seq}`, agentId: "kid-lora", sentAt: Date.now(), genome: { id: "kid-lora", model: `colony:${base}`, adapter: `colony:${adapter}`, skills: ["add"] }, lineage: { parents: ["seed"], generation: 1, reason: "test" } });
  assert.equal(ack.status, "created", JSON.stringify(ack.error));
  assert.equal(sha(stored(adapter)), adapter);
  assert.equal((await run(award("t-lora", "kid-lora"))).status, "ok");
});

test("a node closed mid-transfer resumes from the bytes it has after a restart", async () => {
  // ~1 MB: 250 chunks of 4 KiB. The store stalls past 64 KiB until the node is down.
  const s = await pushModel("big", 31, { shape: { dim: 128, layers: 2, ffn: 256, ctx: 256 } });
  const total = statSync(path.join(dir, "big.gguf")).size;
  const read = store.readChunk.bind(store);
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  store.readChunk = async (x, offset, length) => {
    if (x === s && offset >= 65536) await released;
    return read(x, offset, length);
  };
  try {
    const c = fetchCmd(s);
    await sup.publishAsync(topics.nodeCommand(NODE), encode(c), { qos: 1 });
    const part = node!.daemon.models.partFile(s);
    await until(() => existsSync(part) && statSync(part).size >= 65536);
    await node!.close();
    node = undefined;
    release();
    assert.ok(!acks.some((a) => a.commandId === c.commandId), "a command cut short by the shutdown is not acked");
    await startPushNode();
    const ack = await command(fetchCmd(s));
    assert.equal(ack.status, "fetched", JSON.stringify(ack.error));
    assert.equal(sha(stored(s)), s);
    const r = reports.filter((x) => x.sha256 === s && x.ok).at(-1)!;
    assert.ok(r.fetchedBytes! <= total - 65536, `fetched ${r.fetchedBytes} of ${total} after the resume`);
  } finally {
    store.readChunk = read;
    release();
  }
  assert.equal((await run(award("t-seed-3", "seed"))).status, "ok");
});
