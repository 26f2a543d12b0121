// The README's "A fleet on a LAN", run as written (one host, so each node gets its own --data-dir
// and the coordinator a free port): a coordinator, credentials for two nodes and a submitter, two
// `colony node` processes that both host the seed agents under the same ids, and `colony submit`.
// The node that wins the task is SIGKILLed the moment its award is published; the task must be
// re-auctioned and finish on the other node. (It used to end NO_BIDDERS: the identical agent id on
// the healthy node was excluded with the dead one's.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { topics } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const children: ChildProcess[] = [];

/** `colony ARGS` until its stdout prints the ready JSON line (long-running commands). */
async function daemon(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["bin/colony.mjs", ...args], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, COLONY_LOG_LEVEL: "error" } });
  children.push(child);
  const rl = readline.createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`colony ${args[0]} did not start`)), 60_000);
    rl.on("line", (l) => l.includes('"ready":true') && (clearTimeout(t), resolve()));
    child.once("exit", (code) => reject(new Error(`colony ${args[0]} exited with ${code}`)));
  });
  return child;
}

/** `colony ARGS` to completion. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["bin/colony.mjs", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COLONY_LOG_LEVEL: "silent" } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

test("README LAN setup: two nodes with the same seed agents; the winner dies mid-task and the other finishes it", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-lan-"));
  const data = path.join(dir, "coordinator");
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  t.after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  // On the LAN host.
  await daemon(["coordinator", "--data-dir", data, "--port", String(port), "--host", "127.0.0.1", "--no-mdns"]);
  for (const n of ["pi-kitchen", "pi-attic"]) {
    const r = await cli(["credentials", "issue", "--data-dir", data, "--node", n, "--url", url, "--out", path.join(dir, `${n}.json`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const alice = await cli(["credentials", "issue", "--data-dir", data, "--submitter", "alice", "--url", url, "--out", path.join(dir, "alice.json")]);
  assert.equal(alice.code, 0, alice.stderr);

  // On each device (both host the seed agents with their default ids).
  const nodes: Record<string, ChildProcess> = {};
  for (const n of ["pi-kitchen", "pi-attic"]) {
    nodes[n] = await daemon(["node", "--credentials", path.join(dir, `${n}.json`), "--node-id", n, "--data-dir", path.join(dir, n)]);
  }

  // Watch the awards with the coordinator's rights and kill the winner as soon as it has one.
  const watcher = await connectMqtt({ url, ...issueCredential(await loadOrCreateFleetSecret(data), "coordinator"), logger: silentLogger });
  t.after(() => watcher.endAsync(true));
  let killed: string | undefined;
  watcher.on("message", (topic) => {
    const nodeId = topic.split("/")[3]!;
    if (!topic.endsWith("/award") || killed || !nodes[nodeId]) return;
    killed = nodeId;
    nodes[nodeId]!.kill("SIGKILL");
  });
  await watcher.subscribeAsync(topics.nodeAward("+"), { qos: 1 });
  // Both nodes registered: the retained statuses are online.
  const online = new Set<string>();
  const statusWatch = (topic: string, payload: Buffer) => {
    if (topic.endsWith("/status") && payload.toString().includes('"online"')) online.add(topic.split("/")[3]!);
  };
  watcher.on("message", statusWatch);
  await watcher.subscribeAsync(topics.allNodeStatus, { qos: 1 });
  for (let i = 0; i < 200 && online.size < 2; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(online.size, 2, "both nodes online");

  // Anywhere.
  const r = await cli(["submit", "add 12 34 =", "--skill", "add", "--credentials", path.join(dir, "alice.json"), "--json"]);
  assert.ok(killed, "a node won the task and was killed");
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(result.status, "ok", JSON.stringify(result));
  const other = killed === "pi-kitchen" ? "pi-attic" : "pi-kitchen";
  assert.equal(result.nodeId, other, "finished on the node that stayed up");
  assert.deepEqual(result.attempts.map((a: { nodeId: string; outcome: string }) => [a.nodeId, a.outcome]), [[killed, "offline"], [other, "ok"]]);
  assert.equal(result.output.trim(), "46");
});
