// The fleet ACL enforced by a real aedes broker, probed with real mqtt.js clients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { issueCredential, type Role } from "../../coordinator/auth.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { topics } from "../../common/protocol.ts";
import { startAuthBroker, rawConnect, canSubscribe, deliveredTo, endAll, type TestBroker } from "../fixtures/auth-broker.ts";

const secret = randomBytes(32);
let broker: TestBroker;
let observer: MqttClient; // the coordinator: may read everything
const opened: MqttClient[] = [];

async function as(role: Role, name: string, extra: Parameters<typeof rawConnect>[1] = {}): Promise<MqttClient> {
  const c = await rawConnect(broker.url, { ...issueCredential(secret, role, name), ...extra });
  opened.push(c);
  return c;
}

before(async () => {
  broker = await startAuthBroker({ secret });
  observer = await as("coordinator", "coordinator");
});
after(async () => {
  await endAll(...opened);
  await broker.close();
});

test("anonymous connections are refused (CONNACK 5) and connectMqtt reports MQTT_AUTH_REFUSED", async () => {
  await assert.rejects(rawConnect(broker.url), (err: Error & { code?: number }) => err.code === 5);
  await assert.rejects(connectMqtt({ url: broker.url, logger: silentLogger, connectTimeoutMs: 3000 }), (err: unknown) => err instanceof ColonyError && err.code === "MQTT_AUTH_REFUSED");
});

test("a wrong password, a password for another name and a forged role are refused", async () => {
  const good = issueCredential(secret, "node", "pi-a");
  await assert.rejects(rawConnect(broker.url, { username: good.username, password: good.password.slice(0, -1) + (good.password.endsWith("A") ? "B" : "A") }), (e: Error & { code?: number }) => e.code === 4);
  await assert.rejects(rawConnect(broker.url, { username: "node.pi-b", password: good.password }), (e: Error & { code?: number }) => e.code === 4);
  await assert.rejects(rawConnect(broker.url, { username: "coordinator", password: good.password }), (e: Error & { code?: number }) => e.code === 4);
  const otherFleet = issueCredential(randomBytes(32), "node", "pi-a");
  await assert.rejects(connectMqtt({ url: broker.url, ...otherFleet, logger: silentLogger, connectTimeoutMs: 3000 }), (err: unknown) => err instanceof ColonyError && err.code === "MQTT_AUTH_REFUSED");
  const ok = await connectMqtt({ url: broker.url, ...good, logger: silentLogger });
  opened.push(ok);
  assert.equal(ok.connected, true);
});

test("a node publishes on its own topics; the coordinator receives them", async () => {
  for (const t of [topics.nodeStatus("pi-a"), topics.nodeHeartbeat("pi-a"), topics.nodeBid("pi-a"), topics.nodeAck("pi-a"), topics.nodeProgress("pi-a"), topics.nodeDone("pi-a"), topics.nodeCommandAck("pi-a"), topics.nodeModelFetch("pi-a"), topics.nodeModelReport("pi-a"), topics.nodeModelProgress("pi-a")]) {
    assert.equal(await deliveredTo(observer, await as("node", "pi-a"), t), true, t);
  }
  assert.equal(await deliveredTo(observer, await as("node", "pi-a"), topics.nodeStatus("pi-a"), { retain: true }), true, "retained status");
});

test("a node's publishes on another node's topics, on task topics or retained heartbeats never arrive", async () => {
  // Life cycle commands are the coordinator's alone: not on another node's topic, not on its own.
  const refused = [topics.nodeStatus("pi-b"), topics.nodeBid("pi-b"), topics.nodeAward("pi-a"), topics.nodeCommand("pi-b"), topics.nodeCommand("pi-a"), topics.nodeCommandAck("pi-b"),
    // Model chunks are the coordinator's alone (a node must not forge another's, nor its own); fetches and reports only on its own topics.
    topics.nodeModelChunk("pi-a"), topics.nodeModelChunk("pi-b"), topics.nodeModelFetch("pi-b"), topics.nodeModelReport("pi-b"),
    // Rollout progress: a node's own only; the table built from it is the coordinator's.
    topics.nodeModelProgress("pi-b"), topics.modelRollouts,
    topics.submit("submitter.alice"), topics.taskResult("submitter.alice", "t1"), topics.announce, topics.coordinatorStatus, "homeassistant/x"];
  for (const t of refused) {
    const node = await as("node", "pi-a");
    assert.equal(await deliveredTo(observer, node, t), false, t);
  }
  assert.equal(await deliveredTo(observer, await as("node", "pi-a"), topics.nodeHeartbeat("pi-a"), { retain: true }), false, "retained heartbeat");
});

test("a node cannot register a last will on another node's status topic", async () => {
  const cred = issueCredential(secret, "node", "pi-a");
  await assert.rejects(rawConnect(broker.url, { ...cred, will: { topic: topics.nodeStatus("pi-b"), payload: "offline", retain: true } }), (e: Error & { code?: number }) => e.code === 5);
  const ok = await as("node", "pi-a", { will: { topic: topics.nodeStatus("pi-a"), payload: "offline", retain: true, qos: 1 } });
  assert.equal(ok.connected, true);
});

test("a node's last will on its own status reaches the coordinator when it dies", async () => {
  await observer.subscribeAsync(topics.nodeStatus("pi-w"), { qos: 1 });
  const got = new Promise<string>((resolve) => observer.on("message", (t, p) => t === topics.nodeStatus("pi-w") && p.length > 0 && resolve(p.toString())));
  const node = await as("node", "pi-w", { will: { topic: topics.nodeStatus("pi-w"), payload: "offline-by-will", qos: 1 } });
  node.stream.destroy(); // an abrupt death, not a clean DISCONNECT
  assert.equal(await got, "offline-by-will");
});

test("node subscriptions: its own folder, announce and coordinator status only", async () => {
  const node = await as("node", "pi-a");
  for (const f of [topics.nodeAward("pi-a"), topics.nodeModelChunk("pi-a"), "colony/v1/nodes/pi-a/#", topics.announce, topics.coordinatorStatus]) assert.equal(await canSubscribe(node, f), true, f);
  for (const f of ["colony/v1/nodes/pi-b/award", topics.nodeModelChunk("pi-b"), "colony/v1/nodes/+/model-chunk", "colony/v1/nodes/+/award", "colony/v1/nodes/#", "colony/#", "#", "+/v1/nodes/pi-b/award", topics.taskResult("submitter.alice", "t1"), topics.submit("submitter.alice"), "homeassistant/#"]) {
    assert.equal(await canSubscribe(node, f), false, f);
  }
});

test("a submitter reads only its own folder: never another submitter's tasks, never node topics", async () => {
  const sub = await as("submitter", "alice");
  const mine = "colony/v1/submitters/submitter.alice";
  for (const f of [topics.nodeStatus("pi-a"), "colony/v1/nodes/#", "colony/v1/nodes/+/bid", "colony/v1/submitters/+/tasks/+/result", "colony/v1/submitters/#", "colony/v1/submitters/submitter.bob/#", topics.taskResult("submitter.bob", "t1"), "colony/#", "#", "+/v1/submitters/submitter.alice/#", topics.announce, "$SYS/#"]) {
    assert.equal(await canSubscribe(sub, f), false, f);
  }
  for (const f of [topics.taskResult("submitter.alice", "t-42"), topics.taskEvents("submitter.alice", "t-42"), `${mine}/tasks/+/result`, `${mine}/#`, topics.coordinatorStatus, "homeassistant/colony/reply", "home/#"]) {
    assert.equal(await canSubscribe(sub, f), true, f);
  }
  // The granted subscription really delivers the coordinator's result; bob's never reaches alice.
  assert.equal(await deliveredTo(sub, observer, topics.taskResult("submitter.alice", "t-43")), true);
  const wide = await as("submitter", "alice");
  await wide.subscribeAsync(`${mine}/#`, { qos: 1 });
  const leaked: string[] = [];
  wide.on("message", (t) => leaked.push(t));
  await observer.publishAsync(topics.taskResult("submitter.bob", "t-44"), "bob's", { qos: 1 });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(leaked, []);
});

test("a submitter publishes its submits and feedback in its own folder, and outside colony/, nothing else", async () => {
  for (const t of [topics.submit("submitter.alice"), topics.taskFeedback("submitter.alice", "t-42"), topics.taskGet("submitter.alice", "t-42"), "homeassistant/light/set"]) assert.equal(await deliveredTo(observer, await as("submitter", "alice"), t), true, t);
  // Not in bob's folder (submitting or judging as bob), not a result, not a node or coordinator topic.
  for (const t of [topics.submit("submitter.bob"), topics.taskFeedback("submitter.bob", "t-42"), topics.taskGet("submitter.bob", "t-42"), topics.nodeAnnounce("pi-a"), topics.nodeBid("pi-a"), topics.taskResult("submitter.alice", "t-42"), topics.announce, topics.coordinatorStatus, "colony/v1/tasks/submit"]) {
    assert.equal(await deliveredTo(observer, await as("submitter", "alice"), t), false, t);
  }
  assert.equal(await deliveredTo(observer, await as("submitter", "alice"), topics.submit("submitter.alice"), { retain: true }), false, "retained submit");
});

test("insecure mode lets anonymous clients in with full rights", async () => {
  const open = await startAuthBroker({ insecure: true });
  const anon = await rawConnect(open.url);
  const anon2 = await rawConnect(open.url);
  try {
    assert.equal(await canSubscribe(anon, "colony/v1/nodes/#"), true);
    assert.equal(await deliveredTo(anon, anon2, topics.nodeBid("anyone")), true);
  } finally {
    await endAll(anon, anon2);
    await open.close();
  }
});

test("a client id belongs to its credential: no one can take over or squat another's id; the same identity may reconnect", async () => {
  const coordinator = await as("coordinator", "coordinator", { clientId: "coordinator:main" });
  await assert.rejects(as("submitter", "mallory", { clientId: "coordinator:main" }), (e: Error & { code?: number }) => e.code === 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(coordinator.connected, true, "the coordinator was not kicked off");
  // Squatting: a valid credential connecting FIRST under a node's client id (the daemon's
  // "node.{id}:daemon", or the old "node-{id}") is refused, so the real node is never locked out.
  for (const clientId of ["node.pi-k:daemon", "node-pi-k", "node.pi-k", "submitter.mallory-x:1"]) {
    await assert.rejects(as("submitter", "mallory", { clientId }), (e: Error & { code?: number }) => e.code === 2, clientId);
  }
  const real = await as("node", "pi-k", { clientId: "node.pi-k:daemon" });
  assert.equal(real.connected, true);
  // Its own username, bare or with a suffix, is fine for every role.
  assert.equal((await as("submitter", "mallory", { clientId: "submitter.mallory:cli-1" })).connected, true);
  assert.equal((await as("submitter", "mallory", { clientId: "submitter.mallory" })).connected, true);
  const first = await as("node", "pi-t", { clientId: "node.pi-t:1" });
  const second = await as("node", "pi-t", { clientId: "node.pi-t:1" });
  assert.equal(second.connected, true, "a node may replace its own stale connection");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(first.connected, false);
});

test("a persistent session's client id must carry the username", async () => {
  const cred = issueCredential(secret, "node", "pi-p");
  await assert.rejects(rawConnect(broker.url, { ...cred, clean: false, clientId: "pi-p-session" }), (e: Error & { code?: number }) => e.code === 2);
  await assert.rejects(rawConnect(broker.url, { ...cred, clean: false, clientId: "node.pi-pp" }), (e: Error & { code?: number }) => e.code === 2);
  for (const clientId of ["node.pi-p", "node.pi-p:daemon"]) {
    const ok = await as("node", "pi-p", { clean: false, clientId });
    assert.equal(ok.connected, true, clientId);
  }
});

test("an observer (the dashboard) reads the coordinator's fleet views and the dashboard feed, never a prompt; it cannot submit or command a node", async () => {
  const dash = await as("observer", "dashboard");
  const views = [topics.coordinatorStatus, topics.coordinatorStats, topics.evolutionLineage, topics.architectDecisions, topics.modelCatalog, topics.modelRollouts, topics.mindJobs, topics.dashboardEvents, topics.dashboardRecent, topics.dashboardFleet];
  for (const t of views) assert.equal(await deliveredTo(dash, observer, t), true, t);
  assert.equal(await canSubscribe(dash, "colony/v1/dashboard/#"), true);
  // Prompts travel on announces, awards and the submitters' folders; node topics carry bids and outputs.
  for (const f of [topics.announce, topics.nodeAward("pi-a"), topics.nodeAnnounce("pi-a"), topics.nodeDone("pi-a"), topics.nodeStatus("pi-a"), "colony/v1/nodes/+/status", "colony/v1/nodes/#", topics.nodeModelProgress("pi-a"), topics.allModelProgress, "colony/v1/models/#", topics.taskEvents("submitter.alice", "t1"), topics.taskResult("submitter.alice", "t1"), "colony/v1/submitters/#", topics.mindReply("r1"), "colony/v1/mind/#", "colony/v1/coordinator/+", "colony/#", "#", "+/v1/dashboard/#"]) {
    assert.equal(await canSubscribe(dash, f), false, f);
  }
  for (const t of [topics.submit("observer.dashboard"), topics.submit("submitter.alice"), topics.nodeCommand("pi-a"), topics.nodeAward("pi-a"), topics.mindDistil, topics.modelPush, topics.modelRollouts, topics.nodeModelProgress("pi-a"), topics.dashboardEvents, topics.coordinatorStats]) {
    assert.equal(await deliveredTo(observer, await as("observer", "dashboard"), t, { waitMs: 200 }), false, t);
  }
});
