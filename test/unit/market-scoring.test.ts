import { test } from "node:test";
import assert from "node:assert/strict";
import { CLAIM_CAP, explorationBonus, pickWinner, posteriorMean, scoreBid, type BidView } from "../../coordinator/market/scoring.ts";
import { Penalties } from "../../coordinator/market/penalties.ts";
import { TrackRecords } from "../../coordinator/market/track-record.ts";
import { FakeClock } from "../../common/clock.ts";
import { Rng } from "../../common/random.ts";

const bid = (agentId: string, over: Partial<BidView> = {}): BidView => ({ key: agentId, agentId, latencyMs: 100, energyJ: 1, accuracy: 0.8, ...over });
const none = { successes: 0, failures: 0 };

test("the self-reported accuracy is only a weak prior: evidence dominates quickly", () => {
  assert.equal(posteriorMean(0.5, none), 0.5);
  // A liar claiming 0.99 with 8 failures and no success is estimated well below 0.5.
  assert.ok(posteriorMean(0.99, { successes: 0, failures: 8 }) < 0.3);
  // An honest 0.6 with 8/10 successes is estimated near its record, above its claim.
  const m = posteriorMean(0.6, { successes: 8, failures: 2 });
  assert.ok(m > 0.7 && m < 0.8, String(m));
  // A claim is capped: claiming 1.0 is worth no more than 0.9, i.e. a posterior mean of 0.7.
  assert.equal(CLAIM_CAP, 0.9);
  assert.ok(Math.abs(posteriorMean(1, none) - 0.7) < 1e-12);
  assert.equal(posteriorMean(1, none), posteriorMean(0.9, none));
});

test("exploration bonus shrinks with the agent's trials and grows with everyone's", () => {
  assert.ok(explorationBonus(0, 100) > explorationBonus(10, 100));
  assert.ok(explorationBonus(5, 1000) > explorationBonus(5, 10));
  assert.equal(explorationBonus(0, 0), 0);
});

test("bids that cannot meet the deadline or minAccuracy are ineligible", () => {
  const slow = scoreBid(bid("a", { latencyMs: 5000 }), none, 0, { budgetMs: 1000 });
  assert.equal(slow.eligible, false);
  assert.equal(slow.reason, "deadline");
  const weak = scoreBid(bid("b", { accuracy: 0.99 }), { successes: 0, failures: 20 }, 20, { budgetMs: 1000, minAccuracy: 0.5 });
  assert.equal(weak.eligible, false);
  assert.equal(weak.reason, "min-accuracy");
  const fine = scoreBid(bid("c"), none, 0, { budgetMs: 1000, minAccuracy: 0.5 });
  assert.equal(fine.eligible, true);
});

test("weights trade accuracy against latency and energy", () => {
  const fast = bid("fast", { latencyMs: 10, accuracy: 0.6 });
  const accurate = bid("accurate", { latencyMs: 900, accuracy: 0.95 });
  const rec = () => none;
  const rng = new Rng(1);
  assert.equal(pickWinner([fast, accurate], rec, 0, { budgetMs: 1000, weights: { accuracy: 1, latency: 0, energy: 0 } }, () => rng.next()).winner?.key, "accurate");
  assert.equal(pickWinner([fast, accurate], rec, 0, { budgetMs: 1000, weights: { accuracy: 0.1, latency: 1, energy: 0 } }, () => rng.next()).winner?.key, "fast");
  const cheap = bid("cheap", { energyJ: 0.1 });
  const hungry = bid("hungry", { energyJ: 500 });
  assert.equal(pickWinner([hungry, cheap], rec, 0, { budgetMs: 1000, weights: { energy: 1 } }, () => rng.next()).winner?.key, "cheap");
});

test("no eligible bid -> no winner; ties are broken by the seeded rng, not by order", () => {
  assert.equal(pickWinner([bid("a", { latencyMs: 10_000 })], () => none, 0, { budgetMs: 100 }, Math.random).winner, undefined);
  const rng = new Rng(7);
  const wins = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const w = pickWinner([bid("x"), bid("y"), bid("z")], () => none, 0, { budgetMs: 1000 }, () => rng.next()).winner!.key;
    wins.set(w, (wins.get(w) ?? 0) + 1);
  }
  for (const k of ["x", "y", "z"]) assert.ok((wins.get(k) ?? 0) > 40, `${k} won ${wins.get(k)} of 200 ties`);
});

test("simulated market: a lying agent stops being preferred and a new agent still gets tried", () => {
  // Ground truth: the liar is right 10% of the time while claiming 0.99; the honest agent is right
  // 85% of the time and claims 0.8. A newcomer joins later with a modest claim.
  const truth: Record<string, number> = { liar: 0.1, honest: 0.85, newcomer: 0.85 };
  const recs = new TrackRecords();
  const rng = new Rng(3);
  const wins: string[] = [];
  for (let i = 0; i < 200; i++) {
    const bids = [bid("liar", { accuracy: 0.99 }), bid("honest", { accuracy: 0.8 })];
    if (i >= 100) bids.push(bid("newcomer", { accuracy: 0.7 }));
    const { winner } = pickWinner(bids, (b) => recs.get(b.agentId, "s"), recs.total("s"), { budgetMs: 1000 }, () => rng.next());
    wins.push(winner!.key);
    recs.note(winner!.key, "s", rng.next() < truth[winner!.key]!);
  }
  const late = wins.slice(50, 100);
  assert.ok(late.filter((w) => w === "liar").length <= 5, `liar still won ${late.filter((w) => w === "liar").length} of 50`);
  assert.ok(wins.slice(100).includes("newcomer"), "the newcomer was never tried");
});

test("penalties double with each consecutive failure, are capped, and heal with a success", () => {
  const clock = new FakeClock(0);
  const p = new Penalties(clock, 1000, 5000);
  assert.equal(p.fail("a").until, 1000);
  assert.equal(p.fail("a").until, 2000);
  assert.equal(p.fail("a").until, 4000);
  assert.equal(p.fail("a").until, 5000);
  assert.ok(p.isExcluded("a"));
  assert.deepEqual(p.excludedNow(), ["a"]);
  clock.advance(5001);
  assert.equal(p.isExcluded("a"), false);
  p.succeed("a");
  assert.equal(p.fail("a").until, clock.now() + 1000);
});

test("track records count per agent and skill and feed the skill's total", () => {
  const saved: string[] = [];
  const r = new TrackRecords((c) => c.kind === "base" && saved.push(`${c.key}|${c.skill}|${c.rec.successes}/${c.rec.failures}`));
  r.note("a", "sum", true);
  r.note("a", "sum", false);
  r.note("b", "sum", true);
  r.note("a", "sort", true);
  assert.deepEqual(r.get("a", "sum"), { successes: 1, failures: 1 });
  assert.equal(r.total("sum"), 3);
  assert.equal(r.total("sort"), 1);
  assert.equal(saved.at(-1), "a|sort|1/0");
  // Correcting an observation (feedback replacing a verdict) moves it; the totals do not grow.
  r.correct("a", "sum", true, false);
  assert.deepEqual(r.get("a", "sum"), { successes: 0, failures: 2 });
  assert.equal(r.total("sum"), 3);
  assert.equal(saved.at(-1), "a|sum|0/2");
  r.correct("a", "sum", false, false);
  assert.equal(saved.at(-1), "a|sum|0/2", "no change, nothing written");
});

test("a submitter's verdicts count only in its window of the latest N (at their weight); trusted and agent-caused ones without limit", () => {
  const changes: string[] = [];
  const r = new TrackRecords((c) => changes.push(c.kind), 5, 1);
  // The agent's own failures (timeouts, errors) go to the base.
  r.note("n/a:x", "s", false);
  // Mallory sends 50 tasks whose checks fail: only her latest 5 count.
  for (let i = 0; i < 50; i++) r.note("n/a:x", "s", false, { submitter: "submitter.mallory", taskId: `m${i}` });
  assert.deepEqual(r.get("n/a:x", "s"), { successes: 0, failures: 6 });
  // Alice's verdicts have their own window; a trusted submitter's count without limit (base).
  for (let i = 0; i < 8; i++) r.note("n/a:x", "s", true, { submitter: "submitter.alice", taskId: `a${i}` });
  for (let i = 0; i < 30; i++) r.note("n/a:x", "s", true);
  assert.deepEqual(r.get("n/a:x", "s"), { successes: 35, failures: 6 });
  assert.equal(r.total("s"), 41);
  // Feedback corrects a windowed verdict in place (a verdict that left its window counts no more).
  r.correct("n/a:x", "s", true, false, { submitter: "submitter.alice", taskId: "a7" });
  assert.deepEqual(r.get("n/a:x", "s"), { successes: 34, failures: 7 });
  r.correct("n/a:x", "s", true, false, { submitter: "submitter.alice", taskId: "a0" });
  assert.deepEqual(r.get("n/a:x", "s"), { successes: 34, failures: 7 }, "a0 already left alice's window");
  assert.ok(changes.includes("window") && changes.includes("base"));
  // At the default weight a window of 5 failures is worth 1.25 observations.
  const w = new TrackRecords(() => {}, 5, 0.25);
  for (let i = 0; i < 50; i++) w.note("k", "s", false, { submitter: "m", taskId: `m${i}` });
  assert.deepEqual(w.get("k", "s"), { successes: 0, failures: 1.25 });
});
