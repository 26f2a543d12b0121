import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { loadCoordinatorConfig } from "../../coordinator/config.ts";
import { FakeClock } from "../../common/clock.ts";
import { Registry } from "../../coordinator/registry.ts";
import { recordKey } from "../../coordinator/market/agent-ref.ts";

test("config precedence: defaults < file < COLONY_* env < flags, then frozen", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-cfg-"));
  const file = path.join(dir, "c.json");
  writeFileSync(file, JSON.stringify({ port: 1000, bidWindowMs: 50, maxAttempts: 5, fleetId: "from-file" }));
  const c = loadCoordinatorConfig({ file, env: { COLONY_PORT: "2000", COLONY_BID_WINDOW_MS: "60", COLONY_INSECURE: "true" }, flags: { port: 3000, mdns: undefined } });
  assert.equal(c.port, 3000);
  assert.equal(c.bidWindowMs, 60);
  assert.equal(c.maxAttempts, 5);
  assert.equal(c.fleetId, "from-file");
  assert.equal(c.insecure, true);
  assert.equal(c.ackWithinMs, 2000);
  assert.ok(Object.isFrozen(c));
  rmSync(dir, { recursive: true, force: true });
});

test("invalid config reports every problem at once with CONFIG_INVALID", () => {
  try {
    loadCoordinatorConfig({ env: { COLONY_PORT: "70000", COLONY_MAX_ATTEMPTS: "zero" }, flags: { bidWindowMs: -1 } });
    assert.fail("should throw");
  } catch (err) {
    assert.ok(err instanceof ColonyError);
    assert.equal(err.code, "CONFIG_INVALID");
    const problems = err.details?.problems as string[];
    assert.equal(problems.length, 3, problems.join("\n"));
  }
  assert.throws(() => loadCoordinatorConfig({ flags: { nonsense: 1 } as never }), /CONFIG_INVALID|Unrecognized/);
});

test("architect dry run: flag or env sets evolution.dryRun and keeps the file's other evolution settings", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-cfg-"));
  const file = path.join(dir, "c.json");
  writeFileSync(file, JSON.stringify({ evolution: { spawnsPerHour: 1, kinds: ["retire"] } }));
  const base = loadCoordinatorConfig({ file });
  assert.equal(base.evolution.dryRun, false);
  const byFlag = loadCoordinatorConfig({ file, architectDryRun: true });
  assert.equal(byFlag.evolution.dryRun, true);
  assert.equal(byFlag.evolution.spawnsPerHour, 1);
  assert.deepEqual(byFlag.evolution.kinds, ["retire"]);
  assert.ok(Object.isFrozen(byFlag.evolution));
  assert.equal(loadCoordinatorConfig({ file, env: { COLONY_ARCHITECT_DRY_RUN: "1" } }).evolution.dryRun, true);
  assert.equal(loadCoordinatorConfig({ env: { COLONY_ARCHITECT: "0" } }).architect, false);
  assert.throws(() => loadCoordinatorConfig({ env: { COLONY_ARCHITECT_DRY_RUN: "yes" } }), (e: unknown) => e instanceof ColonyError && e.code === "CONFIG_INVALID");
  rmSync(dir, { recursive: true, force: true });
});

test("registry: a silent node goes offline after heartbeatTimeoutMs; a last will at once", async () => {
  const clock = new FakeClock(0);
  const offline: string[] = [];
  const r = new Registry(clock, 3000);
  r.events.on("nodeOffline", ({ nodeId, why }) => offline.push(`${nodeId}:${why}`));
  await r.start();
  const status = (nodeId: string) => ({ state: "online" as const, nodeId, protocol: 1 as const, deviceClass: "x", slots: 1, agents: [{ agentId: `${nodeId}.a`, skills: ["math"], model: "m", state: "awake" as const }], models: [], at: 0 });
  r.onStatus(status("a"));
  r.onStatus(status("b"));
  assert.deepEqual(r.eligibleNodes("math", new Set()), ["a", "b"]);
  assert.deepEqual(r.eligibleNodes("sort", new Set()), []);
  // Exclusions are record keys: node and agent (agent-ref.ts).
  assert.deepEqual(r.eligibleNodes("math", new Set([recordKey({ nodeId: "a", agentId: "a.a" })])), ["b"]);
  assert.deepEqual(r.eligibleNodes("math", new Set([recordKey({ nodeId: "b", agentId: "a.a" })])), ["a", "b"]);
  clock.advance(2000);
  r.onHeartbeat({ nodeId: "b", at: 2000, busy: 0, queued: 0, agents: [] });
  clock.advance(2000);
  // Any valid message (a bid, a done) also proves b alive.
  r.touch("b");
  clock.advance(2500);
  assert.deepEqual(offline, ["a:heartbeat-timeout"]);
  r.onStatus({ state: "offline", nodeId: "b" });
  assert.deepEqual(offline, ["a:heartbeat-timeout", "b:last-will"]);
  assert.deepEqual(r.eligibleNodes(undefined, new Set()), []);
  await r.close();
  assert.equal(clock.pending, 0);
});
