// Chaos: power loss (SIGKILL) of a real `colony node` while it swaps in a model for a new agent,
// on the embedded broker and on mosquitto (docs/chaos.md, "Model swap"). The node serves a seed
// agent on llama.cpp (models/seed-add.gguf, skills add and sum); a scripted helper node also serves
// add. For each of four rounds the coordinator's part (a client with the coordinator's rights,
// re-sending one spawn command with the same commandId until it is acked, as
// coordinator/evolution/commands.ts does) spawns a child whose genome names a new signed model of the
// coordinator's store by content (`colony:<sha256>`, the form evolution and the mind use), and the
// node is SIGKILLed at one point of the swap, chosen by watching its data folder:
//   fetch    - mid-transfer (its `.part` holds a seeded fraction of the model);
//   commit   - the model was verified and renamed into the store (`<sha256>.gguf` appeared): the
//              runtime is copying and gating it, the spawn is not stored yet;
//   persist  - the runtime's verified copy appeared: the agent set is being written (or just was);
//   load     - after the spawn was acked `created`: at the child's first award (llama.cpp loads it);
// then restarted on the same data folder. Each time, with the node down: every model in its store is
// the file named by its sha256, with its manifest, nothing else counted as a model; the stored agent
// set is readable and the child is either absent or stored with that verified model. After the
// restart: the re-sent spawn acks `exists` exactly when the child was stored (else `created`), no
// transfer or temporary file is left, the child serves a task, and the seed agent serves one. The
// add tasks sent all along (before, during, after the kills) and every other task end in exactly one
// result (assertExactlyOneResult); the add tasks all `ok`.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../common/logger.ts";
import { deriveSigningKey } from "../../common/model-manifest.ts";
import { Rng } from "../../common/random.ts";
import { decode, encode, topics, AwardSchema, CommandAckSchema, ModelProgressSchema, type CommandAck, type ModelProgress } from "../../common/protocol.ts";
import { loadOrCreateFleetSecret, nodeCredentialFile } from "../../coordinator/auth.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { ModelStore } from "../../coordinator/models/model-store.ts";
import { AgentStore, type SpawnedRecord } from "../../node/agents/agent-store.ts";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, sleep, startBidders, until } from "../fixtures/chaos-fleet.ts";
import { SMALL, writeRandomModel } from "../fixtures/node-helpers.ts";

const NODE = "swap-node";
const SEED_ADD = fileURLToPath(new URL("../../models/seed-add.gguf", import.meta.url));
const POINTS = ["fetch", "commit", "persist", "load"] as const;
type Point = (typeof POINTS)[number];
const SEED = Number(process.env.COLONY_CHAOS_SEED ?? 29);
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const CLEAN_CODES = /^(NO_BIDDERS|ATTEMPTS_EXHAUSTED|DEADLINE_EXCEEDED)$/;

// The four models to swap in (14 MB each, their own seeds: their own hashes), written once for both brokers.
const modelsDir = mkdtempSync(path.join(os.tmpdir(), "colony-swap-models-"));
after(() => rmSync(modelsDir, { recursive: true, force: true }));
let written: Promise<string[]> | undefined;
const swapModels = () => (written ??= (async () => {
  const out: string[] = [];
  for (const [i, p] of POINTS.entries()) out.push(await writeRandomModel(modelsDir, `swap-${p}`, SMALL, 41 + i));
  return out;
})());

/** Adds the files to the coordinator's model store (before it starts: it holds the store), which signs them; their sha256s. */
async function addToStore(dataDir: string, files: readonly string[]): Promise<string[]> {
  const key = deriveSigningKey(await loadOrCreateFleetSecret(dataDir));
  const tasks = new TaskStore(path.join(dataDir, "tasks"));
  await tasks.start();
  const store = new ModelStore({ dir: path.join(dataDir, "models"), tasks, key, logger: silentLogger });
  try {
    await store.start();
    const out: string[] = [];
    for (const f of files) out.push((await store.add(f, { name: path.basename(f, ".gguf"), skills: ["swap"] })).manifest.sha256);
    return out;
  } finally {
    await store.close();
    await tasks.close();
  }
}

for (const broker of BROKERS) test(`power loss during a model swap on a real node on ${broker}: killed mid-fetch, after the commit, around the persist and at the first load; one valid model per hash, a valid agent set, the child serves, every task one result`, { skip: brokerSkip(broker), timeout: 300_000 }, async (t) => {
  const started = Date.now();
  const rng = new Rng(SEED);
  const files = await swapModels();
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-swap-"));
  const coordData = path.join(dir, "coordinator");
  let hashes: string[];
  let fleet: ChaosFleet;
  try {
    hashes = await addToStore(coordData, files);
    // An agent whose attempt failed (the kill) sits out a penalty (5 s by default, doubling): short here, so
    // the child killed at its first load can bid again as soon as its node is back.
    fleet = await ChaosFleet.start({ broker, host: "127.0.0.1", nodes: [NODE, "helper"], dataDir: coordData, config: { penaltyBaseMs: 200 } });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let node: ChildProcess | undefined;
  let bidders: Awaited<ReturnType<typeof startBidders>> = [];
  let stopAdds = true;
  t.after(async () => {
    stopAdds = true;
    node?.kill("SIGKILL");
    await Promise.all(bidders.map((b) => b.kill("SIGKILL")));
    await fleet.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  const credFile = path.join(dir, "node.json");
  writeFileSync(credFile, JSON.stringify(nodeCredentialFile(fleet.secret, NODE, fleet.url)));
  chmodSync(credFile, 0o600);
  const agentsFile = path.join(dir, "agents.json");
  writeFileSync(agentsFile, JSON.stringify({ agents: [{ id: "seed", model: SEED_ADD, skills: ["add", "sum"] }] }));
  const data = path.join(dir, "node");
  mkdirSync(data);
  const store = path.join(data, "colony-models");
  const copies = path.join(data, "verified-models");
  const startNode = async () => (node = await fleet.procs.start(["node", "--credentials", credFile, "--node-id", NODE, "--agents", agentsFile, "--data-dir", data, "--threads", "1", "--profile", "generic", "--no-calibrate"], 120_000));
  const killNode = async () => {
    const n = node!;
    const exited = once(n, "exit");
    n.kill("SIGKILL");
    await exited;
  };

  // The coordinator's side of life cycle commands: acks and awards on the node's topics.
  const ctl = await fleet.connect("coordinator");
  const acks: CommandAck[] = [];
  const awards: string[] = [];
  const progress: ModelProgress[] = [];
  const onAward = new Set<(taskId: string) => void>();
  ctl.on("message", (topic, payload) => {
    if (topic === topics.nodeCommandAck(NODE)) {
      const a = decode(CommandAckSchema, payload);
      if (a.ok) acks.push(a.value);
    } else if (topic === topics.nodeAward(NODE)) {
      const a = decode(AwardSchema, payload);
      if (a.ok) (awards.push(a.value.taskId), onAward.forEach((f) => f(a.value.taskId)));
    } else if (topic === topics.nodeModelProgress(NODE)) {
      const p = decode(ModelProgressSchema, payload);
      if (p.ok) progress.push(p.value);
    }
  });
  await ctl.subscribeAsync([topics.nodeCommandAck(NODE), topics.nodeAward(NODE), topics.nodeModelProgress(NODE)], { qos: 1 });
  /** Publishes the command, and again (same commandId) every `everyMs`, until an ack newer than the call arrives. */
  const command = async (c: { commandId: string }, ms = 90_000, everyMs = 4000): Promise<CommandAck> => {
    const seen = acks.filter((a) => a.commandId === c.commandId).length;
    const fresh = () => acks.filter((a) => a.commandId === c.commandId)[seen];
    const end = Date.now() + ms;
    for (let next = 0; !fresh(); await sleep(25)) {
      if (Date.now() > end) throw new Error(`command ${c.commandId} not acked within ${ms} ms`);
      if (Date.now() < next) continue;
      next = Date.now() + everyMs;
      await ctl.publishAsync(topics.nodeCommand(NODE), encode({ ...c, sentAt: Date.now() }), { qos: 1 });
    }
    return fresh()!;
  };

  await startNode();
  bidders = await startBidders(fleet, [{ nodeId: "helper", spec: { skills: ["add"], workMs: 50 } }]);
  await fleet.waitOnline([NODE, "helper"]);
  const sub = await fleet.submitter();

  // add tasks all along, one after another: the helper takes them while the node is down.
  const adds: string[] = [];
  stopAdds = false;
  const addLoop = (async () => {
    for (let i = 0; !stopAdds; i++) {
      const id = `add-${i}`;
      adds.push(id);
      await sub.submit(id, { prompt: `add ${i % 50} ${(i * 7) % 50} =`, skill: "add", maxTokens: 4, deadlineMs: 30_000 });
      await sub.waitResults([id], 60_000);
      await sleep(150);
    }
  })();
  addLoop.catch(() => {}); // awaited below; a failed test must not leave it unhandled
  /** A task only the seed agent can take (sum), served by it. */
  const seedServes = async (id: string) => {
    await sub.submit(id, { prompt: "add 2 3 =", skill: "sum", maxTokens: 4, deadlineMs: 30_000 });
    await sub.waitResults([id], 45_000);
    const r = sub.result(id)!;
    assert.deepEqual([r.status, r.nodeId, r.agentId], ["ok", NODE, "seed"], `${id}: ${JSON.stringify(r)}`);
  };
  await seedServes("sum-before");
  await until(() => adds.length >= 2, 30_000, "add tasks flow");

  /** Files of the node's model store; `settled`: no swap in progress (after a restart and the spawn's ack). */
  const checkStore = (settled: boolean, what: string) => {
    const names = existsSync(store) ? readdirSync(store) : [];
    const models = names.flatMap((n) => /^([0-9a-f]{64})\.gguf$/.exec(n)?.[1] ?? []);
    for (const h of models) {
      assert.equal(sha(path.join(store, `${h}.gguf`)), h, `${what}: the file named ${h.slice(0, 12)} is that model`);
      assert.ok(names.includes(`${h}.manifest.json`), `${what}: model ${h.slice(0, 12)} has its signed manifest`);
    }
    const allowed = settled ? /^([0-9a-f]{64}\.(gguf|manifest\.json)|versions\.json)$/ : /^([0-9a-f]{64}\.(gguf|manifest\.json(\.tmp)?)|\.[0-9a-f]{64}\.(part|chunks)|versions\.json(\.\d+\.tmp)?)$/;
    assert.deepEqual(names.filter((n) => !allowed.test(n)), [], `${what}: only models, manifests and ${settled ? "no transfer or temporary file" : "transfer files"} in the store`);
    if (settled) assert.deepEqual(names.filter((n) => n.endsWith(".manifest.json")).map((n) => n.slice(0, 64)).sort(), models.sort(), `${what}: no manifest without its model`);
    // The runtime's verified copies (what llama.cpp loads): each named by its content too.
    const copied = existsSync(copies) ? readdirSync(copies).filter((n) => statSync(path.join(copies, n)).isFile()) : [];
    for (const n of copied) {
      const h = /^([0-9a-f]{64})\.gguf$/.exec(n)?.[1];
      if (h) assert.equal(sha(path.join(copies, n)), h, `${what}: the verified copy ${n.slice(0, 12)} is that model`);
      else assert.ok(!settled && /^\.[0-9a-f-]{36}\.tmp$/.test(n), `${what}: unexpected file ${n} among the verified copies`);
    }
    return models;
  };
  /** The node's stored agent set (node down: LevelDB is single-process): every record readable, each spawned model verified. */
  const storedAgents = async (what: string): Promise<Map<string, SpawnedRecord>> => {
    const { Level } = await import("level");
    const db = new Level<string, unknown>(path.join(data, "db"), { valueEncoding: "json" });
    await db.open();
    try {
      const raw = await db.sublevel<string, unknown>("agents-spawned", { valueEncoding: "json" }).keys().all();
      const agents = new AgentStore(db, silentLogger);
      await agents.start();
      const out = new Map<string, SpawnedRecord>();
      for (const id of raw) {
        const rec = agents.spawned(id);
        assert.ok(rec, `${what}: the stored spawn of ${id} is readable`);
        const h = /^colony:([0-9a-f]{64})$/.exec(rec.genome.model)?.[1];
        assert.ok(h, `${what}: ${id} names its model by content`);
        assert.equal(rec.files?.model, path.join(store, `${h}.gguf`), `${what}: ${id} is stored with the model of the node's verified store`);
        assert.equal(sha(rec.files!.model!), h, `${what}: ${id}'s model file is its model`);
        out.set(id, rec);
      }
      return out;
    } finally {
      await db.close();
    }
  };

  const swapTasks: string[] = [];
  const report: string[] = [];
  for (const [i, point] of POINTS.entries()) {
    const h = hashes[i]!;
    const bytes = statSync(files[i]!).size;
    const child = `child-${point}`;
    const skill = `swap-${point}`;
    const spawn = { kind: "spawn", commandId: `swap-${point}-${broker}`, agentId: child, genome: { id: child, model: `colony:${h}`, skills: [skill] }, lineage: { parents: ["seed"], generation: 1, reason: `chaos: model swap (${point})` } };
    const part = path.join(store, `.${h}.part`);
    const chunksFile = path.join(store, `.${h}.chunks`);
    /** Bytes the .part holds: the chunks written (listed in .chunks), in whatever order they came. */
    const held = () => {
      try {
        return [...readFileSync(chunksFile, "utf8").matchAll(/^\d+ (\d+) [0-9a-f]{64}$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      } catch {
        return 0;
      }
    };
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return -1;
      }
    };
    const acked = () => acks.some((a) => a.commandId === spawn.commandId);
    // While the swap runs the seed agent gets a task too (it may be cut by the kill: then a clean market error).
    const during = `sum-during-${point}`;
    await sub.submit(during, { prompt: "add 4 5 =", skill: "sum", maxTokens: 4, deadlineMs: 20_000 });

    let seen = "";
    if (point === "load") {
      const ack = await command(spawn);
      assert.equal(ack.status, "created", JSON.stringify(ack));
      const first = `${skill}-first`;
      const awarded = new Promise<void>((r) => onAward.add((id) => id === first && r()));
      await sub.submit(first, { prompt: "abc", skill, maxTokens: 8, deadlineMs: 20_000 });
      await awarded;
      swapTasks.push(first);
      seen = "the child's first award";
    } else {
      const frac = 0.2 + 0.6 * rng.next();
      const trigger = {
        fetch: () => held() >= frac * bytes,
        commit: () => existsSync(path.join(store, `${h}.gguf`)),
        persist: () => existsSync(path.join(copies, `${h}.gguf`)),
      }[point];
      void ctl.publishAsync(topics.nodeCommand(NODE), encode({ ...spawn, sentAt: Date.now() }), { qos: 1 });
      const end = Date.now() + 60_000;
      while (!trigger() && !acked()) {
        if (Date.now() > end) throw new Error(`${point}: the swap did not reach its kill point`);
        await sleep(1);
      }
      seen = point === "fetch" ? `${((held() / bytes) * 100).toFixed(0)}% held (aimed ${(frac * 100).toFixed(0)}%)` : point;
    }
    await killNode();
    const partAtKill = Math.max(0, size(part));
    // What a resume may keep: the chunks listed in `.chunks`, each matching the .part's bytes, contiguous from 0
    // (chunks arrive out of order, 8 in flight: the .part may run ahead of that prefix).
    let prefix = 0;
    let listed = 0;
    if (existsSync(part) && existsSync(chunksFile)) {
      const body = readFileSync(part);
      const chunks = new Map<number, { length: number; sha: string }>();
      for (const l of readFileSync(chunksFile, "utf8").split("\n")) {
        const m = /^(\d+) (\d+) ([0-9a-f]{64})$/.exec(l);
        if (m) (chunks.set(Number(m[1]), { length: Number(m[2]), sha: m[3]! }), listed++);
      }
      for (let c = chunks.get(prefix); c && prefix + c.length <= body.length; c = chunks.get(prefix)) {
        assert.equal(createHash("sha256").update(body.subarray(prefix, prefix + c.length)).digest("hex"), c.sha, `the .part's chunk at ${prefix} is what .chunks says`);
        prefix += c.length;
      }
    }
    const copying = existsSync(copies) && readdirSync(copies).some((n) => n.endsWith(".tmp"));
    const state = [
      existsSync(part) ? `.part ${(partAtKill / 2 ** 20).toFixed(1)} of ${(bytes / 2 ** 20).toFixed(1)} MiB long, ${listed} chunks listed, ${(prefix / 2 ** 20).toFixed(1)} MiB of them from 0` : "no .part", existsSync(chunksFile) ? ".chunks" : "no .chunks",
      existsSync(path.join(store, `${h}.gguf`)) ? "model stored" : "model not stored", copying ? "verified copy in progress" : existsSync(path.join(copies, `${h}.gguf`)) ? "verified copy" : "no verified copy", acked() ? "acked" : "not acked",
    ].join(", ");

    // Power is off: what the disk holds.
    const down = `${point} (node down)`;
    checkStore(false, down);
    const stored = await storedAgents(down);
    const persisted = stored.has(child);
    if (point === "load") assert.ok(persisted, "an acked spawn is stored");
    if (acked()) assert.ok(persisted, `${down}: the node acked the spawn only once it was stored`);
    report.push(`${point}: killed at ${seen} [${state}]; child ${persisted ? "stored" : "not stored"}`);

    // Power back: the same spawn again, as the coordinator re-sends it.
    const back = Date.now();
    await startNode();
    await fleet.waitOnline([NODE], 60_000, back);
    // Progress the killed node had sent may reach us after its exit: the restarted node's transfers are new ids from here on.
    const transfersBefore = new Set(progress.filter((p) => p.sha256 === h).map((p) => p.transferId));
    const again = await command(spawn);
    assert.equal(again.status, persisted ? "exists" : "created", `${point}: re-sent spawn after the restart: ${JSON.stringify(again)}`);
    assert.ok(checkStore(true, `${point} (after the restart)`).includes(h), `${point}: the node holds the model`);
    if (point === "fetch") {
      // The transfer after the restart resumed from the part file's verified prefix: its first progress says so.
      const resumed = progress.find((p) => p.sha256 === h && !transfersBefore.has(p.transferId) && p.state === "fetching" && p.seq === 0);
      assert.equal(resumed?.bytes, prefix, `the fetch resumed from the .part's listed prefix (${prefix} B): ${JSON.stringify(resumed)}`);
      report.push(`fetch: resumed at ${(resumed.bytes / 2 ** 20).toFixed(1)} MiB`);
    }
    const task = `${skill}-after`;
    swapTasks.push(task);
    await sub.submit(task, { prompt: "abc", skill, maxTokens: 8, deadlineMs: 30_000 });
    await sub.waitResults([task], 45_000);
    const r = sub.result(task)!;
    assert.deepEqual([r.status, r.nodeId, r.agentId], ["ok", NODE, child], `${task}: the child serves: ${JSON.stringify(r)}`);
    await seedServes(`sum-after-${point}`);
    await sub.waitResults([during], 30_000);
    const d = sub.result(during)!;
    assert.ok(d.status === "ok" ? d.agentId === "seed" : CLEAN_CODES.test(d.error?.code ?? ""), `${during}: ${JSON.stringify(d)}`);
    report.push(`${during}: ${d.status === "ok" ? "ok (seed)" : d.error?.code}`);
  }

  stopAdds = true;
  await addLoop;
  const last = [...sub.submitted];
  await sub.waitResults(last, 60_000);
  for (const id of adds) assert.equal(sub.result(id)?.status, "ok", `${id}: ${JSON.stringify(sub.result(id))}`);
  // The first award the kill cut (load round) ends in one result: ok from the child if a later attempt
  // reached the restarted node within its deadline, else a clean market error (no other node hosts its skill).
  for (const id of swapTasks) {
    const r = sub.result(id)!;
    assert.ok(r.status === "ok" ? r.agentId?.startsWith("child-") : CLEAN_CODES.test(r.error?.code ?? ""), `${id}: ${JSON.stringify(r)}`);
    if (id.endsWith("-first")) report.push(`${id} (its award cut by the kill): ${r.status === "ok" ? `ok (${r.agentId})` : r.error?.code}`);
  }
  // Every child is stored with its verified model, and only they are.
  await killNode();
  checkStore(true, "the end");
  assert.deepEqual([...(await storedAgents("the end")).keys()].sort(), POINTS.map((p) => `child-${p}`).sort());
  const storedTasks = await fleet.storedTasks();
  assertExactlyOneResult(storedTasks, sub);
  for (const line of report) t.diagnostic(line);
  t.diagnostic(`${adds.length} add tasks (${adds.filter((id) => sub.result(id)?.nodeId === NODE).length} on the node, the rest on the helper), ${sub.submitted.length} tasks in all, ${awards.length} awards to the node; ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
