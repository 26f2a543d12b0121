/**
 * `npm run bench -- push [--mb 100] [--rounds 3] [--window 8] [--progress 1] [--ab]`: pushing a model to nodes over MQTT
 * against a raw TCP copy of the same bytes, in the same run and the same process.
 *
 * What is compared:
 *  - push: the real coordinator (coordinator/coordinator.ts, authentication and the topic ACL on,
 *    its embedded aedes broker, its own client on the in-memory link) serving the model from its
 *    store with the real model server; nodes are real mqtt.js clients over loopback TCP, each
 *    logged in with its node credential, each driving the real fetcher (node/models/
 *    model-fetcher.ts: 1 MiB chunks, `window` in flight, sha256 of every chunk, the part file,
 *    the whole-file sha256, the signature, the model gate, the atomic rename into its store),
 *    publishing its throttled progress on `model-progress` as the node daemon does, which the
 *    coordinator's rollout table takes in (`--progress 0`: without it; `--ab`: each round also
 *    pushes once without it, in the same process, and the summary gives the two medians).
 *  - raw: a TCP server on 127.0.0.1 streams the same file, hashing it as it sends (sha256); the
 *    client hashes what it receives, writes it to a file and compares the hash: like for like,
 *    both sides hash, one writes, nothing else.
 * Measured: one node (MB/s, best of `rounds`, push and raw alternating so that load from other
 * processes hits both alike; ratio = push / raw), and a rollout to 4 nodes at once (time until the
 * last node holds the verified model; aggregate MB/s). The model is a valid GGUF (a random llama
 * model of ~`mb` MB written with the trainer's exporter) so that the gate passes it.
 * Last stdout line: one-line JSON summary.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import { Counters } from "../common/counters.ts";
import { silentLogger } from "../common/logger.ts";
import { connectMqtt } from "../common/mqtt-connect.ts";
import { channels, topics, type ModelProgress } from "../common/protocol.ts";
import { loadOrCreateFleetSecret } from "../coordinator/auth.ts";
import { deriveSigningKey } from "../common/model-manifest.ts";
import { ModelFetcher } from "../node/models/model-fetcher.ts";
import { NodeModelStore } from "../node/models/model-store.ts";
import { ModelVersions } from "../node/models/model-versions.ts";
import { verifyModelFile } from "../node/llama/model-file.ts";
import { startHarness } from "../test/fixtures/coordinator-harness.ts";
import { writeRandomModel } from "../test/fixtures/node-helpers.ts";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const MB = arg("mb", 100);
const ROUNDS = arg("rounds", 3);
const WINDOW = arg("window", 8);
const PROGRESS = arg("progress", 1) !== 0;
const AB = process.argv.includes("--ab");

const work = mkdtempSync(path.join(os.tmpdir(), "colony-bench-push-"));
// ~50 MB of F32 weights per layer at dim 1024, ffn 2816.
const layers = Math.max(1, Math.round(MB / 50.6));
const file = await writeRandomModel(work, "push", { dim: 1024, layers, ffn: 2816, ctx: 256 });
const bytes = statSync(file).size;
const sha256 = await new Promise<string>((res, rej) => {
  const h = createHash("sha256");
  createReadStream(file).on("data", (c) => h.update(c)).on("end", () => res(h.digest("hex"))).on("error", rej);
});
console.error(`model: ${(bytes / 1e6).toFixed(1)} MB, ${layers} layers, sha256 ${sha256.slice(0, 12)}`);

const h = await startHarness({ dataDir: path.join(work, "coord") });
const key = deriveSigningKey(await loadOrCreateFleetSecret(h.dataDir));
const added = await h.coordinator.modelStore!.add(file, { name: "push", skills: [] });
if (added.manifest.sha256 !== sha256) throw new Error("the store hashed the model differently");

async function node(i: number) {
  const nodeId = `bench${i}`;
  const cred = await h.nodeCred(nodeId);
  const client = await connectMqtt({ url: h.url, username: cred.username, password: cred.password, logger: silentLogger, clientId: `${cred.username}:daemon` });
  (client.stream as net.Socket).setNoDelay?.(true);
  await client.subscribeAsync(topics.nodeModelChunk(nodeId), { qos: 0 });
  return { nodeId, client };
}
const nodes = await Promise.all([0, 1, 2, 3].map(node));

/** One push to `n` nodes at once: ms until the last holds the verified model. */
async function push(n: number, progress = PROGRESS): Promise<number> {
  const runs = nodes.slice(0, n).map(async ({ nodeId, client }) => {
    const dir = path.join(work, `node-${nodeId}`);
    rmSync(dir, { recursive: true, force: true });
    const store = new NodeModelStore(dir);
    await store.open();
    const versions = new ModelVersions(dir);
    const f = new ModelFetcher({
      nodeId, store, versions, modelKey: () => key.publicKey, inUse: () => new Set(), counters: new Counters(silentLogger), logger: silentLogger, now: Date.now,
      send: (req) => client.publish(channels.nodeModelFetch.topic(nodeId), JSON.stringify(req), { qos: 1 }),
      report: (r) => client.publish(channels.nodeModelReport.topic(nodeId), JSON.stringify(r), { qos: 1 }),
      gate: async (p) => void (await verifyModelFile(p)), window: WINDOW,
      // As node/daemon.ts: bytes at QoS 0, a change of state at QoS 1.
      ...(progress ? { progress: (m: ModelProgress) => client.publish(channels.nodeModelProgress.topic(nodeId), JSON.stringify(m), { qos: m.state === "fetching" ? 0 : 1 }) } : {}),
    });
    const onMsg = (_t: string, p: Buffer) => f.onFrame(p);
    client.on("message", onMsg);
    try {
      const r = await f.ensure(sha256);
      if (r.fetchedBytes !== bytes) throw new Error(`fetched ${r.fetchedBytes} of ${bytes}`);
    } finally {
      client.off("message", onMsg);
      f.close();
    }
  });
  const t0 = performance.now();
  await Promise.all(runs);
  return performance.now() - t0;
}

/** The raw TCP copy: both sides hash, the receiver writes the file. */
async function raw(): Promise<number> {
  const server = net.createServer({ noDelay: true }, (sock) => {
    const hash = createHash("sha256");
    const src = createReadStream(file, { highWaterMark: 1 << 20 });
    src.on("data", (c) => hash.update(c));
    src.pipe(sock);
    src.on("end", () => void hash.digest("hex"));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const out = path.join(work, "raw.bin");
  rmSync(out, { force: true });
  const t0 = performance.now();
  await new Promise<void>((res, rej) => {
    const sock = net.connect({ port, host: "127.0.0.1", noDelay: true });
    const hash = createHash("sha256");
    const dst = createWriteStream(out);
    sock.on("data", (c) => hash.update(c));
    sock.pipe(dst);
    dst.on("finish", () => (hash.digest("hex") === sha256 ? res() : rej(new Error("raw copy hash mismatch"))));
    sock.on("error", rej);
  });
  const ms = performance.now() - t0;
  server.close();
  return ms;
}

const mbps = (ms: number, n = 1) => +((bytes * n) / 1e6 / (ms / 1000)).toFixed(1);
const pushMs: number[] = [];
const rawMs: number[] = [];
const pushOffMs: number[] = [];
await push(1); // warm-up (JIT, page cache)
for (let r = 0; r < ROUNDS; r++) {
  rawMs.push(await raw());
  // --ab: the order of the two pushes alternates, so neither always runs right after the raw copy.
  if (AB && r % 2 === 1) pushOffMs.push(await push(1, false));
  pushMs.push(await push(1));
  if (AB && r % 2 === 0) pushOffMs.push(await push(1, false));
  console.error(`round ${r + 1}: raw ${mbps(rawMs.at(-1)!)} MB/s, push ${mbps(pushMs.at(-1)!)} MB/s${AB ? `, push without progress ${mbps(pushOffMs.at(-1)!)} MB/s` : ""}`);
}
const four: number[] = [];
for (let r = 0; r < ROUNDS; r++) four.push(await push(4));
const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = {
  bench: "push",
  modelMB: +(bytes / 1e6).toFixed(1),
  window: WINDOW,
  chunkKiB: 1024,
  progress: PROGRESS,
  rolloutsDone: h.coordinator.counters.get("models.rollouts.done"),
  rawMBps: mbps(best(rawMs)),
  pushMBps: mbps(best(pushMs)),
  ratio: +(best(rawMs) / best(pushMs)).toFixed(2),
  rollout4Ms: Math.round(best(four)),
  rollout4AggregateMBps: mbps(best(four), 4),
  rawMsAll: rawMs.map(Math.round),
  pushMsAll: pushMs.map(Math.round),
  rollout4MsAll: four.map(Math.round),
  ...(AB ? { pushOffMsAll: pushOffMs.map(Math.round), progressCost: +(median(pushMs) / median(pushOffMs)).toFixed(3), progressCostBest: +(best(pushMs) / best(pushOffMs)).toFixed(3) } : {}),
  loadavg1: +os.loadavg()[0]!.toFixed(1),
  cpus: os.cpus().length,
};
for (const n of nodes) await n.client.endAsync(true);
await h.close();
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify(summary));
process.exit(0);
