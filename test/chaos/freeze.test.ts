// Chaos: a node frozen (SIGSTOP) in the middle of a task, on both brokers (docs/chaos.md, "Freeze").
// Its socket stays open and the kernel keeps acking, so only the market's own clock can notice:
// while it is frozen the other nodes finish every new task (nobody waits for it), its task is
// re-auctioned once its attempt times out; after SIGCONT it finishes its copy, which is recorded
// late and never published, and it serves again.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, doneCounts, sleep, startBidders, submitToWinner, until } from "../fixtures/chaos-fleet.ts";

// Attempt timeout: 2 x 2500 + 1000 = 6 s after the ack; the freeze lasts longer.
const LATENCY_MS = 2500;
const FREEZE_MS = 9000;

for (const broker of BROKERS) {
  test(`freeze on ${broker}: a SIGSTOPped node stalls nobody, its task is re-auctioned, SIGCONT resumes it`, { skip: brokerSkip(broker), timeout: 180_000 }, async (t) => {
    const ids = ["frz-0", "frz-1", "frz-2"];
    const fleet = await ChaosFleet.start({ broker, host: "127.0.0.1", nodes: ids, config: { penaltyBaseMs: 2000 } });
    let bidders: Awaited<ReturnType<typeof startBidders>> = [];
    t.after(async () => {
      for (const b of bidders) b.child.kill("SIGCONT");
      await Promise.all(bidders.map((b) => b.kill("SIGKILL")));
      await fleet.close();
    });
    bidders = await startBidders(fleet, ids.map((nodeId) => ({ nodeId, spec: { skills: ["chaos"], workMs: 1500, latencyMs: LATENCY_MS } })));
    await fleet.waitOnline(ids);
    const sub = await fleet.submitter();
    const task = { prompt: "freeze", skill: "chaos", deadlineMs: 60_000 };

    const w = await submitToWinner(sub, bidders, "frozen", task);
    const frozen = bidders[w]!;
    frozen.child.kill("SIGSTOP");
    const stoppedAt = Date.now();
    // While it is frozen: new tasks finish on the others, one after another.
    const during = ["during-1", "during-2", "during-3", "during-4"];
    for (const id of during) await sub.submit(id, { ...task, prompt: id });
    await sub.waitResults([...during, "frozen"], 60_000);
    const stillFrozen = Date.now() - stoppedAt < FREEZE_MS;
    for (const id of during) {
      assert.equal(sub.result(id)?.status, "ok", JSON.stringify(sub.result(id)));
      assert.notEqual(sub.result(id)?.nodeId, ids[w], "not given to the frozen node");
    }
    const r = sub.result("frozen")!;
    assert.equal(r.status, "ok", JSON.stringify(r));
    assert.deepEqual(r.attempts.map((a) => a.outcome), ["attempt-timeout", "ok"], "re-auctioned after the attempt timeout");
    assert.notEqual(r.nodeId, ids[w]);
    assert.ok(stillFrozen, "all of it happened while the node was still frozen");

    await sleep(Math.max(0, FREEZE_MS - (Date.now() - stoppedAt)));
    frozen.child.kill("SIGCONT");
    // It resumes where it stopped. Its work timer and the cancel queued on its socket are both due:
    // either it honours the cancel first, or it finishes its copy, which is then recorded late.
    await frozen.waitFor((e) => (e.ev === "done" || e.ev === "cancel") && e.taskId === "frozen", 30_000);
    await sleep(500);
    const finishedCopy = frozen.events.some((e) => e.ev === "done" && e.taskId === "frozen");
    if (finishedCopy) await until(async () => ((await fleet.stats())?.counters["done.late"] ?? 0) >= 1, 30_000, "the resumed node's done recorded late");
    t.diagnostic(`${broker}: after SIGCONT the node ${finishedCopy ? "finished its copy (recorded late)" : "honoured the cancel"}`);
    // And it serves again: with the others gone (a graceful stop) the next task can only go to it.
    await Promise.all(bidders.filter((_, i) => i !== w).map((b) => b.kill("SIGTERM")));
    await fleet.waitOnline([ids[w]!]);
    await sleep(2500); // its penalty (penaltyBaseMs 2 s) runs out
    await sub.submit("resumed", { ...task, prompt: "resumed" });
    await sub.waitResults(["resumed"], 60_000);
    assert.equal(sub.result("resumed")?.status, "ok", JSON.stringify(sub.result("resumed")));
    assert.equal(sub.result("resumed")?.nodeId, ids[w], "the resumed node serves");

    for (const id of [...during, "resumed"]) assert.equal(doneCounts(bidders, id).reduce((a, b) => a + b), 1, `${id} executed once`);
    const stored = await fleet.storedTasks();
    assertExactlyOneResult(stored, sub);
    assert.equal(stored.get("frozen")!.attempts[0]!.late?.status, finishedCopy ? "ok" : undefined, "the frozen node's done, if any, is recorded on its superseded attempt");
  });
}
