// A bid that arrives in time but waits in the socket while the coordinator's event loop is stalled
// (a GC pause, a loaded Pi) must still count. Node runs due timers before it reads sockets, so the
// bid window's timer, once due, fired first and closed the auction without the bid: NO_BIDDERS
// (found by the chaos soak, docs/chaos.md). The window now closes one loop turn later, after the
// pending reads. Real coordinator (aedes, auth), a scripted bidder in its own process that bids
// 300 ms after the announce, and this process's event loop blocked across the window's end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode, topics, type Result } from "../../common/protocol.ts";
import { newTaskId, submitterOf } from "../../coordinator/submitter.ts";
import { BidderProcess } from "../fixtures/bidder-process.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";

test("a bid that arrived in time while the coordinator's event loop was stalled still wins the auction", async (t) => {
  const h = await startHarness({ config: { bidWindowMs: 600 } });
  const bidder = await BidderProcess.start(h.url, [{ nodeId: "stall-n", agentId: "stall-n.a", skills: ["stalltest"], bidDelayMs: 300, ...(await h.nodeCred("stall-n")) }]);
  t.after(async () => {
    await bidder.kill("SIGKILL");
    await h.close();
  });
  for (let i = 0; i < 500 && !h.coordinator.registry.isOnline("stall-n"); i++) await new Promise((r) => setTimeout(r, 10));

  const sub = await h.submitter();
  const id = newTaskId();
  let result: Result | undefined;
  sub.on("message", (topic, p) => topic === topics.taskResult(submitterOf(sub), id) && (result = JSON.parse(p.toString()) as Result));
  await sub.subscribeAsync(topics.taskResult(submitterOf(sub), id), { qos: 1 });
  await sub.publishAsync(topics.submit(submitterOf(sub)), encode({ id, prompt: "abc", skill: "stalltest" }), { qos: 1 });
  for (let i = 0; i < 500 && !h.coordinator.market.snapshot().openAuctions.some((a) => a.taskId === id); i++) await new Promise((r) => setTimeout(r, 2));
  const open = h.coordinator.market.snapshot().openAuctions.find((a) => a.taskId === id);
  assert.ok(open, "the auction opened");
  await new Promise((r) => setTimeout(r, 20)); // the announce leaves
  // Blocked from before the bid arrives (~300 ms) until well after the window's end (600 ms).
  const until = open.closesAt + 300;
  while (Date.now() < until) {
    // busy: nothing in this process runs, the bid waits in the socket
  }
  for (let i = 0; i < 1000 && !result; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(result?.status, "ok", JSON.stringify(result));
  assert.equal(result?.nodeId, "stall-n");
});
