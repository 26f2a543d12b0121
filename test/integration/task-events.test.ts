// A submitter sees a task's events in the documented order: accepted, announced, awarded, then the
// result. (The informational events were QoS 0 and the broker forwarded them ahead of the QoS 1
// `accepted`: every task's first event was `announced`.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode, topics } from "../../common/protocol.ts";
import { BidderProcess } from "../fixtures/bidder-process.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { submitterOf } from "../../coordinator/submitter.ts";

test("task events arrive in order: accepted, announced, awarded (then the result)", async (t) => {
  const h = await startHarness();
  const bidders = await BidderProcess.start(h.url, [{ nodeId: "ord-1", agentId: "ord-1.a", skills: ["ord"], ...(await h.nodeCred("ord-1")) }]);
  t.after(async () => {
    await bidders.kill();
    await h.close();
  });
  const s = await h.submitter();
  const seen = new Map<string, string[]>();
  s.on("message", (topic, p) => {
    const [, , , , , id, kind] = topic.split("/");
    const list = seen.get(id!) ?? [];
    list.push(kind === "result" ? "result" : JSON.parse(p.toString()).type);
    seen.set(id!, list);
  });
  for (let i = 0; i < 10; i++) {
    const id = `ord-${i}`;
    await s.subscribeAsync([topics.taskEvents(submitterOf(s), id), topics.taskResult(submitterOf(s), id)], { qos: 1 });
    await s.publishAsync(topics.submit(submitterOf(s)), encode({ id, prompt: "abc", skill: "ord" }), { qos: 1 });
    for (let k = 0; k < 200 && !seen.get(id)?.includes("result"); k++) await new Promise((r) => setTimeout(r, 10));
    const order = (seen.get(id) ?? []).filter((e) => e !== "progress");
    assert.deepEqual(order, ["accepted", "announced", "awarded", "result"], id);
  }
});
