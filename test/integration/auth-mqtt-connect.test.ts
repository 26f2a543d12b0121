// connectMqtt against a real aedes broker: first-connect outcomes, waiting for a late broker,
// and reconnecting with exponential backoff after the broker restarts.
import { test } from "node:test";
import { freePort } from "../fixtures/colony-process.ts";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeClient, connectMqtt } from "../../common/mqtt-connect.ts";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { issueCredential } from "../../coordinator/auth.ts";
import { startAuthBroker, endAll } from "../fixtures/auth-broker.ts";

const code = (c: string) => (err: unknown) => err instanceof ColonyError && err.code === c;

test("no broker: MQTT_CONNECT_TIMEOUT after connectTimeoutMs, nothing left running", async () => {
  const port = await freePort();
  const t0 = Date.now();
  await assert.rejects(connectMqtt({ url: `mqtt://127.0.0.1:${port}`, logger: silentLogger, connectTimeoutMs: 400, reconnectMinMs: 50 }), code("MQTT_CONNECT_TIMEOUT"));
  const took = Date.now() - t0;
  assert.ok(took >= 350 && took < 3000, `took ${took} ms`);
});

test("an unsupported URL fails at once with MQTT_CONNECT_FAILED", async () => {
  await assert.rejects(connectMqtt({ url: "gopher://127.0.0.1:1", logger: silentLogger, connectTimeoutMs: 1000 }), code("MQTT_CONNECT_FAILED"));
});

test("a broker that starts late is waited for", async () => {
  const port = await freePort();
  const pending = connectMqtt({ url: `mqtt://127.0.0.1:${port}`, logger: silentLogger, connectTimeoutMs: 5000, reconnectMinMs: 50, reconnectMaxMs: 100 });
  await new Promise((r) => setTimeout(r, 300));
  const broker = await startAuthBroker({ insecure: true, port, logger: silentLogger });
  const client = await pending;
  try {
    assert.equal(client.connected, true);
    assert.equal(client.options.protocolVersion, 4);
  } finally {
    await endAll(client);
    await broker.close();
  }
});

test("after a broker restart the client reconnects with growing delays and gets its subscriptions back", async () => {
  const secret = randomBytes(32);
  let broker = await startAuthBroker({ secret });
  const port = broker.port;
  const cred = issueCredential(secret, "node", "pi-r");
  const client = await connectMqtt({ url: broker.url, ...cred, logger: silentLogger, reconnectMinMs: 100, reconnectMaxMs: 2000 });
  const coordinator = await connectMqtt({ url: broker.url, ...issueCredential(secret, "coordinator"), logger: silentLogger, reconnectMinMs: 50, reconnectMaxMs: 100 });
  try {
    await client.subscribeAsync("colony/v1/nodes/pi-r/award", { qos: 1 });
    const attempts: number[] = [];
    client.on("close", () => attempts.push(Date.now()));
    await broker.close();
    const downFor = 1600;
    await new Promise((r) => setTimeout(r, downFor));
    const during = attempts.length;
    broker = await startAuthBroker({ secret, port });
    await new Promise<void>((resolve) => (client.connected ? resolve() : client.once("connect", () => resolve())));
    // Fixed 100 ms retries would make ~16 attempts in 1.6 s; doubling from 100 ms makes ~4-5.
    assert.ok(during >= 2 && during <= 7, `${during} connection attempts while the broker was down`);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    assert.ok(gaps.at(-1)! > gaps[0]!, `delays grow: ${gaps.join(", ")}`);
    // mqtt.js resubscribes after the reconnect: an award reaches the node again.
    await new Promise<void>((resolve) => (coordinator.connected ? resolve() : coordinator.once("connect", () => resolve())));
    const got = new Promise<string>((resolve) => client.on("message", (_t, p) => resolve(p.toString())));
    for (let i = 0; i < 50; i++) {
      coordinator.publish("colony/v1/nodes/pi-r/award", "again", { qos: 1 });
      const r = await Promise.race([got, new Promise((r) => setTimeout(() => r(undefined), 40))]);
      if (r) break;
    }
    assert.equal(await got, "again");
  } finally {
    await endAll(client, coordinator);
    await broker.close();
  }
});

test("closeClient: last words reach a live broker; with the broker gone it still returns within its timeout", async () => {
  const secret = randomBytes(32);
  const broker = await startAuthBroker({ secret });
  const observer = await connectMqtt({ url: broker.url, ...issueCredential(secret, "coordinator"), logger: silentLogger });
  const got: string[] = [];
  observer.on("message", (_t, p) => got.push(p.toString()));
  await observer.subscribeAsync("colony/v1/nodes/pi-c/status", { qos: 1 });
  const a = await connectMqtt({ url: broker.url, ...issueCredential(secret, "node", "pi-c"), logger: silentLogger });
  await closeClient(a, { topic: "colony/v1/nodes/pi-c/status", payload: '{"state":"offline","nodeId":"pi-c"}', retain: true });
  for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ['{"state":"offline","nodeId":"pi-c"}']);
  assert.ok(a.disconnected);
  // The broker dies; a QoS 1 publish would wait for its PUBACK forever.
  const b = await connectMqtt({ url: broker.url, ...issueCredential(secret, "node", "pi-d"), logger: silentLogger, reconnectMinMs: 50 });
  await endAll(observer);
  await broker.close();
  const t0 = Date.now();
  await closeClient(b, { topic: "colony/v1/nodes/pi-d/status", payload: "{}", retain: true }, 500);
  assert.ok(Date.now() - t0 < 2000, `closeClient took ${Date.now() - t0} ms`);
  assert.ok(b.disconnected);
});
