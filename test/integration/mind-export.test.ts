// The cold cache end to end: a real coordinator (embedded aedes with auth, real LevelDB) and a
// scripted node answer tasks; `colony experience export` over MQTT with a coordinator credential
// returns them as JSONL that the trainer and the distillation job read; a submitter credential
// cannot export; a bad request gets a coded error and the coordinator keeps answering.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { encode, topics, type Result } from "../../common/protocol.ts";
import { issueCredential, loadOrCreateFleetSecret } from "../../coordinator/auth.ts";
import { submitterOf } from "../../coordinator/submitter.ts";
import { exportExperiences } from "../../cli/experience-export.ts";
import { parseJsonl, readJsonlFile } from "../../trainer/dataset.ts";
import { parseExperienceLines } from "../../trainer/distil/curate.ts";
import { BidderProcess } from "../fixtures/bidder-process.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { runColony } from "../fixtures/colony-process.ts";

test("experiences of finished tasks export over MQTT to a coordinator credential only, as JSONL the trainer reads", async (t) => {
  const h = await startHarness();
  const bidders = await BidderProcess.start(h.url, [{ nodeId: "mx-1", agentId: "mx-1.a", skills: ["upper"], ...(await h.nodeCred("mx-1")) }]);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "colony-mind-export-"));
  t.after(async () => {
    await bidders.kill();
    await h.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  // Tasks: checked (verified), unchecked (bare deliveries), opted out, and one whose experience
  // (a 24,000-character prompt and the same length of output) is larger than an export page.
  const s = await h.submitter();
  const user = submitterOf(s);
  const results = new Map<string, Result>();
  s.on("message", (topic, p) => {
    if (topic.endsWith("/result") && p.length) results.set(topic.split("/").at(-2)!, JSON.parse(p.toString()) as Result);
  });
  await s.subscribeAsync(`${topics.submitterRoot(user)}/tasks/+/result`, { qos: 1 });
  const big = "abc\u00e9\"\n".repeat(4000);
  const tasks = [
    ...[1, 2, 3].map((i) => ({ id: `mx-check-${i}`, prompt: `hello ${i}`, skill: "upper", check: { type: "exact", value: `HELLO ${i}` } })),
    { id: "mx-plain", prompt: "plain", skill: "upper" },
    { id: "mx-private", prompt: "secret", skill: "upper", check: { type: "exact", value: "SECRET" }, learn: false },
    { id: "mx-big", prompt: big, skill: "upper" },
  ];
  for (const task of tasks) await s.publishAsync(topics.submit(user), encode(task), { qos: 1 });
  for (let i = 0; i < 1000 && results.size < tasks.length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(results.size, tasks.length, `results: ${[...results.keys()]}`);
  for (const [id, r] of results) assert.equal(r.status, "ok", `${id}: ${JSON.stringify(r.error)}`);
  for (let i = 0; i < 200 && h.coordinator.experiences.size < 5; i++) await new Promise((r) => setTimeout(r, 10));

  // Everything, as the CLI's export code writes it, with a coordinator credential.
  const admin = await h.superClient();
  const unknownBefore = h.coordinator.counters.get("dropped.unknown-topic");
  const lines: string[] = [];
  const got = await exportExperiences(admin, {}, (l) => void lines.push(l));
  assert.equal(got.count, 5, lines.map((l) => JSON.parse(l).taskId).join());
  assert.ok(got.pages >= 3, `the big experience spans pages (${got.pages})`);
  const text = lines.join("\n") + "\n";
  const exported = parseExperienceLines(text);
  assert.deepEqual(exported.map((e) => e.taskId).sort(), ["mx-big", "mx-check-1", "mx-check-2", "mx-check-3", "mx-plain"], "the opted-out task left nothing");
  const bigOne = exported.find((e) => e.taskId === "mx-big")!;
  assert.equal(bigOne.prompt, big);
  assert.equal(bigOne.completion, big.toUpperCase());
  assert.deepEqual(bigOne.verdict, { success: true, source: "delivery" });
  assert.deepEqual(exported.find((e) => e.taskId === "mx-check-1")!.verdict, { success: true, source: "check" });
  for (const e of exported) assert.deepEqual([e.nodeId, e.agentId, e.skill, e.submitter], ["mx-1", "mx-1.a", "upper", user]);
  const pairs = parseJsonl(text);
  assert.equal(pairs.length, 5);
  assert.equal(pairs.find((p) => p.prompt === "hello 2")!.completion, "HELLO 2");

  // Filters: verified only, a skill that has none.
  const verified: string[] = [];
  await exportExperiences(admin, { verified: true, skill: "upper" }, (l) => void verified.push(l));
  assert.deepEqual(verified.map((l) => JSON.parse(l).taskId).sort(), ["mx-check-1", "mx-check-2", "mx-check-3"]);
  assert.equal((await exportExperiences(admin, { skill: "nothing" }, () => {})).count, 0);

  // A bad request gets a coded error on its reply topic; the coordinator keeps answering.
  await assert.rejects(exportExperiences(admin, { limit: -5 } as never, () => {}), { code: "EXPERIENCE_EXPORT_INVALID" });
  assert.equal((await exportExperiences(admin, { limit: 2 }, () => {})).count, 2);
  assert.equal(h.coordinator.counters.get("dropped.unknown-topic"), unknownBefore, "the market's inbound router leaves export requests to their part");

  // A submitter may neither read the reply topics nor publish a request.
  const exportsBefore = h.coordinator.counters.get("mind.exports");
  await assert.rejects(exportExperiences(s, {}, () => {}), { code: "EXPERIENCE_EXPORT_DENIED" });
  const replies: string[] = [];
  admin.on("message", (topic) => topic.startsWith(`${topics.mindReply("")}`) && replies.push(topic));
  await admin.subscribeAsync(topics.mindReply("#"), { qos: 1 });
  const sneaky = await h.submitter();
  // Not awaited: the broker refuses the publish (aedes sends no PUBACK for it).
  sneaky.publish(topics.mindExperienceExport, encode({ requestId: "sneaky-1" }), { qos: 1 }, () => {});
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(replies, [], "the coordinator never saw the submitter's request");
  assert.equal(h.coordinator.counters.get("mind.exports"), exportsBefore);

  // The real command, on the coordinator's host (--data-dir issues a coordinator credential), into
  // a file that `colony train --data` reads.
  const file = path.join(tmp, "verified.jsonl");
  const run = await runColony(["experience", "export", "--url", h.url, "--data-dir", h.dataDir, "--verified", "--since", new Date(Date.now() - 3_600_000).toISOString(), "--out", file]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /exported 3 experiences/);
  assert.equal(readJsonlFile(file).length, 3);
  assert.equal(readFileSync(file, "utf8").split("\n").filter(Boolean).length, 3);
  const model = path.join(tmp, "m.gguf");
  const train = await runColony(["train", "--data", file, "--out", model, "--dim", "16", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--context", "32", "--batch", "2", "--steps", "2", "--seed", "1"]);
  assert.equal(train.code, 0, train.stderr);
  assert.ok(existsSync(model), "the exported file trains a model");
  const cred = issueCredential(await loadOrCreateFleetSecret(h.dataDir), "submitter", "tester");
  const credFile = path.join(tmp, "submitter.json");
  writeFileSync(credFile, JSON.stringify({ url: h.url, ...cred }), { mode: 0o600 });
  const denied = await runColony(["experience", "export", "--credentials", credFile, "--timeout-ms", "2000", "--out", path.join(tmp, "denied.jsonl")]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /EXPERIENCE_EXPORT_DENIED/);
  assert.equal(existsSync(path.join(tmp, "denied.jsonl")) || existsSync(path.join(tmp, "denied.jsonl.partial")), false, "no file is left behind");
});
