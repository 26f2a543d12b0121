// The generated mosquitto password and ACL files, checked against a real mosquitto with the same
// scenarios as the aedes hooks (test/auth-aedes.test.ts), plus the documented gaps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import type { MqttClient } from "mqtt";
import { issueCredential, type Role } from "../../coordinator/auth.ts";
import { writeMosquittoFiles, mosquittoPasswordHash } from "../../coordinator/auth.ts";
import { topics } from "../../common/protocol.ts";
import { startMosquitto, type MosquittoInstance } from "../fixtures/mosquitto.ts";
import { rawConnect, canSubscribe, deliveredTo, endAll } from "../fixtures/auth-broker.ts";
import { needs } from "../fixtures/system-tools.ts";

const skip = needs("mosquitto", "mosquitto_passwd");

const secret = randomBytes(32);
let dir: string;
let mosq: MosquittoInstance;
let observer: MqttClient;
const opened: MqttClient[] = [];

async function as(role: Role, name: string, extra: Parameters<typeof rawConnect>[1] = {}): Promise<MqttClient> {
  const c = await rawConnect(mosq.url, { ...issueCredential(secret, role, name), ...extra });
  opened.push(c);
  return c;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), "colony-mosq-files-"));
  const files = await writeMosquittoFiles(dir, { secret, nodes: ["pi-a", "pi-b"], submitters: ["alice"], observers: ["dashboard"], submitterTopics: ["homeassistant/#"] });
  mosq = await startMosquitto({ passwordFile: files.passwordFile, aclFile: files.aclFile });
  observer = await as("coordinator", "coordinator");
});
after(async () => {
  await endAll(...opened);
  await mosq?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("generated files are private and the password hash matches mosquitto's own format", { skip }, () => {
  for (const f of ["passwd", "acl", "mosquitto.conf"]) assert.equal(statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  const line = readFileSync(path.join(dir, "passwd"), "utf8").split("\n").find((l) => l.startsWith("node.pi-a:"))!;
  const [, , iterations, salt] = line.split(":")[1]!.split("$");
  assert.equal(iterations, "101");
  // Same salt and password give the same line: our PBKDF2 parameters are mosquitto's.
  assert.equal(`node.pi-a:${mosquittoPasswordHash(issueCredential(secret, "node", "pi-a").password, Buffer.from(salt!, "base64"))}`, line);
  const passwdTool = spawnSync("mosquitto_passwd", ["-h"]);
  assert.ok(passwdTool.error === undefined, "mosquitto_passwd is installed with mosquitto");
});

test("mosquitto refuses anonymous clients, wrong passwords and unknown users", { skip }, async () => {
  await assert.rejects(rawConnect(mosq.url), (e: Error & { code?: number }) => e.code === 5);
  const good = issueCredential(secret, "node", "pi-a");
  await assert.rejects(rawConnect(mosq.url, { username: good.username, password: good.password + "x" }), (e: Error & { code?: number }) => e.code === 5 || e.code === 4);
  await assert.rejects(rawConnect(mosq.url, { ...issueCredential(secret, "node", "pi-unlisted") }), (e: Error & { code?: number }) => e.code === 5 || e.code === 4);
});

test("mosquitto: a node publishes on its own topics only", { skip }, async () => {
  const node = await as("node", "pi-a");
  for (const t of [topics.nodeStatus("pi-a"), topics.nodeBid("pi-a"), topics.nodeDone("pi-a"), topics.nodeCommandAck("pi-a"), topics.nodeModelFetch("pi-a"), topics.nodeModelReport("pi-a"), topics.nodeModelProgress("pi-a")]) assert.equal(await deliveredTo(observer, node, t), true, t);
  // mosquitto silently drops a publish its ACL refuses (the connection stays up).
  for (const t of [topics.nodeStatus("pi-b"), topics.nodeBid("pi-b"), topics.submit("submitter.alice"), topics.taskResult("submitter.alice", "t1"), topics.announce, topics.nodeCommand("pi-b"), topics.nodeCommand("pi-a"), topics.nodeCommandAck("pi-b"), topics.nodeModelChunk("pi-a"), topics.nodeModelChunk("pi-b"), topics.nodeModelFetch("pi-b"), topics.nodeModelReport("pi-b"), topics.nodeModelProgress("pi-b"), topics.modelRollouts]) {
    assert.equal(await deliveredTo(observer, node, t, { waitMs: 150 }), false, t);
  }
});

test("mosquitto: node subscriptions are limited to its folder, announce and coordinator status", { skip }, async () => {
  const node = await as("node", "pi-a");
  const coordinatorSends = async (t: string) => deliveredTo(node, observer, t, { waitMs: 150 });
  for (const t of [topics.nodeAward("pi-a"), topics.nodeCommand("pi-a"), topics.nodeModelChunk("pi-a"), topics.announce, topics.coordinatorStatus]) assert.equal(await coordinatorSends(t), true, t);
  // mosquitto grants the SUBACK but its ACL filters every message on delivery.
  for (const t of [topics.nodeAward("pi-b"), topics.nodeCommand("pi-b"), topics.nodeModelChunk("pi-b"), topics.taskResult("submitter.alice", "t1"), "homeassistant/x"]) assert.equal(await coordinatorSends(t), false, t);
});

test("mosquitto: a submitter reads only its own folder, and publishes submits and feedback only there", { skip }, async () => {
  const sub = await as("submitter", "alice");
  assert.equal(await deliveredTo(sub, observer, topics.taskResult("submitter.alice", "t-42")), true);
  assert.equal(await deliveredTo(sub, observer, "homeassistant/reply"), true);
  for (const t of [topics.nodeBid("pi-a"), topics.nodeStatus("pi-a"), topics.announce, topics.taskResult("submitter.bob", "t-42")]) assert.equal(await deliveredTo(sub, observer, t, { waitMs: 150 }), false, t);
  // A wildcard over node topics or over every submitter's folder is accepted (or not), but
  // mosquitto checks read rights per delivered message: nothing of another's ever arrives.
  const wild = await as("submitter", "alice");
  await canSubscribe(wild, "colony/v1/nodes/#");
  await canSubscribe(wild, "colony/v1/submitters/+/tasks/+/result");
  const leaked: string[] = [];
  wild.on("message", (t) => leaked.push(t));
  observer.publish(topics.nodeBid("pi-a"), "x", { qos: 1 });
  observer.publish(topics.taskResult("submitter.bob", "someone-elses"), "x", { qos: 1 });
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(leaked, []);
  for (const t of [topics.submit("submitter.alice"), topics.taskFeedback("submitter.alice", "t-42"), topics.taskGet("submitter.alice", "t-42")]) assert.equal(await deliveredTo(observer, sub, t), true, t);
  for (const t of [topics.nodeBid("pi-a"), topics.taskResult("submitter.alice", "t-42"), topics.submit("submitter.bob"), topics.taskFeedback("submitter.bob", "t-42"), topics.taskGet("submitter.bob", "t-42"), topics.nodeAnnounce("pi-a")]) {
    assert.equal(await deliveredTo(observer, await as("submitter", "alice"), t, { waitMs: 150 }), false, t);
  }
});

test("mosquitto: an observer (the dashboard) reads the fleet views and the dashboard feed, no prompt, and publishes nothing under colony/", { skip }, async () => {
  const dash = await as("observer", "dashboard");
  for (const t of [topics.coordinatorStatus, topics.coordinatorStats, topics.evolutionLineage, topics.architectDecisions, topics.modelCatalog, topics.modelRollouts, topics.mindJobs, topics.dashboardEvents, topics.dashboardRecent, topics.dashboardFleet]) {
    assert.equal(await deliveredTo(dash, observer, t), true, t);
  }
  // mosquitto may grant the SUBACK, but its ACL filters every message on delivery.
  for (const t of [topics.announce, topics.nodeAward("pi-a"), topics.nodeAnnounce("pi-a"), topics.nodeDone("pi-a"), topics.nodeStatus("pi-a"), topics.nodeModelProgress("pi-a"), topics.taskEvents("submitter.alice", "t1"), topics.taskResult("submitter.alice", "t1"), topics.mindReply("r1")]) {
    assert.equal(await deliveredTo(dash, observer, t, { waitMs: 150 }), false, t);
  }
  for (const t of [topics.submit("submitter.alice"), topics.nodeCommand("pi-a"), topics.mindDistil, topics.dashboardEvents, topics.modelRollouts, topics.nodeModelProgress("pi-a")]) {
    assert.equal(await deliveredTo(observer, await as("observer", "dashboard"), t, { waitMs: 150 }), false, t);
  }
});
