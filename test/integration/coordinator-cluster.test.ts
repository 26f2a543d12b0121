// The market suite on a broker cluster (docs/scale.md): the coordinator's embedded aedes joins a
// cluster through Redis (`brokerRedis`), and every node and submitter connects to ANOTHER member, an
// aedes started as `colony broker` starts it (same fleet auth hooks, same Redis): every announce,
// bid, award and result crosses members. Needs Debian's redis-server (CI installs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { silentLogger } from "../../common/logger.ts";
import { connectMqtt } from "../../common/mqtt-connect.ts";
import { topics } from "../../common/protocol.ts";
import { createAedesAuthHooks, FLEET_SECRET_FILE } from "../../coordinator/auth.ts";
import { EmbeddedBroker } from "../../coordinator/broker.ts";
import { ColonyProcesses, runColony } from "../fixtures/colony-process.ts";
import { startHarness } from "../fixtures/coordinator-harness.ts";
import { marketSuite } from "../fixtures/market-suite.ts";
import { startRedis } from "../fixtures/redis.ts";
import { needs } from "../fixtures/system-tools.ts";

marketSuite("cluster", async (plan) => {
  const redis = await startRedis();
  const member = new EmbeddedBroker({ host: "127.0.0.1", port: 0, hooks: createAedesAuthHooks({ secret: plan.secret, insecure: false, logger: silentLogger }), redis: redis.url, logger: silentLogger });
  await member.start();
  return {
    config: { brokerRedis: redis.url },
    clientUrl: member.localUrl,
    close: async () => {
      await member.close();
      await redis.close();
    },
  };
}, { skip: needs("redis-server") });

// `colony broker` as a user runs it: refuses a bad Redis URL and a missing fleet secret with their
// codes; started with the coordinator's copied secret, it lets a node credential in and carries a
// message from the coordinator's member to a subscriber on it, and refuses a bad password.
test("colony broker: codes for a bad Redis URL and a missing secret; a member that authenticates and carries the cluster's messages", { skip: needs("redis-server") }, async (t) => {
  const redis = await startRedis();
  const procs = new ColonyProcesses();
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-broker-cli-"));
  const h = await startHarness({ config: { brokerRedis: redis.url } });
  t.after(async () => {
    procs.killAll();
    await h.close();
    await redis.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const bad = await runColony(["broker", "--redis", "http://nope", "--data-dir", dir]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /CONFIG_INVALID/);
  const missing = await runColony(["broker", "--redis", redis.url, "--data-dir", path.join(dir, "empty")]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /FLEET_SECRET_MISSING/);

  const member = path.join(dir, "member");
  mkdirSync(member, { mode: 0o700 });
  copyFileSync(path.join(h.dataDir, FLEET_SECRET_FILE), path.join(member, FLEET_SECRET_FILE));
  chmodSync(path.join(member, FLEET_SECRET_FILE), 0o600);
  const { ready } = await procs.startReady<{ localUrl: string }>(["broker", "--redis", redis.url, "--port", "0", "--host", "127.0.0.1", "--data-dir", member]);
  const node = await connectMqtt({ url: ready.localUrl, ...(await h.nodeCred("far-node")), logger: silentLogger });
  t.after(() => node.endAsync(true));
  await node.subscribeAsync(topics.nodeAward("far-node"), { qos: 1 });
  const got = new Promise<string>((r) => node.once("message", (_t, p) => r(p.toString())));
  const coord = await h.superClient(); // on the coordinator's own member
  await coord.publishAsync(topics.nodeAward("far-node"), "across members", { qos: 1 });
  assert.equal(await got, "across members");
  await assert.rejects(connectMqtt({ url: ready.localUrl, username: "node.far-node", password: "wrong", logger: silentLogger, connectTimeoutMs: 3000, reconnectMinMs: 100 }));
});
