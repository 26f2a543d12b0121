/**
 * Cost of fleet authentication on the embedded aedes broker: credential checks per second, connect
 * latency with authentication, and QoS 1 throughput node -> coordinator with the ACL hooks against
 * the same broker with no hooks (aedes' defaults allow everything), and the publish hook's own cost
 * measured in-process (the broker figures are noisy on a shared machine; this one is not).
 *
 *   npm run bench -- auth [--messages 20000] [--connects 50] [--rounds 3]
 *
 * Last line: one-line JSON summary.
 */
import net from "node:net";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { Aedes } from "aedes";
import mqtt, { type MqttClient } from "mqtt";
import { createAedesAuthHooks, issueCredential, verifyCredential } from "../coordinator/auth.ts";
import { silentLogger } from "../common/logger.ts";

const { values } = parseArgs({ options: { messages: { type: "string", default: "20000" }, connects: { type: "string", default: "50" }, rounds: { type: "string", default: "3" } } });
const MESSAGES = Number(values.messages);
const CONNECTS = Number(values.connects);
const ROUNDS = Number(values.rounds);
const secret = randomBytes(32);

async function startBroker(withAuth: boolean) {
  const hooks = withAuth ? createAedesAuthHooks({ secret, logger: silentLogger }) : undefined;
  const broker = await Aedes.createBroker(hooks ? { authenticate: hooks.authenticate, authorizePublish: hooks.authorizePublish, authorizeSubscribe: hooks.authorizeSubscribe } : {});
  const server = net.createServer(broker.handle).listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url,
    close: async () => {
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function connect(url: string, cred?: { username: string; password: string }): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, ...(cred ?? {}) });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// 1. Credential checks (HMAC-SHA256 + constant-time compare), in-process.
const cred = issueCredential(secret, "node", "bench-node");
let t0 = process.hrtime.bigint();
const VERIFY = 100_000;
for (let i = 0; i < VERIFY; i++) if (!verifyCredential(secret, cred.username, cred.password)) throw new Error("verify failed");
const verifyUs = Number(process.hrtime.bigint() - t0) / 1e3 / VERIFY;
console.error(`verifyCredential: ${verifyUs.toFixed(2)} us per check`);

// 1b. The publish and subscribe hooks in-process, on a client that authenticated as a node:
// the per-message price of the ACL, without broker or network noise.
const hooks = createAedesAuthHooks({ secret, logger: silentLogger });
const fakeClient = { id: "node.bench-node:1", clean: true } as unknown as Parameters<typeof hooks.authenticate>[0];
hooks.authenticate(fakeClient, cred.username, Buffer.from(cred.password), (err) => {
  if (err) throw err;
});
const packet = { cmd: "publish", topic: "colony/v1/nodes/bench-node/heartbeat", payload: Buffer.alloc(16), qos: 1, retain: false, dup: false } as unknown as Parameters<typeof hooks.authorizePublish>[1];
const HOOK_CALLS = 200_000;
t0 = process.hrtime.bigint();
for (let i = 0; i < HOOK_CALLS; i++) hooks.authorizePublish(fakeClient, packet, (err) => {
  if (err) throw err;
});
const publishHookUs = Number(process.hrtime.bigint() - t0) / 1e3 / HOOK_CALLS;
console.error(`authorizePublish hook: ${publishHookUs.toFixed(3)} us per message`);

// 2 + 3. Connect latency and QoS 1 throughput, alternating with and without auth.
const results: Record<string, { connectMs: number[]; msgsPerS: number[] }> = { auth: { connectMs: [], msgsPerS: [] }, open: { connectMs: [], msgsPerS: [] } };
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of ["open", "auth"] as const) {
    const b = await startBroker(mode === "auth");
    const nodeCred = mode === "auth" ? cred : undefined;
    const coordCred = mode === "auth" ? issueCredential(secret, "coordinator") : undefined;
    const connectMs: number[] = [];
    for (let i = 0; i < CONNECTS; i++) {
      const s = performance.now();
      const c = await connect(b.url, nodeCred);
      connectMs.push(performance.now() - s);
      await c.endAsync();
    }
    const coordinator = await connect(b.url, coordCred);
    const node = await connect(b.url, nodeCred);
    const topic = "colony/v1/nodes/bench-node/heartbeat";
    await coordinator.subscribeAsync(topic, { qos: 1 });
    let received = 0;
    const all = new Promise<void>((resolve) => coordinator.on("message", () => ++received === MESSAGES && resolve()));
    const payload = Buffer.alloc(16, 1);
    const start = performance.now();
    // Publish in windows so the client's in-flight queue stays bounded, like a real node.
    for (let sent = 0; sent < MESSAGES; ) {
      const batch = Math.min(500, MESSAGES - sent);
      await Promise.all(Array.from({ length: batch }, () => node.publishAsync(topic, payload, { qos: 1 })));
      sent += batch;
    }
    await all;
    const msgsPerS = MESSAGES / ((performance.now() - start) / 1000);
    results[mode]!.connectMs.push(median(connectMs));
    results[mode]!.msgsPerS.push(msgsPerS);
    console.error(`round ${round + 1} ${mode}: connect median ${median(connectMs).toFixed(2)} ms, ${Math.round(msgsPerS)} msgs/s QoS 1`);
    await Promise.all([coordinator.endAsync(), node.endAsync()]);
    await b.close();
  }
}
const summary = {
  bench: "auth",
  verifyUs: Number(verifyUs.toFixed(2)),
  publishHookUs: Number(publishHookUs.toFixed(3)),
  connectMsOpen: Number(median(results.open!.connectMs).toFixed(2)),
  connectMsAuth: Number(median(results.auth!.connectMs).toFixed(2)),
  msgsPerSOpen: Math.round(median(results.open!.msgsPerS)),
  msgsPerSAuth: Math.round(median(results.auth!.msgsPerS)),
  aclThroughputCostPct: Number((100 * (1 - median(results.auth!.msgsPerS) / median(results.open!.msgsPerS))).toFixed(1)),
  messages: MESSAGES,
  rounds: ROUNDS,
};
console.log(JSON.stringify(summary));
