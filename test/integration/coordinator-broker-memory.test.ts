// The coordinator's in-memory link to its embedded aedes broker: real MQTT packets through
// EmbeddedBroker.connectInMemory, with the same authentication and ACL hooks as TCP clients.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createAedesAuthHooks, issueCredential } from "../../coordinator/auth.ts";
import { EmbeddedBroker } from "../../coordinator/broker.ts";
import { connectMqtt, type MqttClient } from "../../common/mqtt-connect.ts";
import { ColonyError } from "../../common/errors.ts";
import { silentLogger } from "../../common/logger.ts";
import { topics } from "../../common/protocol.ts";

const nextMessage = (c: MqttClient) => new Promise<string>((resolve) => c.once("message", (_t, p) => resolve(String(p))));

async function withBroker(fn: (b: EmbeddedBroker, secret: Buffer) => Promise<void>): Promise<void> {
  const secret = randomBytes(32);
  const hooks = createAedesAuthHooks({ secret, insecure: false, logger: silentLogger });
  const broker = new EmbeddedBroker({ host: "127.0.0.1", port: 0, hooks, logger: silentLogger });
  await broker.start();
  try {
    await fn(broker, secret);
  } finally {
    await broker.close();
  }
}

test("an in-memory client and a TCP client exchange messages through the embedded broker", async () => {
  await withBroker(async (broker, secret) => {
    const coord = await connectMqtt({ url: broker.localUrl, ...issueCredential(secret, "coordinator"), logger: silentLogger, stream: () => broker.connectInMemory() });
    const node = await connectMqtt({ url: broker.localUrl, ...issueCredential(secret, "node", "pi-a"), logger: silentLogger });
    try {
      await coord.subscribeAsync(topics.nodeBid("pi-a"), { qos: 1 });
      await node.subscribeAsync(topics.announce, { qos: 1 });
      const atNode = nextMessage(node);
      await coord.publishAsync(topics.announce, "to-node", { qos: 1 });
      assert.equal(await atNode, "to-node");
      const atCoord = nextMessage(coord);
      await node.publishAsync(topics.nodeBid("pi-a"), "to-coordinator", { qos: 1 });
      assert.equal(await atCoord, "to-coordinator");
    } finally {
      await node.endAsync();
      await coord.endAsync();
    }
  });
});

test("a dropped in-memory connection reconnects through a new stream pair and works again", async () => {
  await withBroker(async (broker, secret) => {
    let opened = 0;
    const coord = await connectMqtt({
      url: broker.localUrl, ...issueCredential(secret, "coordinator"), logger: silentLogger, reconnectMinMs: 50,
      stream: () => (opened++, broker.connectInMemory()),
    });
    try {
      await coord.subscribeAsync(topics.coordinatorStatus, { qos: 1 });
      const reconnected = new Promise<void>((resolve) => coord.once("connect", () => resolve()));
      coord.stream.destroy(); // as if the link broke
      await reconnected;
      assert.equal(opened, 2);
      const got = nextMessage(coord); // the subscription was restored on the new connection
      await coord.publishAsync(topics.coordinatorStatus, "again", { qos: 1 });
      assert.equal(await got, "again");
    } finally {
      await coord.endAsync();
    }
  });
});

test("the in-memory link goes through authentication: a wrong credential is refused", async () => {
  await withBroker(async (broker) => {
    const forged = issueCredential(randomBytes(32), "coordinator");
    await assert.rejects(
      connectMqtt({ url: broker.localUrl, ...forged, logger: silentLogger, connectTimeoutMs: 2000, stream: () => broker.connectInMemory() }),
      (err: unknown) => err instanceof ColonyError && err.code === "MQTT_AUTH_REFUSED",
    );
  });
});

test("after the broker closed, a new in-memory connection closes at once instead of throwing", async () => {
  const broker = new EmbeddedBroker({ host: "127.0.0.1", port: 0, logger: silentLogger });
  await broker.start();
  await broker.close();
  const end = broker.connectInMemory();
  if (!end.destroyed) await once(end, "close");
  assert.ok(end.destroyed);
});
