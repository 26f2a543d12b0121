// Chaos: a reconnect storm, on both brokers (docs/chaos.md, "Reconnect storm"). 200 simulated
// nodes (bench/_sim-nodes.ts: real MQTT clients with node credentials, two processes) lose their
// broker at once (mosquitto restarted, or the coordinator with its embedded broker SIGKILLed and
// restarted) and all reconnect within the same second (mqtt.js retries every 1 s). Measured from
// the moment the broker accepts connections again: every node has republished its status, and a
// task submitted at that moment has its result. Tasks accepted before the restart all end with
// exactly one result; the market then serves a burst of new tasks.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { decode, NodeStatusSchema, topics } from "../../common/protocol.ts";
import { BROKERS, ChaosFleet, assertExactlyOneResult, brokerSkip, sleep, until } from "../fixtures/chaos-fleet.ts";

const NODES = 200;

function startSims(fleet: ChaosFleet, ids: string[]): Promise<ChildProcess>[] {
  const half = Math.ceil(ids.length / 2);
  return [ids.slice(0, half), ids.slice(half)].map(async (group) => {
    const nodes = group.map((id) => ({ id, ...fleet.nodeCred(id) }));
    const child = spawn(process.execPath, ["--import", "tsx", "bench/_sim-nodes.ts", JSON.stringify({ url: fleet.url, nodes })], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once("line", (l) => (l === "ready" ? resolve() : reject(new Error(l))));
      child.once("exit", (code) => reject(new Error(`simulated nodes exited with ${code}`)));
    });
    return child;
  });
}

for (const broker of BROKERS) {
  test(`reconnect storm on ${broker}: ${NODES} nodes reconnect at once after a broker restart; the market recovers, no task lost`, { skip: brokerSkip(broker), timeout: 300_000 }, async (t) => {
    const ids = Array.from({ length: NODES }, (_, i) => `sim-${String(i).padStart(3, "0")}`);
    const fleet = await ChaosFleet.start({ broker, host: "127.0.0.1", nodes: ids, config: { submitRate: 0 } });
    const sims: ChildProcess[] = [];
    t.after(async () => {
      for (const c of sims) c.kill("SIGKILL");
      await fleet.close();
    });
    sims.push(...(await Promise.all(startSims(fleet, ids))));
    await fleet.waitOnline(ids, 120_000);
    // Every node status published, by whom and when (the payload's `at`): who came back, and when.
    const seen = new Map<string, number>();
    const watcher = await fleet.connect("coordinator");
    watcher.on("message", (_topic, p) => {
      const s = decode(NodeStatusSchema, p);
      if (s.ok && s.value.state === "online") seen.set(s.value.nodeId, Math.max(seen.get(s.value.nodeId) ?? 0, s.value.at));
    });
    await watcher.subscribeAsync(topics.nodeStatus("+"), { qos: 1 });
    const sub = await fleet.submitter();
    const task = (id: string) => ({ prompt: id, deadlineMs: 120_000 });

    const before = Array.from({ length: 5 }, (_, i) => `before-${i}`);
    for (const id of before) await sub.submit(id, task(id));
    await sub.waitResults(before, 60_000);
    // Tasks accepted (stored) but maybe unfinished when the broker goes.
    const inflight = Array.from({ length: 10 }, (_, i) => `inflight-${i}`);
    for (const id of inflight) await sub.submit(id, task(id));
    await until(() => inflight.every((id) => sub.accepted(id)), 30_000, "in-flight tasks accepted");

    const lost = Date.now();
    await fleet.restartBroker(1000);
    // The ready line: the embedded broker accepts a little earlier, while the coordinator starts.
    const up = Date.now();
    const probeSent = sub.submitUntilAccepted("probe", task("probe"), 120_000);
    await until(() => ids.every((id) => (seen.get(id) ?? 0) > lost), 120_000, `every node republished its status (${[...seen.values()].filter((at) => at > lost).length}/${NODES})`);
    const allBack = Math.max(...ids.map((id) => seen.get(id)!)) - lost;
    await probeSent;
    await sub.waitResults(["probe"], 120_000);
    const probeMs = sub.result("probe")!.timings.finishedAt - up;
    await sub.waitResults(inflight, 120_000);
    // Recovered: 20 new tasks, 4 at a time (a burst of 20 at once with 200 nodes ends some auctions
    // with 0 bids in the window on this 2-core machine, storm or not: docs/chaos.md, "Findings").
    const after = Array.from({ length: 20 }, (_, i) => `after-${i}`);
    for (let i = 0; i < after.length; i += 4) {
      for (const id of after.slice(i, i + 4)) await sub.submit(id, task(id));
      await sub.waitResults(after.slice(i, i + 4), 120_000);
    }
    await sleep(1000);
    t.diagnostic(`${broker}: broker lost, back (ready) after ${up - lost} ms (1000 ms down); all ${NODES} nodes republished their status ${allBack} ms after the loss; a task submitted at the ready line finished ${probeMs} ms after it`);

    // Every task is served, the in-flight ones included: after its link reconnects the coordinator
    // holds auctions until the nodes are heard from again (roster.ts afterReconnect). Before, an
    // in-flight task re-auctioned while the nodes were re-subscribing could end NO_BIDDERS.
    for (const id of sub.submitted) {
      const r = sub.result(id)!;
      assert.equal(r.status, "ok", `${id}: ${JSON.stringify(r)}`);
    }
    const stored = await fleet.storedTasks();
    assertExactlyOneResult(stored, sub);
  });
}
