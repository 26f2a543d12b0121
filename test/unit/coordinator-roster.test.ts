// The roster on a fake clock and a real LevelDB: after a restart, auctions wait for the nodes that
// were online before (or a grace period), never less than the settle time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { silentLogger } from "../../common/logger.ts";
import { TaskStore } from "../../coordinator/market/task-store.ts";
import { Registry } from "../../coordinator/registry.ts";
import { Roster } from "../../coordinator/roster.ts";

const online = (r: Registry, nodeId: string) => r.onStatus({ state: "online", nodeId, protocol: 1, deviceClass: "sim", slots: 1, agents: [], models: [], at: 0 });
const flush = () => new Promise((r) => setTimeout(r, 20));

test("roster: opens after the settle time with no known node; waits for known nodes, or the grace period", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-roster-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new TaskStore(dir);
  await store.start();
  t.after(() => store.close());
  const clock = new FakeClock();
  let opened = false;

  // First start: nobody known. Two nodes come online (and are remembered); one leaves cleanly.
  let registry = new Registry(clock, 30_000);
  let roster = new Roster({ store, registry, clock, logger: silentLogger, graceMs: 8000 });
  await roster.start();
  void roster.ready.then(() => (opened = true));
  clock.advance(299);
  await flush();
  assert.equal(opened, false, "not before the settle time");
  clock.advance(1);
  await flush();
  assert.equal(opened, true);
  online(registry, "a");
  online(registry, "b");
  online(registry, "c");
  registry.onStatus({ state: "offline", nodeId: "c" });
  await flush();
  await roster.close();

  // Restart: a and b were online; b comes back, a does not: open at the grace period.
  registry = new Registry(clock, 30_000);
  roster = new Roster({ store, registry, clock, logger: silentLogger, graceMs: 8000 });
  opened = false;
  await roster.start();
  void roster.ready.then(() => (opened = true));
  clock.advance(1000);
  online(registry, "b");
  await flush();
  assert.equal(opened, false, "still waiting for a");
  clock.advance(6999);
  await flush();
  assert.equal(opened, false, "not before the grace period");
  clock.advance(1);
  await flush();
  assert.equal(opened, true, "the grace period ran out");
  await roster.close();

  // Restart again: a, b known; both come back quickly: open as soon as they did (after settling).
  registry = new Registry(clock, 30_000);
  roster = new Roster({ store, registry, clock, logger: silentLogger, graceMs: 8000 });
  opened = false;
  await roster.start();
  void roster.ready.then(() => (opened = true));
  online(registry, "a");
  online(registry, "b");
  clock.advance(300);
  await flush();
  assert.equal(opened, true);
  await roster.close();
});

test("roster after a link reconnect: opens when every node online before was heard from since (or went offline), else at the grace period; never before the settle time", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-roster-rc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new TaskStore(dir);
  await store.start();
  t.after(() => store.close());
  const clock = new FakeClock();
  const registry = new Registry(clock, 30_000);
  const roster = new Roster({ store, registry, clock, logger: silentLogger, graceMs: 8000 });
  await roster.start();
  online(registry, "a");
  online(registry, "b");
  online(registry, "c");
  clock.advance(1000);

  // a speaks again at once, b later, c goes offline: open once b is heard, after the settle time.
  let opened = false;
  void roster.afterReconnect().then(() => (opened = true));
  online(registry, "a");
  registry.onStatus({ state: "offline", nodeId: "c" });
  clock.advance(400);
  await flush();
  assert.equal(opened, false, "b has not been heard from since the reconnect");
  registry.onHeartbeat({ nodeId: "b", at: clock.now(), busy: 0, queued: 0, agents: [] });
  clock.advance(50);
  await flush();
  assert.equal(opened, true);

  // Nobody speaks: the grace period opens it; close() resolves a pending one at once.
  opened = false;
  void roster.afterReconnect().then(() => (opened = true));
  clock.advance(7950);
  await flush();
  assert.equal(opened, false, "not before the grace period");
  clock.advance(100);
  await flush();
  assert.equal(opened, true, "the grace period ran out");
  let closedOpen = false;
  void roster.afterReconnect().then(() => (closedOpen = true));
  await roster.close();
  await flush();
  assert.equal(closedOpen, true, "close() lets a pending wait go");
});
