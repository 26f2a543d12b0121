import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { BidderProcess } from "../fixtures/bidder-process.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";

// A submitter over MQTT-over-WebSocket (browsers, Node-RED) against nodes over TCP, on the
// embedded broker with auth; then `colony status` reads the fleet snapshot with a coordinator
// credential issued from the data folder.
test("WebSocket submitter, TCP nodes, auth on; colony status shows nodes, agents, counters", async () => {
  const h = await startHarness({ config: { wsPort: 0, statsIntervalMs: 100 } });
  const bp = await BidderProcess.start(h.url, [{ nodeId: "ws-n1", agentId: "ws-n1.a", skills: ["echo"], ...(await h.nodeCred("ws-n1")) }]);
  const secret = await loadOrCreateFleetSecret(h.dataDir);
  const cred = issueCredential(secret, "submitter", "browser");
  const ws = await connectMqtt({ url: `ws://127.0.0.1:${h.coordinator.wsPort}`, username: cred.username, password: cred.password, logger: silentLogger });
  try {
    for (let i = 0; i < 200 && !h.coordinator.registry.isOnline("ws-n1"); i++) await new Promise((r) => setTimeout(r, 10));
    const r = await submitAndWait(ws, { id: newTaskId(), prompt: "over websocket", skill: "echo", check: { type: "exact", value: "OVER WEBSOCKET" } }, { timeoutMs: 10_000 });
    assert.equal(r.status, "ok", JSON.stringify(r));

    // A wrong password over WebSocket is refused like over TCP.
    await assert.rejects(connectMqtt({ url: `ws://127.0.0.1:${h.coordinator.wsPort}`, username: cred.username, password: "wrong", logger: silentLogger, connectTimeoutMs: 2000 }), /MQTT_AUTH_REFUSED|refused|not authorized|Bad/i);

    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, ["bin/colony.mjs", "status", "--url", h.url, "--data-dir", h.dataDir, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      c.stdout.on("data", (d) => (stdout += d));
      c.stderr.on("data", (d) => (stderr += d));
      c.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(out.code, 0, out.stderr);
    const snap = JSON.parse(out.stdout);
    assert.equal(snap.coordinator.state, "online");
    const node = snap.stats.nodes.find((n: { nodeId: string }) => n.nodeId === "ws-n1");
    assert.equal(node.online, true);
    assert.deepEqual(node.agents[0].skills, ["echo"]);
    const agent = snap.stats.agents.find((a: { agentId: string }) => a.agentId === "ws-n1.a");
    // "browser" is not among the harness's trusted submitters: its verdict counts a quarter (docs/scoring.md).
    assert.deepEqual([agent.skill, agent.successes, agent.failures], ["echo", 0.25, 0]);
    assert.equal(snap.stats.counters["tasks.ok"], 1);
  } finally {
    await ws.endAsync(true).catch(() => {});
    await bp.kill();
    await h.close();
  }
});
