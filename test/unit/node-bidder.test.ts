// Pure-logic tests of device profiles, the cost model and the bidder (no llama.cpp, no broker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { decideBid, type BidderAgent, type BidderNode } from "../../node/bidder.ts";
import { estimateCost } from "../../node/cost-model.ts";
import { detectProfile, listProfiles, parseProfile, resolveProfile } from "../../node/profile.ts";
import type { ProbeSnapshot } from "../../node/probe.ts";
import type { Announce } from "../../common/protocol.ts";

const cal = { loadMs: 100, promptTokensPerS: 1000, genTokensPerS: 100, threads: 2, charsPerToken: 1, at: 1 };
const now = 1_000_000;
const announce: Announce = { auctionId: "a1", taskId: "t1", attempt: 1, prompt: "add 1 2 =", skill: "add", maxTokens: 10, deadlineAt: now + 60_000, closesAt: now + 100 };
const snap = (o: Partial<ProbeSnapshot> = {}): ProbeSnapshot => ({ cpuLoad: 0, freeMemMB: 8000, totalMemMB: 16000, at: now, ...o });
const agent = (o: Partial<BidderAgent> = {}): BidderAgent => ({ agentId: "ag1", skills: ["add"], state: "awake", calibration: cal, wakeNeedMB: 100, accuracy: () => 0.8, ...o });
function node(o: Partial<BidderNode> = {}, profileName = "x86-laptop"): BidderNode {
  return { nodeId: "n1", profile: resolveProfile(profileName), threads: 2, snapshot: snap(), running: 0, queued: 0, queueMs: 0, reclaimableMB: 0, agents: [agent()], ...o };
}

test("every shipped profile validates, and names are unique", () => {
  const all = listProfiles();
  assert.ok(all.length >= 6);
  assert.equal(new Set(all.map((p) => p.name)).size, all.length);
  for (const n of ["raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "x86-laptop", "x86-mini-pc", "generic"]) assert.ok(all.some((p) => p.name === n), n);
});

test("an invalid profile lists every problem with a code", () => {
  const bad = { ...resolveProfile("generic"), threads: 0, power: { idleW: 5, activeW: 1 }, thermal: { throttleC: 90, declineC: 80, throttleSlowdown: 1 }, extra: 1 };
  assert.throws(() => parseProfile(bad), (err: unknown) => {
    assert.ok(err instanceof ColonyError);
    assert.equal(err.code, "PROFILE_INVALID");
    const problems = err.details!.problems as string[];
    assert.ok(problems.length >= 4, problems.join("\n"));
    assert.ok(problems.some((p) => p.startsWith("threads")));
    assert.ok(problems.some((p) => p.includes("activeW")));
    assert.ok(problems.some((p) => p.includes("declineC")));
    return true;
  });
  assert.throws(() => resolveProfile("no-such-board"), { code: "PROFILE_NOT_FOUND" });
});

test("detection picks the device class from systeminformation identity", () => {
  const d = (hw: Partial<Parameters<typeof detectProfile>[0]>) => detectProfile({ arch: "arm64", hasBattery: false, ...hw }).name;
  assert.equal(d({ systemModel: "Raspberry Pi 4 Model B Rev 1.4", systemManufacturer: "Raspberry Pi Foundation" }), "raspberry-pi-4");
  assert.equal(d({ systemModel: "Raspberry Pi 5 Model B Rev 1.0" }), "raspberry-pi-5");
  assert.equal(d({ systemModel: "NVIDIA Jetson Orin Nano Developer Kit" }), "jetson-orin-nano");
  assert.equal(d({ arch: "x64", hasBattery: true, systemModel: "ThinkPad X1" }), "x86-laptop");
  assert.equal(d({ arch: "x64", systemModel: "NUC11PAHi5", systemManufacturer: "Intel(R) Client Systems" }), "x86-mini-pc");
  assert.equal(d({ arch: "x64", systemModel: "Standard PC (Q35 + ICH9, 2009)" }), "generic");
});

test("a busier CPU gives a slower estimate and more energy; asleep adds the measured load time", () => {
  const p = resolveProfile("generic");
  const base = { promptChars: 20, maxTokens: 50, asleep: false, queueMs: 0, calibration: cal, threads: 2, profile: p };
  const idle = estimateCost({ ...base, snapshot: snap({ cpuLoad: 0 }) });
  const busy = estimateCost({ ...base, snapshot: snap({ cpuLoad: 80 }) });
  assert.ok(busy.latencyMs > idle.latencyMs * 1.5, `${busy.latencyMs} vs ${idle.latencyMs}`);
  assert.ok(busy.energyJ > idle.energyJ);
  // 21 prompt tokens at 1000/s + 50 tokens at 100/s = 521 ms.
  assert.ok(Math.abs(idle.latencyMs - 521) < 1, String(idle.latencyMs));
  const asleep = estimateCost({ ...base, asleep: true, snapshot: snap() });
  assert.ok(Math.abs(asleep.latencyMs - idle.latencyMs - cal.loadMs) < 1e-6);
  assert.equal(asleep.wakeMs, cal.loadMs);
  const queued = estimateCost({ ...base, queueMs: 700, snapshot: snap() });
  assert.ok(Math.abs(queued.latencyMs - idle.latencyMs - 700) < 1e-6);
});

test("battery below the profile minimum on battery declines; charging bids; draining raises energy", () => {
  const low = decideBid(announce, node({ snapshot: snap({ batteryPercent: 10, charging: false }) }), now);
  assert.equal(low.bid.type, "decline");
  assert.equal(low.bid.type === "decline" && low.bid.reason, "battery");
  const charging = decideBid(announce, node({ snapshot: snap({ batteryPercent: 10, charging: true }) }), now);
  assert.equal(charging.bid.type, "bid");
  const full = decideBid(announce, node({ snapshot: snap({ batteryPercent: 100, charging: false }) }), now);
  const half = decideBid(announce, node({ snapshot: snap({ batteryPercent: 50, charging: false }) }), now);
  assert.ok(full.bid.type === "bid" && half.bid.type === "bid");
  if (full.bid.type === "bid" && half.bid.type === "bid") {
    assert.ok(half.bid.estimate.energyJ > full.bid.estimate.energyJ * 1.5, `${half.bid.estimate.energyJ} vs ${full.bid.estimate.energyJ}`);
    assert.equal(half.bid.device?.batteryPercent, 50);
  }
});

test("hot: throttle temperature slows the estimate, decline temperature declines", () => {
  const p = resolveProfile("raspberry-pi-4");
  const cool = decideBid(announce, node({ snapshot: snap({ temperatureC: 50 }) }, p.name), now);
  const warm = decideBid(announce, node({ snapshot: snap({ temperatureC: p.thermal.throttleC + 1 }) }, p.name), now);
  const hot = decideBid(announce, node({ snapshot: snap({ temperatureC: p.thermal.declineC }) }, p.name), now);
  assert.ok(cool.bid.type === "bid" && warm.bid.type === "bid");
  if (cool.bid.type === "bid" && warm.bid.type === "bid") assert.ok(Math.abs(warm.bid.estimate.latencyMs / cool.bid.estimate.latencyMs - p.thermal.throttleSlowdown) < 1e-9);
  assert.equal(hot.bid.type === "decline" && hot.bid.reason, "thermal");
});

test("declines: no-skill, excluded, queue-full, deadline, memory", () => {
  const reason = (a: Announce, n: BidderNode) => {
    const d = decideBid(a, n, now).bid;
    return d.type === "decline" ? d.reason : "bid";
  };
  assert.equal(reason({ ...announce, skill: "sort" }, node()), "no-skill");
  assert.equal(reason({ ...announce, excludedAgents: ["ag1"] }, node()), "excluded");
  const p = resolveProfile("x86-laptop");
  assert.equal(reason(announce, node({ running: p.slots, queued: p.queueLimit })), "queue-full");
  assert.equal(reason({ ...announce, deadlineAt: now + 50 }, node()), "deadline");
  const asleep = agent({ state: "asleep", wakeNeedMB: 5000 });
  assert.equal(reason(announce, node({ agents: [asleep], snapshot: snap({ freeMemMB: 4000 }) })), "memory");
  // Sleeping idle agents would free enough: then it bids.
  assert.equal(reason(announce, node({ agents: [asleep], snapshot: snap({ freeMemMB: 4000 }), reclaimableMB: 3000 })), "bid");
  // A task without a skill may go to any agent.
  assert.equal(reason({ ...announce, skill: undefined }, node()), "bid");
});

test("one bid for the best agent: more accurate wins, then faster", () => {
  const slow = agent({ agentId: "slow", calibration: { ...cal, genTokensPerS: 20 } });
  const fast = agent({ agentId: "fast" });
  const sharp = agent({ agentId: "sharp", accuracy: () => 0.99, calibration: { ...cal, genTokensPerS: 50 } });
  const d1 = decideBid(announce, node({ agents: [slow, fast] }), now).bid;
  assert.equal(d1.type === "bid" && d1.agentId, "fast");
  const d2 = decideBid(announce, node({ agents: [slow, fast, sharp] }), now).bid;
  assert.equal(d2.type === "bid" && d2.agentId, "sharp");
});
