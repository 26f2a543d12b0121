// The README's "A fleet on a LAN", run as written (one host, so each node gets its own --data-dir
// and the coordinator a free port): a coordinator, credentials for two nodes and a submitter, two
// `colony node` processes that both host the seed agents under the same ids, and `colony submit`.
// The node that wins the task is SIGKILLed the moment its award is published; the task must be
// re-auctioned and finish on the other node. (It used to end NO_BIDDERS: the identical agent id on
// the healthy node was excluded with the dead one's.)
import { test } from "node:test";
import type { ChildProcess } from "node:child_process";
import { ColonyProcesses, freePort, runColony } from "../fixtures/colony-process.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { topics } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";




const procs = new ColonyProcesses();

test("README LAN setup: two nodes with the same seed agents; the winner dies mid-task and the other finishes it", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-lan-"));
  const data = path.join(dir, "coordinator");
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  t.after(async () => {
    procs.killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  // On the LAN host.
  await procs.start(["coordinator", "--data-dir", data, "--port", String(port), "--host", "127.0.0.1", "--no-mdns"]);
  for (const n of ["pi-kitchen", "pi-attic"]) {
    const r = await runColony(["credentials", "issue", "--data-dir", data, "--node", n, "--url", url, "--out", path.join(dir, `${n}.json`)]);
    assert.equal(r.code, 0, r.stderr);
  }
  const alice = await runColony(["credentials", "issue", "--data-dir", data, "--submitter", "alice", "--url", url, "--out", path.join(dir, "alice.json")]);
  assert.equal(alice.code, 0, alice.stderr);

  // On each device (both host the seed agents with their default ids).
  const nodes: Record<string, ChildProcess> = {};
  for (const n of ["pi-kitchen", "pi-attic"]) {
    nodes[n] = await procs.start(["node", "--credentials", path.join(dir, `${n}.json`), "--node-id", n, "--data-dir", path.join(dir, n)]);
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
  const r = await runColony(["submit", "add 12 34 =", "--skill", "add", "--credentials", path.join(dir, "alice.json"), "--json"]);
  assert.ok(killed, "a node won the task and was killed");
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(result.status, "ok", JSON.stringify(result));
  const other = killed === "pi-kitchen" ? "pi-attic" : "pi-kitchen";
  assert.equal(result.nodeId, other, "finished on the node that stayed up");
  assert.deepEqual(result.attempts.map((a: { nodeId: string; outcome: string }) => [a.nodeId, a.outcome]), [[killed, "offline"], [other, "ok"]]);
  assert.equal(result.output.trim(), "46");
});
