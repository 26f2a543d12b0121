import { test } from "node:test";
import assert from "node:assert/strict";
import { AnnounceSchema, AwardSchema, decode, SubmitSchema, BidSchema, MAX_PAYLOAD_BYTES, MAX_TOKENS_LIMIT, parseNodeTopic, topics, VerdictSchema } from "../../common/protocol.ts";

test("a minimal submit decodes", () => {
  const r = decode(SubmitSchema, Buffer.from(JSON.stringify({ prompt: "2+2=" })));
  assert.equal(r.ok, true);
  if (r.ok) assert.equal(r.value.prompt, "2+2=");
});

test("bad submits are rejected with stable codes", () => {
  const cases: Array<[string | Buffer, string]> = [
    ["{not json", "PAYLOAD_NOT_JSON"],
    [JSON.stringify({ prompt: "" }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", colour: "red" }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", id: "a/b" }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", id: "a+" }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", replyTo: "colony/+/x" }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", check: { type: "exact" } }), "PAYLOAD_INVALID"],
    [JSON.stringify({ prompt: "x", maxTokens: 0 }), "PAYLOAD_INVALID"],
    [Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 32), "PAYLOAD_TOO_LARGE"],
    ["null", "PAYLOAD_INVALID"],
    ["[]", "PAYLOAD_INVALID"],
  ];
  for (const [payload, code] of cases) {
    const r = decode(SubmitSchema, payload);
    assert.equal(r.ok, false, `accepted ${String(payload).slice(0, 60)}`);
    if (!r.ok) assert.equal(r.code, code, String(payload).slice(0, 60));
  }
});

test("bids and declines are a discriminated union", () => {
  const bid = { type: "bid", auctionId: "a1", taskId: "t1", nodeId: "n1", agentId: "g1", estimate: { latencyMs: 10, energyJ: 1, accuracy: 0.9 } };
  assert.equal(decode(BidSchema, JSON.stringify(bid)).ok, true);
  assert.equal(decode(BidSchema, JSON.stringify({ ...bid, type: "decline" })).ok, false);
  assert.equal(decode(BidSchema, JSON.stringify({ type: "decline", auctionId: "a1", taskId: "t1", nodeId: "n1", reason: "battery" })).ok, true);
});

test("node topics round-trip through their parser", () => {
  assert.deepEqual(parseNodeTopic(topics.nodeBid("pi-1")), { nodeId: "pi-1", kind: "bid" });
  assert.equal(parseNodeTopic("colony/v1/tasks/x/result"), undefined);
  assert.equal(parseNodeTopic("colony/v1/nodes/a/b/c"), undefined);
});

test("announces and awards are bounded like submits: maxTokens at most MAX_TOKENS_LIMIT, and they carry the sender's clock", () => {
  const announce = { auctionId: "a1", taskId: "t1", attempt: 1, prompt: "p", maxTokens: MAX_TOKENS_LIMIT, deadlineAt: 2, closesAt: 1, sentAt: 0 };
  assert.equal(decode(AnnounceSchema, JSON.stringify(announce)).ok, true);
  assert.equal(decode(AnnounceSchema, JSON.stringify({ ...announce, maxTokens: MAX_TOKENS_LIMIT + 1 })).ok, false);
  assert.equal(decode(AnnounceSchema, JSON.stringify({ ...announce, sentAt: undefined })).ok, false, "sentAt is required: without it a node cannot convert the times");
  const award = { auctionId: "a1", taskId: "t1", attempt: 1, agentId: "g", prompt: "p", maxTokens: 1e6, deadlineAt: 2, sentAt: 0, ackWithinMs: 10 };
  assert.equal(decode(AwardSchema, JSON.stringify(award)).ok, false);
  assert.equal(decode(AwardSchema, JSON.stringify({ ...award, maxTokens: 8 })).ok, true);
  assert.equal(decode(SubmitSchema, JSON.stringify({ prompt: "x", maxTokens: MAX_TOKENS_LIMIT + 1 })).ok, false);
});

test("a task without a skill carries its niche on the announce and the verdict; a niche is never a skill", () => {
  const announce = { auctionId: "a1", taskId: "t1", attempt: 1, prompt: "add 1 2 =", maxTokens: 8, deadlineAt: 2, closesAt: 1, sentAt: 0 };
  assert.equal(decode(AnnounceSchema, JSON.stringify({ ...announce, niche: "~c12" })).ok, true);
  const verdict = { taskId: "t1", agentId: "g", success: true, source: "check", record: { successes: 1, failures: 0 } };
  assert.equal(decode(VerdictSchema, JSON.stringify({ ...verdict, niche: "~c12" })).ok, true);
  for (const bad of ["c12", "~", "~C1", "~c-1", "~" + "a".repeat(17), "add"]) {
    assert.equal(decode(AnnounceSchema, JSON.stringify({ ...announce, niche: bad })).ok, false, `announce niche ${bad}`);
    assert.equal(decode(VerdictSchema, JSON.stringify({ ...verdict, niche: bad })).ok, false, `verdict niche ${bad}`);
  }
  // A niche key in the skill field is refused: "~" is outside the skill alphabet, so keys never collide.
  assert.equal(decode(AnnounceSchema, JSON.stringify({ ...announce, skill: "~c12" })).ok, false);
  assert.equal(decode(VerdictSchema, JSON.stringify({ ...verdict, skill: "~c12" })).ok, false);
  assert.equal(decode(SubmitSchema, JSON.stringify({ prompt: "x", skill: "~c1" })).ok, false);
});
