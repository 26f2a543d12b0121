// Home Assistant MQTT discovery (coordinator/home-assistant/, docs/operations.md) against the
// embedded aedes broker with auth on: retained configs valid against HA's documented keys, states
// that follow a node going offline, a republish when HA says `online`, and the read-only observer
// credential HA connects with.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { silentLogger } from "../../common/logger.ts";
import { encode, topics } from "../../common/protocol.ts";
import { checkPublish, checkSubscribe, issueCredential, loadOrCreateFleetSecret, renderMosquittoFiles, writeMosquittoFiles } from "../../coordinator/auth.ts";
import { haTopics } from "../../coordinator/home-assistant/discovery.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { haSchemaFor } from "../fixtures/ha-discovery-schema.ts";
import { startScriptedNode } from "../fixtures/scripted-node.ts";
import { startMosquitto } from "../fixtures/mosquitto.ts";
import { needs } from "../fixtures/system-tools.ts";

interface Seen { topic: string; payload: string; retain: boolean; at: number }

async function until<T>(what: string | (() => string), fn: () => T | undefined, ms = 5000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
  }
  throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
}

function record(c: MqttClient): Seen[] {
  const seen: Seen[] = [];
  c.on("message", (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain, at: Date.now() }));
  return seen;
}

const last = (seen: Seen[], topic: string) => seen.filter((s) => s.topic === topic).at(-1);

test("the observer role: read-only, no task, no prompt (ACL and mosquitto rules)", () => {
  const o = { role: "observer" as const, name: "homeassistant" };
  for (const f of ["homeassistant/#", "colony/v1/ha/#", "colony/v1/ha/nodes/n1/state", "colony/v1/coordinator/status"]) assert.equal(checkSubscribe(o, f).allowed, true, f);
  for (const f of ["#", "+/v1/ha/#", "colony/#", "colony/v1/market/announce", "colony/v1/nodes/n1/award", "colony/v1/nodes/+/status", "colony/v1/submitters/#", "colony/v1/submitters/observer.homeassistant/#", "colony/v1/coordinator/+"]) {
    assert.equal(checkSubscribe(o, f).allowed, false, f);
  }
  assert.equal(checkPublish(o, "homeassistant/status", false).allowed, true);
  for (const t of ["colony/v1/submitters/observer.homeassistant/submit", "colony/v1/ha/nodes/n1/state", "colony/v1/coordinator/status"]) assert.equal(checkPublish(o, t, false).allowed, false, t);
  const { acl } = renderMosquittoFiles({ secret: Buffer.alloc(32, 7), nodes: [], submitters: [], observers: ["homeassistant"], submitterTopics: ["homeassistant/#"] }, { passwordFile: "/p", aclFile: "/a" });
  // The dashboard's views (docs/operations.md, "Dashboard") come between the status and the integration topics.
  assert.match(acl, /user observer\.homeassistant\ntopic read colony\/v1\/coordinator\/status\n(topic read colony\/v1\/[a-z/]+\n)*topic read colony\/v1\/ha\/#\ntopic read colony\/v1\/dashboard\/#\ntopic readwrite homeassistant\/#/);
});

test("the HA discovery schema fails a typo, a wrong unit and a mixed availability", async () => {
  const { coordinatorDiscovery, nodeDiscovery } = await import("../../coordinator/home-assistant/discovery.ts");
  const ctx = { prefix: "homeassistant", fleetId: "f", version: "0.1.0" };
  const all = [...coordinatorDiscovery(ctx), ...nodeDiscovery(ctx, "n:1", { online: true, agentsAwake: 0, agents: 0, tasksDone: 0, energyJ: 0, batteryPercent: 5, temperatureC: 20 })];
  for (const m of all) assert.ok(haSchemaFor(m.topic).safeParse(m.payload).success, m.topic);
  const energy = all.find((m) => m.topic.includes("_node_") && m.topic.endsWith("/energy/config"))!;
  const bad = (p: Record<string, unknown>) => assert.equal(haSchemaFor(energy.topic).safeParse(p).success, false, JSON.stringify(p));
  const { state_topic, ...noStateTopic } = energy.payload;
  bad({ ...noStateTopic, state_topc: state_topic });
  bad({ ...energy.payload, unit_of_measurement: "kJoule" });
  bad({ ...energy.payload, availability_topic: "colony/v1/coordinator/status" });
  bad({ ...energy.payload, device: { ...(energy.payload.device as object), viadevice: "x" } });
  assert.throws(() => haSchemaFor("homeassistant/sensor/bad.level/x/config"));
});

test("discovery: retained, valid HA configs; availability follows the node and the coordinator; republished on HA's birth", async (t) => {
  const h = await startHarness({ config: { homeAssistant: true, statsIntervalMs: 50, fleetId: "home" } });
  const node = await startScriptedNode({ url: h.url, nodeId: "pi.kitchen", energyJ: 36, device: { batteryPercent: 81, temperatureC: 47.5 }, ...(await h.nodeCred("pi.kitchen")) });
  const secret = await loadOrCreateFleetSecret(h.dataDir);
  const cred = issueCredential(secret, "observer", "homeassistant");
  const clients: MqttClient[] = [];
  const observer = async () => {
    const c = await connectMqtt({ url: h.url, username: cred.username, password: cred.password, logger: silentLogger });
    clients.push(c);
    return c;
  };
  t.after(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await node.stop();
    await h.close();
  });

  await until("the node registered", () => h.coordinator.registry.isOnline("pi.kitchen"));
  const nodeState = haTopics.nodeState("pi.kitchen");
  const ha = await observer();
  const seen = record(ha);
  await ha.subscribeAsync(["homeassistant/#", "colony/v1/ha/#", topics.coordinatorStatus], { qos: 1 });

  // A task, so the node's counters move.
  const s = await h.submitter();
  await s.subscribeAsync(topics.taskResult("submitter.tester", "ha-task-1"), { qos: 1 });
  const got = new Promise<string>((r) => s.once("message", (_t, p) => r(p.toString())));
  await s.publishAsync(topics.submit("submitter.tester"), encode({ id: "ha-task-1", prompt: "abc" }), { qos: 1 });
  assert.equal(JSON.parse(await got).status, "ok");
  const configsOf = (list: Seen[]) => list.filter((m) => m.topic.startsWith("homeassistant/") && m.topic.endsWith("/config"));
  await until("the node's battery and temperature sensors", () => configsOf(seen).some((m) => m.topic.endsWith("/temperature/config") && m.topic.includes("_node_")));
  await until(() => `the node state with its task (seen: ${seen.filter((m) => m.topic === nodeState).map((m) => m.payload).join(" ")})`, () => seen.some((m) => m.topic === nodeState && JSON.parse(m.payload).tasksDone === 1));
  await until("the coordinator state with its task", () => seen.some((m) => m.topic === haTopics.coordinatorState && JSON.parse(m.payload).tasksOk === 1));
  // (On a fresh subscription aedes may deliver the retained copy after a newer live message: HA
  // then shows the older value until the next change. What it gets when it subscribes is below.)

  // Home Assistant (re)connecting later gets every config and state, retained.
  const retainedReader = await observer();
  const retained = record(retainedReader);
  await retainedReader.subscribeAsync(["homeassistant/#", "colony/v1/ha/#", topics.coordinatorStatus], { qos: 1 });
  await until("the retained configs", () => configsOf(retained).length >= 12);
  await new Promise((r) => setTimeout(r, 100));
  const configs = configsOf(retained);
  assert.ok(configs.every((m) => m.retain), "configs are retained");
  for (const st of [nodeState, haTopics.coordinatorState]) {
    assert.ok(retained.some((m) => m.topic === st && m.retain), `${st} retained`);
  }
  const byTopic = new Map(configs.map((m) => [m.topic, JSON.parse(m.payload) as Record<string, unknown>]));
  assert.equal(byTopic.size, 6 + 6, [...byTopic.keys()].join("\n"));
  const uniqueIds = new Set<string>();
  for (const [topic, payload] of byTopic) {
    const r = haSchemaFor(topic).safeParse(payload);
    assert.ok(r.success, `${topic}: ${r.success ? "" : r.error.message}`);
    uniqueIds.add(payload.unique_id as string);
  }
  assert.equal(uniqueIds.size, byTopic.size, "unique ids are unique");

  // Every value_template reads fields its state JSON has; states are retained.
  const states = new Map<string, Record<string, unknown>>();
  for (const [topic, c] of byTopic) {
    const st = c.state_topic as string;
    const msg = last(retained, st);
    assert.ok(msg, `state for ${topic}`);
    const state = JSON.parse(msg.payload) as Record<string, unknown>;
    states.set(st, state);
    for (const [, field] of (c.value_template as string).matchAll(/value_json\.(\w+)/g)) assert.ok(field! in state, `${topic} reads ${field}, missing in ${msg.payload}`);
  }
  const kitchen = states.get(nodeState)!;
  assert.deepEqual(kitchen, { online: true, agentsAwake: 1, agents: 1, tasksDone: 1, energyJ: 36, batteryPercent: 81, temperatureC: 47.5 });
  // The retained copies are the newest states.
  assert.deepEqual(states.get(haTopics.coordinatorState), { nodesOnline: 1, agentsAwake: 1, tasksOk: 1, tasksFailed: 0, energyJ: 36 });
  const energy = [...byTopic].find(([tp]) => tp.includes("_node_") && tp.endsWith("/energy/config"))![1];
  assert.equal(energy.unit_of_measurement, "Wh"); // 36 J = 0.01 Wh by its template
  const nodeDevice = energy.device as { via_device: string; identifiers: string[] };
  const coordinatorDevice = [...byTopic].find(([tp]) => tp.endsWith("_coordinator/online/config"))![1].device as { identifiers: string[] };
  assert.equal(nodeDevice.via_device, coordinatorDevice.identifiers[0]);
  // Availability: the coordinator's status for all; the node's own presence for its sensors.
  for (const [topic, c] of byTopic) {
    const av = c.availability as { topic: string }[] | undefined;
    if (topic.endsWith("_coordinator/online/config")) continue; // reads the coordinator status itself
    assert.equal(av?.[0]?.topic, topics.coordinatorStatus, topic);
    if (topic.includes("_node_") && !topic.endsWith("/online/config")) assert.deepEqual(av?.map((a) => a.topic), [topics.coordinatorStatus, nodeState]);
  }
  assert.equal(JSON.parse(last(seen, topics.coordinatorStatus)!.payload).state, "online");

  // The node dies: its last will -> the registry -> online false in its retained state.
  await node.crash();
  await until("the node state to say offline", () => JSON.parse(last(seen, nodeState)!.payload).online === false);
  assert.equal(JSON.parse(last(seen, haTopics.coordinatorState)!.payload).nodesOnline, 0);
  const late = await observer();
  const lateSeen = record(late);
  await late.subscribeAsync(nodeState, { qos: 1 });
  await until("the retained offline state for a new subscriber", () => last(lateSeen, nodeState) && JSON.parse(last(lateSeen, nodeState)!.payload).online === false);

  // HA restarts and says so: every config again.
  const before = Date.now();
  await ha.publishAsync("homeassistant/status", "online", { qos: 1 });
  await until("every config republished", () => new Set(configsOf(seen).filter((m) => m.at >= before).map((m) => m.topic)).size === byTopic.size);

  // The coordinator stops: its retained status says offline, so every entity is unavailable.
  await h.coordinator.close();
  await until("the coordinator's offline status", () => JSON.parse(last(seen, topics.coordinatorStatus)!.payload).state === "offline");
});

test("the Home Assistant credential reads the integration topics but cannot submit or read prompts", async (t) => {
  const h = await startHarness({ config: { homeAssistant: true, statsIntervalMs: 50 } });
  const secret = await loadOrCreateFleetSecret(h.dataDir);
  const cred = issueCredential(secret, "observer", "homeassistant");
  const clients: MqttClient[] = [];
  t.after(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await h.close();
  });
  const connect = async () => {
    const c = await connectMqtt({ url: h.url, username: cred.username, password: cred.password, logger: silentLogger, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 });
    clients.push(c);
    return c;
  };
  const ha = await connect();
  await ha.subscribeAsync(["homeassistant/#", "colony/v1/ha/#", topics.coordinatorStatus], { qos: 1 });
  // Prompts travel in announces, awards and the submitters' folders: all refused (SUBACK 0x80).
  for (const f of [topics.announce, topics.nodeAward("n1"), "colony/v1/nodes/#", "colony/v1/submitters/#", topics.submitterRoot("observer.homeassistant") + "/#", "#"]) {
    await assert.rejects(ha.subscribeAsync(f, { qos: 1 }), Error, f);
  }
  // A submit is refused: the broker drops the connection (MQTT 3.1.1 has no negative PUBACK) and no task is accepted.
  const sub = await connect();
  const closed = new Promise<void>((r) => sub.once("close", () => r()));
  sub.publish(topics.submit("observer.homeassistant"), encode({ id: "ha-submit-1", prompt: "hi" }), { qos: 1 });
  await closed;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(h.coordinator.counters.get("tasks.accepted"), 0);
  assert.ok(h.coordinator.counters.get("auth.refused.publish") >= 1);
});

test("docs/node-red-flow.json: its function, topics and client id work with a submitter credential against the real broker", async (t) => {
  const { readFileSync } = await import("node:fs");
  const flow = JSON.parse(readFileSync(new URL("../../docs/node-red-flow.json", import.meta.url), "utf8")) as Record<string, string>[];
  const byType = (type: string) => flow.find((n) => n.type === type)!;
  const h = await startHarness();
  const node = await startScriptedNode({ url: h.url, nodeId: "nr-node", ...(await h.nodeCred("nr-node")) });
  const cred = issueCredential(await loadOrCreateFleetSecret(h.dataDir), "submitter", "nodered");
  await until("the node registered", () => h.coordinator.registry.isOnline("nr-node"));
  const c = await connectMqtt({ url: h.url, username: cred.username, password: cred.password, clientId: byType("mqtt-broker").clientid, logger: silentLogger });
  t.after(async () => {
    await c.endAsync(true).catch(() => {});
    await node.stop();
    await h.close();
  });
  await c.subscribeAsync(byType("mqtt in").topic!, { qos: 1 });
  const result = new Promise<{ id: string; status: string; output: string }>((r) => c.once("message", (_t, p) => r(JSON.parse(p.toString()))));
  // Run the function node's body as Node-RED would, on the inject node's payload.
  const msg = new Function("msg", byType("function").func!)({ payload: byType("inject").payload }) as { topic: string; payload: { id: string } };
  assert.equal(msg.topic, byType("mqtt out").topic);
  await c.publishAsync(byType("mqtt out").topic!, JSON.stringify(msg.payload), { qos: 1 });
  const r = await result;
  assert.equal(r.id, msg.payload.id);
  assert.equal(r.status, "ok");
  assert.equal(r.output, "2+3"); // the scripted node answers in upper case
});

test("on mosquitto with the generated files: the observer gets the discovery and the states, and no announce, prompt or result", { skip: needs("mosquitto") }, async (t) => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const os = await import("node:os");
  const path = await import("node:path");
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "colony-ha-mosq-"));
  const secret = await loadOrCreateFleetSecret(dataDir);
  const files = await writeMosquittoFiles(path.join(dataDir, "mosq"), { secret, nodes: ["mq-n1"], submitters: ["tester"], observers: ["homeassistant"], submitterTopics: ["homeassistant/#"] });
  const mosq = await startMosquitto({ passwordFile: files.passwordFile, aclFile: files.aclFile });
  const h = await startHarness({ broker: mosq.url, dataDir, config: { homeAssistant: true, statsIntervalMs: 50 } });
  const node = await startScriptedNode({ url: mosq.url, nodeId: "mq-n1", ...issueCredential(secret, "node", "mq-n1") });
  const cred = issueCredential(secret, "observer", "homeassistant");
  const ha = await connectMqtt({ url: mosq.url, username: cred.username, password: cred.password, logger: silentLogger });
  t.after(async () => {
    await ha.endAsync(true).catch(() => {});
    await node.stop();
    await h.close();
    await mosq.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const seen = record(ha);
  // mosquitto grants a forbidden subscription and then delivers nothing on it.
  await ha.subscribeAsync(["homeassistant/#", "colony/v1/ha/#", topics.coordinatorStatus, topics.announce, "colony/v1/submitters/#", "colony/v1/nodes/#"], { qos: 1 });
  await until("the node registered", () => h.coordinator.registry.isOnline("mq-n1"));
  const s = await h.submitter();
  await s.subscribeAsync(topics.taskResult("submitter.tester", "mq-task-1"), { qos: 1 });
  const got = new Promise<string>((r) => s.once("message", (_t, p) => r(p.toString())));
  await s.publishAsync(topics.submit("submitter.tester"), encode({ id: "mq-task-1", prompt: "secret prompt" }), { qos: 1 });
  assert.equal(JSON.parse(await got).status, "ok");
  await until("the node's state with its task", () => seen.some((m) => m.topic === haTopics.nodeState("mq-n1") && JSON.parse(m.payload).tasksDone === 1));
  assert.ok(seen.filter((m) => m.topic.endsWith("/config")).length >= 6 + 4);
  const leaked = seen.filter((m) => !m.topic.startsWith("homeassistant/") && !m.topic.startsWith("colony/v1/ha/") && m.topic !== topics.coordinatorStatus);
  assert.deepEqual(leaked.map((m) => m.topic), []);
  assert.ok(!seen.some((m) => m.payload.includes("secret prompt")));
});
