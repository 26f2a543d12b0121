// Coordinator (with its embedded broker) stopped and restarted on the same port and data folder
// while the node generates: the node reconnects with backoff, registers again, the task in flight
// ends with exactly one result, and new tasks are answered.
import { test } from "node:test";
import { freePort } from "../fixtures/colony-process.ts";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { decode, encode, topics, NodeStatusSchema, ResultSchema, type Result } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { genome, SMALL, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";
import { submitterOf } from "../../coordinator/submitter.ts";


test("coordinator restart mid-task: node re-registers, one result, new tasks answered", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-node-reconnect-"));
  const dataDir = path.join(dir, "coord");
  const port = await freePort();
  const model = await writeRandomModel(dir, "small", SMALL, 4);
  let h = await startHarness({ dataDir, config: { port } });
  const node = await startNode({ nodeId: "n-rc", url: h.url, cred: await h.nodeCred("n-rc"), dataDir: path.join(dir, "node"), genomes: [genome("rc-agent", model, ["rc"])] });
  const secret = await loadOrCreateFleetSecret(dataDir);
  const cred = issueCredential(secret, "submitter", "rc");
  // A submitter that survives the restart (reconnects on its own).
  const s = await connectMqtt({ url: h.url, ...cred, logger: silentLogger, reconnectMinMs: 100, reconnectMaxMs: 300 });
  const results: Result[] = [];
  s.on("message", (_t, p) => {
    const m = decode(ResultSchema, p);
    if (m.ok) results.push(m.value);
  });
  try {
    await s.subscribeAsync([topics.taskResult(submitterOf(s), "rc-1"), topics.taskResult(submitterOf(s), "rc-2")], { qos: 1 });
    await s.publishAsync(topics.submit(submitterOf(s)), encode({ id: "rc-1", prompt: "hello", skill: "rc", maxTokens: 300, deadlineMs: 120_000 }), { qos: 1 });
    while (node.daemon.activeJobs === 0) await new Promise((r) => setTimeout(r, 5));
    await h.coordinator.close();
    h = await startHarness({ dataDir, config: { port } });
    // The node registers again with the new coordinator (retained status, online).
    const watcher = await h.superClient();
    let online = false;
    watcher.on("message", (_t, p) => {
      const m = decode(NodeStatusSchema, p);
      if (m.ok && m.value.state === "online") online = true;
    });
    await watcher.subscribeAsync(topics.nodeStatus("n-rc"), { qos: 1 });
    for (let i = 0; i < 400 && !online; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(online, "node re-registered");
    for (let i = 0; i < 1200 && !results.some((r) => r.id === "rc-1"); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1000));
    const r1 = results.filter((r) => r.id === "rc-1");
    assert.equal(r1.length, 1, JSON.stringify(r1));
    assert.equal(r1[0]!.status, "ok", JSON.stringify(r1[0]));
    await s.publishAsync(topics.submit(submitterOf(s)), encode({ id: "rc-2", prompt: "hello", skill: "rc", maxTokens: 8 }), { qos: 1 });
    for (let i = 0; i < 400 && !results.some((r) => r.id === "rc-2"); i++) await new Promise((r) => setTimeout(r, 25));
    const r2 = results.find((r) => r.id === "rc-2");
    assert.equal(r2?.status, "ok", JSON.stringify(r2));
    assert.equal(r2?.nodeId, "n-rc");
  } finally {
    await s.endAsync(true);
    await node.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
