// Retained messages on inbound topics are old messages a broker replays to every new subscriber.
// mosquitto's ACL cannot forbid `retain`, so a submitter there can leave a retained submit behind,
// which every (re)started coordinator used to run again. The coordinator and the node now drop
// retained messages on every inbound topic but presence (counted as `dropped.retained`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { encode, topics, type Announce } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret, writeMosquittoFiles } from "../../coordinator/auth.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { startMosquitto } from "../fixtures/mosquitto.ts";
import { needs } from "../fixtures/system-tools.ts";
import { genome, startNode, writeRandomModel } from "../fixtures/node-helpers.ts";
import { submitterOf } from "../../coordinator/submitter.ts";

test("mosquitto: a retained submit left by a submitter is not run by a coordinator that starts later", { skip: needs("mosquitto") }, async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-retained-"));
  const secret = await loadOrCreateFleetSecret(dataDir);
  const files = await writeMosquittoFiles(path.join(dataDir, "mosquitto"), { secret, nodes: [], submitters: ["tester"] });
  const m = await startMosquitto({ passwordFile: files.passwordFile, aclFile: files.aclFile });
  const submitter = await connectMqtt({ url: m.url, ...issueCredential(secret, "submitter", "tester"), logger: silentLogger });
  let h: Awaited<ReturnType<typeof startHarness>> | undefined;
  t.after(async () => {
    await h?.close();
    await submitter.endAsync(true);
    await m.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  // mosquitto accepts it: its ACL language has no way to forbid retain (docs/security.md).
  await submitter.publishAsync(topics.submit(submitterOf(submitter)), encode({ id: "left-behind", prompt: "p" }), { qos: 1, retain: true });
  await submitter.publishAsync(topics.taskFeedback(submitterOf(submitter), "left-behind"), encode({ success: false }), { qos: 1, retain: true });

  h = await startHarness({ broker: m.url, dataDir });
  const coordinator = h.coordinator;
  for (let i = 0; i < 100 && coordinator.counters.get("dropped.retained") < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(coordinator.counters.get("dropped.retained"), 2, JSON.stringify(coordinator.counters.snapshot()));
  assert.equal(coordinator.counters.get("tasks.accepted"), 0, "the retained submit was not accepted");
  // A live submit still works.
  const events: string[] = [];
  submitter.on("message", (_t, p) => events.push(JSON.parse(p.toString()).type));
  await submitter.subscribeAsync(topics.taskEvents(submitterOf(submitter), "live-1"), { qos: 1 });
  await submitter.publishAsync(topics.submit(submitterOf(submitter)), encode({ id: "live-1", prompt: "p" }), { qos: 1 });
  for (let i = 0; i < 100 && !events.includes("accepted"); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(events.includes("accepted"));
});

test("a node ignores a retained announce that a broker replays when it subscribes", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-retained-node-"));
  const h = await startHarness();
  let node: Awaited<ReturnType<typeof startNode>> | undefined;
  t.after(async () => {
    await node?.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const sup = await h.superClient();
  const now = Date.now();
  const stale: Announce = { auctionId: "au-stale", taskId: "stale-1", attempt: 1, prompt: "abc", skill: "ret", maxTokens: 4, deadlineAt: now + 600_000, closesAt: now + 600_000, sentAt: now };
  await sup.publishAsync(topics.announce, encode(stale), { qos: 1, retain: true });
  const bids: string[] = [];
  sup.on("message", (topic, p) => topic === topics.nodeBid("n-ret") && bids.push(JSON.parse(p.toString()).auctionId));
  await sup.subscribeAsync(topics.nodeBid("n-ret"), { qos: 1 });
  const model = await writeRandomModel(dir, "ret");
  node = await startNode({ nodeId: "n-ret", url: h.url, cred: await h.nodeCred("n-ret"), dataDir: path.join(dir, "n"), genomes: [genome("ret-a", model, ["ret"])], calibrate: false });
  const counters = node.daemon.counters;
  for (let i = 0; i < 100 && counters.get("dropped.retained") === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(counters.get("dropped.retained"), 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(bids, [], "no bid for a replayed announce");
});
