// A node whose clock is off (a Raspberry Pi without an RTC, before NTP) still bids and runs tasks:
// announce and award times are on the coordinator's clock and carry its `sentAt`, from which the
// node learns the offset and moves them onto its own clock. Before, a node 5 s ahead dropped every
// announce silently (its window had "closed") and every task ended NO_BIDDERS. An announce that
// really arrives too late (it sat in a queue) is still late, and counted.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { skewedClock } from "../../common/clock.ts";
import { encode, topics, type Announce } from "../../common/protocol.ts";
import { newTaskId, submitAndWait } from "../../coordinator/submitter.ts";
import { startHarness, type Harness } from "../fixtures/coordinator-harness.ts";
import { genome, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";

let h: Harness;
let dir: string;
let model: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-skew-"));
  model = await writeRandomModel(dir, "skew");
  h = await startHarness({ config: { bidWindowMs: 1000 } });
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const offsetMs of [5000, -5000]) {
  test(`a node whose clock is ${offsetMs > 0 ? "ahead" : "behind"} by ${Math.abs(offsetMs)} ms wins and runs tasks`, async () => {
    const nodeId = `skew${offsetMs > 0 ? "ahead" : "behind"}`;
    const node = await startNode({ nodeId, url: h.url, cred: await h.nodeCred(nodeId), dataDir: path.join(dir, nodeId), genomes: [genome(`${nodeId}-a`, model, [nodeId])], clock: skewedClock(offsetMs) });
    const client = await h.submitter();
    try {
      for (let i = 0; i < 3; i++) {
        const r = await submitAndWait(client, { id: newTaskId(), prompt: "abc", skill: nodeId, maxTokens: 4, deadlineMs: 20_000 }, { timeoutMs: 25_000 });
        assert.equal(r.status, "ok", JSON.stringify(r.error));
        assert.equal(r.nodeId, nodeId);
      }
      assert.equal(node.daemon.counters.get("dropped.announce.late"), 0);
    } finally {
      await node.close();
    }
  });
}

test("an announce whose window closed before it arrived is counted as dropped, not bid on", async () => {
  const nodeId = "skew-late";
  const node = await startNode({ nodeId, url: h.url, cred: await h.nodeCred(nodeId), dataDir: path.join(dir, nodeId), genomes: [genome("late-a", model, ["late"])] });
  const sup = await h.superClient();
  const bids: string[] = [];
  sup.on("message", (t, p) => t === topics.nodeBid(nodeId) && bids.push(JSON.parse(p.toString()).auctionId));
  await sup.subscribeAsync(topics.nodeBid(nodeId), { qos: 1 });
  try {
    const now = Date.now();
    // Sent 10 s ago by the coordinator's clock, closed 9 s ago: late by the coordinator's own account.
    const late: Announce = { auctionId: "au-late", taskId: "late-1", attempt: 1, prompt: "abc", skill: "late", maxTokens: 4, deadlineAt: now + 60_000, closesAt: now - 9000, sentAt: now - 10_000 };
    const fine: Announce = { ...late, auctionId: "au-fine", taskId: "late-2", closesAt: now + 5000, sentAt: now };
    // The fine one first: the node learns the coordinator's clock from it.
    await sup.publishAsync(topics.announce, encode(fine), { qos: 1 });
    await sup.publishAsync(topics.announce, encode(late), { qos: 1 });
    for (let i = 0; i < 200 && node.daemon.counters.get("dropped.announce.late") === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(bids, ["au-fine"]);
    assert.equal(node.daemon.counters.get("dropped.announce.late"), 1);
  } finally {
    await node.close();
  }
});
