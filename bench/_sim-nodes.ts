/**
 * Simulated nodes for bench/auction.ts, each its own MQTT client, many per process.
 * Mode "colony": speaks the real protocol (status, bid, ack, done) with zero work time.
 * Mode "bare": the same message pattern on bench/ topics with no Colony schema or logic.
 * Usage: node --import tsx bench/_sim-nodes.ts '{"url":..., "mode":..., "ids":[...]}'; prints "ready".
 */
import mqtt, { type MqttClient } from "mqtt";
import { encode, topics } from "../common/protocol.ts";

const { url, mode, ids } = JSON.parse(process.argv[2]!) as { url: string; mode: "colony" | "bare"; ids: string[] };
const clients: MqttClient[] = [];

function colonyNode(nodeId: string): Promise<void> {
  const agentId = `${nodeId}.a`;
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `sim-${nodeId}`, will: { topic: topics.nodeStatus(nodeId), payload: Buffer.from(encode({ state: "offline", nodeId })), qos: 1, retain: true } });
  clients.push(c);
  c.on("connect", () => (c.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true));
  c.on("message", (topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (topic === topics.announce) {
      c.publish(topics.nodeBid(nodeId), encode({ type: "bid", auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId, estimate: { latencyMs: 10 + (nodeId.length % 7), energyJ: 1, accuracy: 0.8 } }), { qos: 1 });
    } else {
      const base = { auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId };
      c.publish(topics.nodeAck(nodeId), encode({ ...base, accepted: true }), { qos: 1 });
      c.publish(topics.nodeDone(nodeId), encode({ ...base, status: "ok", output: "ok" }), { qos: 1 });
    }
  });
  return new Promise((resolve) =>
    c.once("connect", () =>
      c.subscribe([topics.announce, topics.nodeAward(nodeId)], { qos: 1 }, () => {
        const status = { state: "online", nodeId, protocol: 1, deviceClass: "sim", slots: 1, agents: [{ agentId, skills: [], model: "sim", state: "awake" }], models: ["sim"], at: Date.now() };
        c.publish(topics.nodeStatus(nodeId), encode(status), { qos: 1, retain: true }, () => resolve());
        // Heartbeats like a real node daemon (every 5 s), or the registry takes the node offline after 30 s.
        const hb = setInterval(() => c.publish(topics.nodeHeartbeat(nodeId), encode({ nodeId, at: Date.now(), busy: 0, queued: 0, agents: [{ agentId, state: "awake" }] }), { qos: 0 }), 5000);
        hb.unref();
      }),
    ),
  );
}

function bareNode(nodeId: string): Promise<void> {
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `bare-${nodeId}` });
  clients.push(c);
  c.on("connect", () => (c.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true));
  c.on("message", (topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (topic === "bench/announce") {
      c.publish(`bench/nodes/${nodeId}/bid`, JSON.stringify({ type: "bid", auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId: `${nodeId}.a`, estimate: { latencyMs: 10, energyJ: 1, accuracy: 0.8 } }), { qos: 1 });
    } else {
      const base = { auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId: `${nodeId}.a` };
      c.publish(`bench/nodes/${nodeId}/ack`, JSON.stringify({ ...base, accepted: true }), { qos: 1 });
      c.publish(`bench/nodes/${nodeId}/done`, JSON.stringify({ ...base, status: "ok", output: "ok" }), { qos: 1 });
    }
  });
  return new Promise((resolve) => c.once("connect", () => c.subscribe(["bench/announce", `bench/nodes/${nodeId}/award`], { qos: 1 }, () => resolve())));
}

await Promise.all(ids.map((id) => (mode === "colony" ? colonyNode(id) : bareNode(id))));
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  for (const c of clients) c.end(true);
  process.exit(0);
});
