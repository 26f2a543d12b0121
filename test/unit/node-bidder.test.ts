// Pure-logic tests of device profiles, the cost model and the bidder (no llama.cpp, no broker).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ColonyError } from "../../common/errors.ts";
import { decideBid, type BidderAgent, type BidderNode } from "../../node/bidder.ts";
import { estimateCost, generationBudget, measuredCost, modelledJoules } from "../../node/cost-model.ts";
import { detectProfile, listProfiles, parseProfile, resolveProfile } from "../../node/profile.ts";
import type { ProbeSnapshot } from "../../node/probe.ts";
import type { Announce } from "../../common/protocol.ts";

const cal = { loadMs: 100, promptTokensPerS: 1000, genTokensPerS: 100, threads: 2, charsPerToken: 1, at: 1 };
const now = 1_000_000;
const announce: Announce = { auctionId: "a1", taskId: "t1", attempt: 1, prompt: "add 1 2 =", skill: "add", maxTokens: 10, deadlineAt: now + 60_000, closesAt: now + 100, sentAt: now };
const snap = (o: Partial<ProbeSnapshot> = {}): ProbeSnapshot => ({ cpuLoad: 0, freeMemMB: 8000, totalMemMB: 16000, at: now, ...o });
const noRecord = { successes: 0, failures: 0 };
const agent = (o: Partial<BidderAgent> = {}): BidderAgent => ({
  agentId: "ag1", skills: ["add"], state: "awake", calibration: cal, threads: 2, contextSize: 2048, templateChars: 0, wakeNeedMB: 100, claim: () => 0.8, record: () => noRecord, ...o,
});
function node(o: Partial<BidderNode> = {}, profileName = "x86-laptop"): BidderNode {
  return { nodeId: "n1", profile: resolveProfile(profileName), snapshot: snap(), running: 0, queued: 0, queueMs: 0, reclaimableMB: 0, agents: [agent()], ...o };
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
  const base = { promptChars: 20, maxTokens: 50, contextSize: 2048, asleep: false, queueMs: 0, calibration: cal, threads: 2, profile: p };
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
  assert.equal(reason({ ...announce, excludedAgents: [{ nodeId: "n1", agentId: "ag1" }] }, node()), "excluded");
  // The same agent id on ANOTHER node is another agent: not excluded here.
  assert.equal(reason({ ...announce, excludedAgents: [{ nodeId: "n2", agentId: "ag1" }] }, node()), "bid");
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

test("one bid for the best agent: more accurate wins, then faster; an agent never judged is tried first", () => {
  const some = () => ({ successes: 3, failures: 1 });
  const slow = agent({ agentId: "slow", record: some, calibration: { ...cal, genTokensPerS: 20 } });
  const fast = agent({ agentId: "fast", record: some });
  const sharp = agent({ agentId: "sharp", record: () => ({ successes: 30, failures: 0 }), calibration: { ...cal, genTokensPerS: 50 } });
  const d1 = decideBid(announce, node({ agents: [slow, fast] }), now).bid;
  assert.equal(d1.type === "bid" && d1.agentId, "fast");
  const d2 = decideBid(announce, node({ agents: [slow, fast, sharp] }), now).bid;
  assert.equal(d2.type === "bid" && d2.agentId, "sharp");
  // A newborn child next to its parent: untried, it goes first (UCB1 plays every arm once), or it
  // would never be judged (docs/scoring.md, "Exploration on the node").
  const child = agent({ agentId: "child", calibration: { ...cal, genTokensPerS: 20 } });
  const d3 = decideBid(announce, node({ agents: [sharp, child] }), now).bid;
  assert.equal(d3.type === "bid" && d3.agentId, "child");
  const alone = decideBid(announce, node({ agents: [child] }), now).bid;
  assert.equal(alone.type === "bid" && alone.agentId, "child");
});

test("the bid carries the agent's claim, not a record; the node picks its agent by the coordinator's record", () => {
  // A claims much and has failed; B claims little and has succeeded. The node picks with the same
  // posterior the coordinator will compute over ITS record, and sends B's claim unchanged: the
  // coordinator adds its own record to it, so a record is never counted twice.
  const a = agent({ agentId: "A", claim: () => 0.9, record: () => ({ successes: 0, failures: 10 }) });
  const b = agent({ agentId: "B", claim: () => 0.6, record: () => ({ successes: 10, failures: 0 }) });
  const d = decideBid(announce, node({ agents: [a, b] }), now).bid;
  assert.ok(d.type === "bid");
  assert.equal(d.type === "bid" && d.agentId, "B");
  assert.equal(d.type === "bid" && d.estimate.accuracy, 0.6);
});

test("a task without a skill is picked by the records under its niche, and the pick explores the node's agents", () => {
  // Four agents on one node (like `npm start`). On this niche "right" is always right but claims
  // little (0.3: its genome's skills are others) and is the slowest; "fast" claims 0.9 and is right
  // 3 times in 5; the others claim 0.9 and are always wrong. Without exploration the node would
  // settle on "fast" (posterior about 0.6 > "right"'s untried 0.4) and never learn better. The node
  // hears each verdict's record under the niche and picks with it plus the UCB1 bonus.
  const recs = new Map<string, { successes: number; failures: number }>();
  const recOf = (id: string, key: string | undefined) => recs.get(`${id}|${key}`) ?? noRecord;
  const ids = ["fast", "other", "third", "right"];
  const agents = ids.map((id, i) =>
    agent({ agentId: id, skills: [id], claim: () => (id === "right" ? 0.3 : 0.9), record: (k) => recOf(id, k), calibration: { ...cal, genTokensPerS: 100 - 10 * i } }),
  );
  const unlabeled: Announce = { ...announce, skill: undefined, niche: "~c1" };
  const picks: string[] = [];
  for (let i = 0; i < 80; i++) {
    const d = decideBid(unlabeled, node({ agents }), now).bid;
    assert.ok(d.type === "bid");
    if (d.type !== "bid") return;
    picks.push(d.agentId);
    assert.equal(d.estimate.accuracy, d.agentId === "right" ? 0.3 : 0.9, "the bid carries the claim, never the record");
    const r = recOf(d.agentId, "~c1");
    const ok = d.agentId === "right" || (d.agentId === "fast" && i % 5 < 3);
    recs.set(`${d.agentId}|~c1`, ok ? { ...r, successes: r.successes + 1 } : { ...r, failures: r.failures + 1 });
  }
  assert.ok(ids.every((id) => picks.slice(0, 30).includes(id)), `every agent tried within 30 tasks: ${picks.join(",")}`);
  const late = picks.slice(-20).filter((id) => id === "right").length;
  assert.ok(late >= 18, `the right agent wins the niche: ${late}/20 (${picks.join(",")})`);
  // Deterministic: the same records give the same pick.
  assert.deepEqual(decideBid(unlabeled, node({ agents }), now).bid, decideBid(unlabeled, node({ agents }), now).bid);
  // The niche's records never leak into another key: an unlabeled task without a niche (niches off)
  // is picked by its own records, without the exploration bonus.
  const plain = decideBid({ ...announce, skill: undefined }, node({ agents }), now).bid;
  assert.equal(plain.type === "bid" && plain.agentId, "fast");
});

test("a prompt that fits no agent's context is declined with reason context; an agent it fits bids", () => {
  const long = { ...announce, prompt: "x".repeat(40) };
  const small = agent({ agentId: "small", contextSize: 32 });
  const d = decideBid(long, node({ agents: [small] }), now).bid;
  assert.equal(d.type === "decline" && d.reason, "context");
  const big = agent({ agentId: "big", contextSize: 512 });
  const d2 = decideBid(long, node({ agents: [small, big] }), now).bid;
  assert.equal(d2.type === "bid" && d2.agentId, "big");
});

test("a bid prices only the tokens the agent's context can produce", () => {
  // A 32-token context (the seed models'): 8192 asked tokens cannot run; the prompt (9 chars + BOS)
  // leaves 32 - 10 - 1 = 21.
  const small = agent({ contextSize: 32 });
  const d = decideBid({ ...announce, maxTokens: 8192 }, node({ agents: [small] }), now).bid;
  assert.ok(d.type === "bid");
  assert.equal(generationBudget(8192, 10, 32), 21);
  const expected = 10 / cal.promptTokensPerS * 1000 + 21 / cal.genTokensPerS * 1000;
  assert.ok(d.type === "bid" && Math.abs(d.estimate.latencyMs - expected) < 1e-6, `${d.type === "bid" && d.estimate.latencyMs} vs ${expected}`);
  // The genome's prompt template takes context room too.
  const templated = decideBid({ ...announce, maxTokens: 8192 }, node({ agents: [agent({ contextSize: 32, templateChars: 10 })] }), now).bid;
  assert.ok(templated.type === "bid" && d.type === "bid" && templated.estimate.latencyMs < d.estimate.latencyMs);
});

test("energy is priced at the thread count the model runs with, and measured with the same watts", () => {
  const p = resolveProfile("raspberry-pi-4");
  assert.ok(p.power.perThreadW !== undefined, "the Pi 4 profile prices watts per thread");
  const one = decideBid(announce, node({ agents: [agent({ threads: 1 })] }, p.name), now).bid;
  const four = decideBid(announce, node({ agents: [agent({ threads: 4 })] }, p.name), now).bid;
  assert.ok(one.type === "bid" && four.type === "bid");
  if (one.type !== "bid" || four.type !== "bid") return;
  const computeMs = one.estimate.latencyMs;
  assert.ok(Math.abs(one.estimate.energyJ - modelledJoules(p, 1, computeMs)) < 1e-9);
  assert.ok(four.estimate.energyJ > one.estimate.energyJ, `${four.estimate.energyJ} vs ${one.estimate.energyJ}`);
  // The outcome of the same work, measured without a meter, costs what the bid priced.
  const measured = measuredCost({ computeMs, threads: 1, snapshot: snap(), profile: p });
  assert.equal(measured.energySource, "model");
  assert.ok(Math.abs(measured.energyJ - one.estimate.energyJ) < 1e-9);
  // On battery both apply the same factor; a real reading replaces the model.
  const drained = snap({ batteryPercent: 50, charging: false });
  const est = estimateCost({ promptChars: 9, maxTokens: 10, contextSize: 2048, asleep: false, queueMs: 0, calibration: cal, threads: 1, snapshot: drained, profile: p });
  const out = measuredCost({ computeMs: est.computeMs, threads: 1, snapshot: drained, profile: p });
  assert.ok(est.batteryFactor > 1 && Math.abs(out.energyJ - est.energyJ) < 1e-9);
  assert.deepEqual(measuredCost({ computeMs: 1000, threads: 1, snapshot: snap(), profile: p, metered: { joules: 2.5, source: "rapl" } }), { energyJ: 2.5, energySource: "rapl" });
});
