// The dashboard feed (coordinator/dashboard/feed.ts) with fakes: market events become sanitized
// dashboard events (no prompt or output unless showPrompts), every one valid against the wire schema;
// retries carry why; the retained recent list and the fleet snapshot with per-agent tallies; the
// dashboard settings in the coordinator config.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { Coordinator } from "../../coordinator/coordinator.ts";
import { Outbox, topics } from "../../common/protocol.ts";
import { DashboardEventSchema, DashboardFleetSchema, DashboardRecentSchema } from "../../common/protocol/dashboard.ts";
import { loadCoordinatorConfig } from "../../coordinator/config.ts";
import { DashboardFeed } from "../../coordinator/dashboard/feed.ts";
import { MarketEventBus } from "../../coordinator/market/events.ts";
import { Registry } from "../../coordinator/registry.ts";

const PROMPT = "secret prompt 12+30=";
const OUTPUT = "secret output 42";

async function run(showPrompts: boolean) {
  const clock = new FakeClock();
  const sent: { topic: string; payload: string; retain: boolean | undefined }[] = [];
  const out = new Outbox({ publish: (topic, payload, o) => void sent.push({ topic, payload, retain: o.retain }) });
  const events = new MarketEventBus();
  const registry = new Registry(clock, 10_000);
  registry.onStatus({ state: "online", nodeId: "n1", protocol: 1, deviceClass: "pi5", slots: 2, agents: [{ agentId: "a1", skills: ["add"], model: "m", state: "awake" }], models: ["m"], at: clock.now() });
  registry.onHeartbeat({ nodeId: "n1", at: clock.now(), busy: 0, queued: 0, agents: [{ agentId: "a1", state: "asleep" }], device: { batteryPercent: 80, charging: true, temperatureC: 51 } });
  const feed = new DashboardFeed({ events, registry, out, clock, intervalMs: 1000, showPrompts });
  await feed.start();
  const at = clock.now();
  const bid = { latencyMs: 100, energyJ: 2, accuracy: 0.8 };
  events.emit("taskAccepted", { taskId: "t1", skill: "add", submit: { id: "t1", prompt: PROMPT, skill: "add" }, maxTokens: 16, deadlineAt: at + 1000, at });
  const ranked = [
    { nodeId: "n1", agentId: "a1", estimate: bid, score: 0.5, eligible: true, accuracyMean: 0.5 },
    { nodeId: "n2", agentId: "a2", estimate: { ...bid, latencyMs: 9e5 }, score: 0, eligible: false, reason: "deadline" as const, accuracyMean: 0.5 },
  ];
  events.emit("attemptAwarded", { taskId: "t1", skill: "add", attempt: 1, auctionId: "x1", nodeId: "n1", agentId: "a1", bid, score: 0.5, bids: 2, ranked: () => ranked, at });
  events.emit("attemptFailed", { taskId: "t1", skill: "add", attempt: 1, nodeId: "n1", agentId: "a1", outcome: "ack-timeout", error: { code: "ACK_TIMEOUT", message: "no ack" }, at });
  events.emit("attemptAwarded", { taskId: "t1", skill: "add", attempt: 2, auctionId: "x2", nodeId: "n1", agentId: "a1", bid, score: 0.4, bids: 1, at });
  events.emit("taskFinished", {
    taskId: "t1", submitter: "submitter.alice", skill: "add", prompt: PROMPT, status: "ok", attempts: 2, totalMs: 250, at,
    delivered: { attempt: 2, nodeId: "n1", agentId: "a1", output: OUTPUT, verdict: { success: true, source: "check" }, cost: { energyJ: 3, tokens: 4 } },
  });
  clock.advance(1000);
  await feed.close();
  await feed.close(); // idempotent
  events.emit("taskAccepted", { taskId: "t2", skill: "add", submit: { id: "t2", prompt: "late" }, maxTokens: 16, deadlineAt: at, at });
  return { sent, clock };
}

test("dashboard events: sanitized by default, valid, with retries and why; the fleet with tallies and device readings", async () => {
  const { sent } = await run(false);
  const live = sent.filter((s) => s.topic === topics.dashboardEvents).map((s) => DashboardEventSchema.parse(JSON.parse(s.payload)));
  assert.deepEqual(live.map((e) => e.kind), ["opened", "awarded", "failed", "awarded", "finished"], "nothing after close");
  assert.ok(sent.every((s) => !s.payload.includes("secret")), "no prompt, no output");
  assert.ok(sent.every((s) => !s.payload.includes("submitter.alice")), "no submitter");
  const awarded = live.find((e) => e.kind === "awarded");
  assert.deepEqual(awarded?.kind === "awarded" && awarded.ranked?.map((r) => `${r.agentId} ${r.eligible ? r.score : r.reason}`), ["a1 0.5", "a2 deadline"], "every bid, best first, with why");
  const failed = live.find((e) => e.kind === "failed");
  assert.equal(failed?.kind === "failed" && `${failed.outcome}/${failed.code}`, "ack-timeout/ACK_TIMEOUT");
  const fin = live.at(-1)!;
  assert.equal(fin.kind === "finished" && `${fin.agentId}@${fin.nodeId} ${fin.energyJ} J ${fin.attempts}`, "a1@n1 3 J 2");

  const recent = sent.filter((s) => s.topic === topics.dashboardRecent);
  assert.ok(recent.every((s) => s.retain === true));
  assert.equal(DashboardRecentSchema.parse(JSON.parse(recent.at(-1)!.payload)).events.length, 5, "one debounced retained list");
  assert.ok(recent.length <= 3, `debounced: ${recent.length}`);

  const fleets = sent.filter((s) => s.topic === topics.dashboardFleet).map((s) => DashboardFleetSchema.parse(JSON.parse(s.payload)));
  const n1 = fleets.at(-1)!.nodes[0]!;
  assert.equal(n1.device?.batteryPercent, 80);
  assert.equal(n1.device?.charging, true);
  assert.equal(n1.energyJ, 3);
  assert.equal(n1.tasksDone, 1);
  assert.deepEqual(n1.agents[0], { agentId: "a1", state: "asleep", skills: ["add"], model: "m", wins: 2, successes: 1, energyJ: 3, claimed: { add: 0.8 } });
});

test("with dashboardShowPrompts the events carry the prompt and the output", async () => {
  const { sent } = await run(true);
  const live = sent.filter((s) => s.topic === topics.dashboardEvents).map((s) => DashboardEventSchema.parse(JSON.parse(s.payload)));
  assert.equal(live[0]?.kind === "opened" && live[0].prompt, PROMPT);
  const fin = live.at(-1);
  assert.equal(fin?.kind === "finished" && fin.output, OUTPUT);
});

test("dashboard settings: off by default, from env and flags", () => {
  const d = loadCoordinatorConfig({ env: {} });
  assert.equal(d.dashboardPort, undefined);
  assert.equal(d.dashboardShowPrompts, false);
  const e = loadCoordinatorConfig({ env: { COLONY_DASHBOARD_PORT: "8080", COLONY_DASHBOARD_SHOW_PROMPTS: "1" } });
  assert.equal(e.dashboardPort, 8080);
  assert.equal(e.dashboardShowPrompts, true);
  assert.equal(loadCoordinatorConfig({ env: { COLONY_DASHBOARD_PORT: "8080" }, flags: { dashboardPort: 0 } }).dashboardPort, 0);
  assert.throws(() => loadCoordinatorConfig({ env: { COLONY_DASHBOARD_PORT: "70000" } }), /dashboardPort/);
});

test("a dashboard with an external broker is refused at start with CONFIG_INVALID (the page needs the embedded broker's WebSocket)", async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-dash-cfg-"));
  try {
    const config = loadCoordinatorConfig({ env: {}, flags: { dataDir, broker: "mqtt://127.0.0.1:1", dashboardPort: 0, mdns: false } });
    const c = new Coordinator(config, { logger: silentLogger });
    await assert.rejects(c.start(), (err: unknown) => err instanceof ColonyError && err.code === "CONFIG_INVALID" && /dashboardPort needs the embedded broker/.test(err.message));
    await c.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
