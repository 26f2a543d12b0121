// Chaos: faults on a real `colony node` while `colony models push` rolls a model out to it, on the
// embedded broker and on mosquitto (docs/chaos.md, "Model push"). The node's data folder is a small tmpfs (root).
// - frozen (SIGSTOP) in the middle of the transfer, then SIGCONT: a scripted node keeps serving
//   tasks meanwhile, and the push completes;
// - power loss (SIGKILL) in the middle of the transfer, then restarted: the push again completes;
// - its disk full while receiving: refused with a code, nothing half-written under the model's
//   name, the node keeps serving; once space returns the push completes.
// Every time the node holds one valid model: the file named by its sha256 has that sha256 and no
// transfer file is left behind; a model is never there unverified.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { nodeCredentialFile } from "../../coordinator/auth.ts";
import { fill } from "../fixtures/chaos-disk.ts";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, sleep, startBidders, until } from "../fixtures/chaos-fleet.ts";
import { SMALL, TINY, writeRandomModel } from "../fixtures/node-helpers.ts";
import { needsRoot } from "../fixtures/system-tools.ts";

const NODE = "push-node";
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

interface PushAnswer {
  sha256: string;
  results: { nodeId: string; status: string; code?: string; error?: { code: string } }[];
}

for (const broker of BROKERS) test(`model push to a real node on ${broker}: frozen, killed and out of disk mid-transfer; one valid model each time, others keep serving`, { skip: needsRoot("mount a tmpfs") || brokerSkip(broker), timeout: 300_000 }, async (t) => {
  const fleet = await ChaosFleet.start({ broker, host: "127.0.0.1", nodes: [NODE, "helper"] });
  const mnt = path.join(fleet.dir, "node-disk");
  mkdirSync(mnt);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt], { encoding: "utf8" });
  let node: ChildProcess | undefined;
  let bidders: Awaited<ReturnType<typeof startBidders>> = [];
  t.after(async () => {
    node?.kill("SIGCONT");
    node?.kill("SIGKILL");
    await Promise.all(bidders.map((b) => b.kill("SIGKILL")));
    await fleet.close().catch(() => {});
    spawnSync("umount", ["-l", mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  assert.equal(mounted.status, 0, `mount -t tmpfs: ${mounted.stderr}`);
  const credFile = path.join(fleet.dir, "node.json");
  writeFileSync(credFile, JSON.stringify(nodeCredentialFile(fleet.secret, NODE, fleet.url)));
  chmodSync(credFile, 0o600);
  const agentsFile = path.join(fleet.dir, "agents.json");
  writeFileSync(agentsFile, JSON.stringify({ agents: [{ id: "push-agent", model: await writeRandomModel(fleet.dir, "base", TINY, 1), skills: ["add"] }] }));
  const data = path.join(mnt, "node");
  const startNode = async () => (node = await fleet.procs.start(["node", "--credentials", credFile, "--node-id", NODE, "--agents", agentsFile, "--data-dir", data, "--threads", "1", "--profile", "generic", "--no-calibrate"], 120_000));
  await startNode();
  bidders = await startBidders(fleet, [{ nodeId: "helper", spec: { skills: ["add"], workMs: 50 } }]);
  await fleet.waitOnline([NODE, "helper"]);
  const sub = await fleet.submitter();
  const models = path.join(data, "colony-models");
  // A transfer in progress: `.<sha256>.part` and `.<sha256>.chunks` (node/models/model-store.ts).
  const parts = () => (existsSync(models) ? readdirSync(models).filter((f) => /^\.[0-9a-f]{64}\.(part|chunks)$/.test(f)) : []);

  const push = (file: string, name: string): { child: ChildProcess; answer: Promise<PushAnswer> } => {
    const child = spawn(process.execPath, ["bin/colony.mjs", "models", "push", file, "--name", name, "--skills", "add", "--node", NODE, "--url", fleet.url, "--data-dir", fleet.dataDir, "--json"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, COLONY_LOG_LEVEL: "silent" } });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const answer = once(child, "exit").then(() => JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as PushAnswer);
    return { child, answer };
  };
  /** The node holds exactly this model, verified: the file has its hash, no transfer file is left. */
  const holdsValid = (hash: string) => {
    const file = path.join(models, `${hash}.gguf`);
    assert.ok(existsSync(file), `the node holds ${hash.slice(0, 12)}`);
    assert.equal(sha(file), hash, "the file under the model's name is the model");
    assert.deepEqual(parts(), [], "no transfer file left behind");
  };
  /** Resolves when the node has started receiving (its transfer file exists). */
  const receiving = () => until(() => parts().length > 0, 60_000, "the transfer started");

  // 1. Frozen mid-transfer.
  const m1 = await writeRandomModel(fleet.dir, "frozen", SMALL, 11);
  const p1 = push(m1, "frozen");
  await receiving();
  node!.kill("SIGSTOP");
  const during = ["during-0", "during-1", "during-2"];
  for (const id of during) await sub.submit(id, { prompt: id, skill: "add", deadlineMs: 60_000 });
  await sub.waitResults(during, 60_000);
  for (const id of during) assert.equal(sub.result(id)?.status, "ok", `${id} served while the node is frozen: ${JSON.stringify(sub.result(id))}`);
  await sleep(3000);
  node!.kill("SIGCONT");
  const a1 = await p1.answer;
  assert.equal(a1.results[0]?.status, "fetched", JSON.stringify(a1));
  holdsValid(a1.sha256);

  // 2. Power loss mid-transfer; after the restart the same push completes.
  const m2 = await writeRandomModel(fleet.dir, "killed", SMALL, 12);
  const p2 = push(m2, "killed");
  await receiving();
  node!.kill("SIGKILL");
  await once(node!, "exit");
  await p2.answer; // whatever it said about a node that died
  await startNode();
  await fleet.waitOnline([NODE], 60_000, Date.now());
  const a2 = await push(m2, "killed").answer;
  assert.equal(a2.results[0]?.status, "fetched", JSON.stringify(a2));
  holdsValid(a2.sha256);

  // 3. The disk fills up while it receives (a filler takes the last byte mid-transfer).
  const m3 = await writeRandomModel(fleet.dir, "full", { dim: 384, layers: 4, ffn: 1152, ctx: 256 }, 13);
  const p3 = push(m3, "full");
  await receiving();
  const filler = path.join(mnt, "filler");
  fill(filler);
  const a3 = await p3.answer;
  const refused = a3.results[0]!;
  assert.notEqual(refused.status, "fetched", JSON.stringify(a3));
  const code = refused.code ?? refused.error?.code;
  assert.match(String(code), /^[A-Z][A-Z0-9_]+$/, `refused with a code: ${JSON.stringify(refused)}`);
  assert.equal(existsSync(path.join(models, `${a3.sha256}.gguf`)), false, "nothing under the model's name");
  await sub.submit("while-full", { prompt: "while-full", skill: "add" });
  await sub.waitResults(["while-full"], 60_000);
  assert.equal(sub.result("while-full")?.status, "ok");
  rmSync(filler);
  const a4 = await push(m3, "full").answer;
  assert.equal(a4.results[0]?.status, "fetched", JSON.stringify(a4));
  holdsValid(a4.sha256);
  t.diagnostic(`disk full: refused with ${code}`);

  const stored = await fleet.storedTasks();
  assertExactlyOneResult(stored, sub);
});
