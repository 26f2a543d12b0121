// Chaos: the coordinator SIGKILLed (a power loss) right after an award and while it writes a
// result, then restarted on the same data folder, on both brokers (docs/chaos.md, "Coordinator
// killed"). With the embedded broker the broker dies too; with mosquitto it stays up. Each kill
// lands a few ms after a node saw its award or sent its done (sampling the window in which the
// coordinator acks, stores and publishes): nothing accepted is lost, nothing is doubled.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, sleep, startBidders } from "../fixtures/chaos-fleet.ts";

const MOMENTS = [
  { ev: "award", delayMs: 0 },
  { ev: "award", delayMs: 5 },
  { ev: "done", delayMs: 0 },
  { ev: "done", delayMs: 2 },
  { ev: "done", delayMs: 8 },
] as const;

for (const broker of BROKERS) {
  test(`coordinator killed on ${broker}: right after an award and while writing a result, nothing lost, nothing doubled`, { skip: brokerSkip(broker), timeout: 240_000 }, async (t) => {
    const ids = ["ck-0", "ck-1"];
    const fleet = await ChaosFleet.start({ broker, host: "127.0.0.1", nodes: ids });
    let bidders: Awaited<ReturnType<typeof startBidders>> = [];
    t.after(async () => {
      await Promise.all(bidders.map((b) => b.kill("SIGKILL")));
      await fleet.close();
    });
    bidders = await startBidders(fleet, ids.map((nodeId) => ({ nodeId, spec: { skills: ["chaos"], workMs: 300, latencyMs: 1000 } })));
    await fleet.waitOnline(ids);
    const sub = await fleet.submitter();

    for (const [i, m] of MOMENTS.entries()) {
      const id = `kill-${i}-${m.ev}-${m.delayMs}`;
      const seen = Promise.any(bidders.map((b) => b.waitFor((e) => e.ev === m.ev && e.taskId === id, 30_000)));
      await sub.submit(id, { prompt: id, skill: "chaos", deadlineMs: 90_000 });
      await seen;
      if (m.delayMs) await sleep(m.delayMs);
      await fleet.restartCoordinator("SIGKILL");
      await fleet.waitOnline(ids, 60_000, Date.now());
    }
    const killed = sub.submitted.slice();
    await sub.waitResults(killed, 120_000);
    // The fleet serves on after five power losses.
    await sub.submit("after", { prompt: "after", skill: "chaos" });
    await sub.waitResults(["after"], 60_000);
    await sleep(1000); // a doubled result would arrive meanwhile

    for (const id of sub.submitted) {
      const r = sub.result(id)!;
      assert.equal(r.status, "ok", `${id}: ${JSON.stringify(r)}`);
      assert.equal(r.output, id.toUpperCase());
    }
    const stored = await fleet.storedTasks();
    assertExactlyOneResult(stored, sub);
    const outcomes = killed.map((id) => `${id}: ${stored.get(id)!.attempts.map((a) => `${a.nodeId}/${a.outcome}${a.late ? `(late ${a.late.status})` : ""}`).join(", ")}`);
    t.diagnostic(outcomes.join("; "));
  });
}
