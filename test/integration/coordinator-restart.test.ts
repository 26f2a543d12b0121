import { test } from "node:test";
import { ColonyProcesses, freePort, runColony } from "../fixtures/colony-process.ts";
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { BidderProcess } from "../fixtures/bidder-process.ts";

// The real `colony coordinator` process, killed with SIGKILL in the middle of an auction and
// restarted on the same port and data folder: the accepted task is resumed and finished, and
// the CLI (`colony task`, `colony submit`, SIGTERM shutdown) works against it.

const procs = new ColonyProcesses();
const startCoordinator = (port: number, dataDir: string) =>
  procs.start(["coordinator", "--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, "--insecure", "--no-mdns", "--bid-window-ms", "3000"], 20_000);

test("coordinator SIGKILLed mid-auction and restarted: nothing lost, one result; CLI submit/task/SIGTERM", async () => {
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-restart-"));
  let coord = await startCoordinator(port, dataDir);
  const bidders = await BidderProcess.start(url, [{ nodeId: "r1", agentId: "r1.a", skills: ["restart"], bidDelayMs: 700, latencyMs: 50 }]);
  const sub = await connectMqtt({ url, logger: silentLogger, reconnectMinMs: 100, reconnectMaxMs: 200 });
  try {
    const id = newTaskId();
    let accepted!: () => void;
    const acceptedSeen = new Promise<void>((r) => (accepted = r));
    const pending = submitAndWait(sub, { id, prompt: "persist me", skill: "restart", check: { type: "exact", value: "PERSIST ME" } }, { timeoutMs: 30_000, onEvent: (e) => e.type === "accepted" && accepted() });
    await acceptedSeen;
    // The auction is open (the bid comes 700 ms after the announce): kill it now.
    coord.kill("SIGKILL");
    await once(coord, "exit");
    coord = await startCoordinator(port, dataDir);
    const r = await pending;
    assert.equal(r.status, "ok", JSON.stringify(r));
    assert.equal(r.output, "PERSIST ME");
    assert.deepEqual(r.attempts.map((a) => a.outcome), ["restarted", "ok"]);
    assert.equal(bidders.events.filter((e) => e.ev === "award" && e.taskId === id).length, 1);

    const viaBroker = await runColony(["task", id, "--url", url, "--json"]);
    assert.equal(viaBroker.code, 0, viaBroker.stderr);
    assert.equal(JSON.parse(viaBroker.stdout).output, "PERSIST ME");

    const ok = await runColony(["submit", "shout", "--skill", "restart", "--check-exact", "SHOUT", "--url", url]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), "SHOUT");
    const bad = await runColony(["submit", "shout", "--skill", "restart", "--check-exact", "whisper", "--url", url, "--json"]);
    assert.equal(bad.code, 1);
    assert.equal(JSON.parse(bad.stdout).error.code, "CHECK_FAILED");

    // Clean shutdown on SIGTERM, then the store is readable offline.
    coord.kill("SIGTERM");
    const [code] = await once(coord, "exit");
    assert.equal(code, 0);
    const offline = await runColony(["task", id, "--data-dir", dataDir, "--json"]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(JSON.parse(offline.stdout), r);
  } finally {
    await sub.endAsync(true).catch(() => {});
    await bidders.kill("SIGKILL");
    if (coord.exitCode === null && coord.signalCode === null) {
      coord.kill("SIGKILL");
      await once(coord, "exit");
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
});
