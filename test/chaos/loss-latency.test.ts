// Chaos: a bad link to one node, on both brokers (docs/chaos.md, "Loss and latency"). The node's
// namespace drops 10% of its packets in each direction (iptables' statistic match: real TCP
// retransmissions) and it reaches the broker through a relay that adds 200 ms each way (this
// kernel has no sch_netem). Another node has a clean link. Tasks only the lossy node can do, and
// tasks both can do, each end with exactly one result: ok within their deadline, or a clean error
// with a code; never lost, never doubled.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, startBidders } from "../fixtures/chaos-fleet.ts";
import { ChaosNet, DelayRelay, droppedPackets, dropPackets } from "../fixtures/chaos-net.ts";
import { needs, needsRoot } from "../fixtures/system-tools.ts";

const skip = needsRoot("create network namespaces") || needs("ip", "iptables");
const DEADLINE_MS = 20_000;
const CLEAN_ERRORS = ["DEADLINE_EXCEEDED", "ATTEMPTS_EXHAUSTED", "NO_BIDDERS"];

for (const broker of BROKERS) {
  test(`10% loss and 200 ms latency to one node on ${broker}: tasks finish within their deadlines or fail cleanly`, { skip: skip || brokerSkip(broker), timeout: 240_000 }, async (t) => {
    const net = new ChaosNet(2, `${process.pid % 100000}l${broker[0]}`);
    let fleet: ChaosFleet | undefined;
    let relay: DelayRelay | undefined;
    let bidders: Awaited<ReturnType<typeof startBidders>> = [];
    t.after(async () => {
      await Promise.all(bidders.map((b) => b.kill("SIGKILL")));
      await relay?.close();
      await fleet?.close();
      net.close();
    });
    const [lossy, clean] = net.devices as [(typeof net.devices)[0], (typeof net.devices)[0]];
    fleet = await ChaosFleet.start({ broker, host: net.brokerAddr, nodes: ["lossy", "clean"] });
    const brokerPort = Number(new URL(fleet.url).port);
    relay = new DelayRelay({ host: net.brokerAddr, port: brokerPort }, 200);
    await relay.listen(net.brokerAddr);
    dropPackets(lossy.netns, 0.1);
    const spec = { workMs: 200, latencyMs: 1000 };
    // The lossy node bids cheaper: it wins whenever its bid arrives within the window.
    bidders = await startBidders(fleet, [
      { nodeId: "lossy", netns: lossy.netns, url: `mqtt://${net.brokerAddr}:${relay.port}`, spec: { ...spec, skills: ["both", "lossy-only"], energyJ: 0.5 } },
      { nodeId: "clean", netns: clean.netns, spec: { ...spec, skills: ["both"], energyJ: 5 } },
    ]);
    await fleet.waitOnline(["lossy", "clean"]);
    const sub = await fleet.submitter();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      for (const skill of ["lossy-only", "both"]) {
        const id = `${skill}-${i}`;
        ids.push(id);
        await sub.submit(id, { prompt: id, skill, deadlineMs: DEADLINE_MS });
      }
    }
    await sub.waitResults(ids, DEADLINE_MS + 60_000);

    const lines: string[] = [];
    for (const id of ids) {
      const r = sub.result(id)!;
      if (r.status === "ok") {
        assert.ok(r.timings.totalMs <= DEADLINE_MS, `${id} ok within its deadline: ${r.timings.totalMs} ms`);
        assert.equal(r.output, id.toUpperCase());
        if (id.startsWith("lossy-only")) assert.equal(r.nodeId, "lossy");
      } else {
        assert.ok(CLEAN_ERRORS.includes(r.error?.code ?? ""), `${id} failed cleanly, with a code: ${JSON.stringify(r.error)}`);
      }
      lines.push(`${id} ${r.status === "ok" ? `${r.nodeId} ${r.timings.totalMs} ms` : r.error!.code}${r.attempts.length > 1 ? ` (${r.attempts.map((a) => a.outcome).join(",")})` : ""}`);
    }
    const lossyOk = ids.filter((id) => id.startsWith("lossy-only") && sub.result(id)!.status === "ok").length;
    assert.ok(lossyOk > 0, "the lossy node still delivered some of its tasks");
    const dropped = droppedPackets(lossy.netns);
    assert.ok(dropped > 0, "the lossy link did drop packets");
    t.diagnostic(`${broker}: ${dropped} packets dropped; ${lines.join("; ")}`);
    const stored = await fleet.storedTasks();
    assertExactlyOneResult(stored, sub);
    for (const id of ids) {
      const runs = bidders.map((b) => b.events.filter((e) => e.ev === "done" && e.taskId === id).length);
      assert.ok(runs.every((n) => n <= 1), `${id}: no node ran it twice (${runs})`);
    }
  });
}
