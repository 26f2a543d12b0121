/**
 * Simulated nodes for bench/auction.ts, each its own MQTT client, many per process. They speak the
 * real protocol v1 as a node daemon does (node/link.ts): a credential issued by the fleet secret
 * with the client id it allows, a retained status with a last will, the daemon's subscriptions
 * (announce, coordinator status, own award/cancel/verdict), a heartbeat every 5 s, and on the
 * channels' QoS a bid for every announce (QoS 0), then ack and done (QoS 1) for every award, with
 * zero work time and no validation. The same code serves the Colony side and the bare baseline:
 * only the broker URL differs.
 * Usage: node --import tsx bench/_sim-nodes.ts '{"url":..., "nodes":[{"id","username","password","skill"?}]}'; prints "ready".
 */
import mqtt, { type MqttClient } from "mqtt";
import { channels, encode, topics } from "../common/protocol.ts";

interface SimNode {
  id: string;
  username: string;
  password: string;
  /** The agent's one skill; none: a generalist, eligible for every task. */
  skill?: string;
}
const { url, nodes } = JSON.parse(process.argv[2]!) as { url: string; nodes: SimNode[] };
const clients: MqttClient[] = [];

function simNode({ id: nodeId, username, password, skill }: SimNode): Promise<void> {
  const agentId = `${nodeId}.a`;
  const will = { topic: topics.nodeStatus(nodeId), payload: Buffer.from(encode({ state: "offline", nodeId })), qos: 1 as const, retain: true };
  // The broker accepts a client id `{username}` or `{username}:{suffix}` (docs/security.md).
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `${username}:sim`, username, password, will });
  clients.push(c);
  const status = () => encode({ state: "online", nodeId, protocol: 1, deviceClass: "sim", slots: 1, agents: [{ agentId, skills: skill ? [skill] : [], model: "sim", state: "awake" }], models: ["sim"], at: Date.now() });
  let connected = false;
  c.on("connect", () => {
    (c.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    // Like node/link.ts, the retained status again after every reconnect: a restarted broker lost it
    // (the chaos suite's reconnect storm, test/chaos/reconnect-storm.test.ts). mqtt.js resubscribes.
    if (connected) c.publish(topics.nodeStatus(nodeId), status(), { qos: 1, retain: true });
    connected = true;
  });
  c.on("message", (topic, payload) => {
    if (topic.startsWith(topics.announce)) {
      const m = JSON.parse(payload.toString());
      c.publish(topics.nodeBid(nodeId), encode({ type: "bid", auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId, estimate: { latencyMs: 10 + (nodeId.length % 7), energyJ: 1, accuracy: 0.8 } }), { qos: channels.nodeBid.qos });
    } else if (topic === topics.nodeAward(nodeId)) {
      const m = JSON.parse(payload.toString());
      const base = { auctionId: m.auctionId, taskId: m.taskId, nodeId, agentId };
      c.publish(topics.nodeAck(nodeId), encode({ ...base, accepted: true }), { qos: channels.nodeAck.qos });
      c.publish(topics.nodeDone(nodeId), encode({ ...base, status: "ok", output: "ok" }), { qos: channels.nodeDone.qos });
    } // verdicts, cancels and the coordinator's status arrive as they do at a daemon, and are ignored.
  });
  // Like a node daemon: tasks without a skill, and its skill's (a generalist: every skill's).
  const subs = [topics.announce, topics.skillAnnounce(skill ?? "+"), topics.coordinatorStatus, topics.nodeAward(nodeId), topics.nodeCancel(nodeId), topics.nodeVerdict(nodeId)];
  return new Promise((resolve, reject) => {
    c.once("error", reject);
    c.once("connect", () =>
      c.subscribe(subs, { qos: 1 }, (err, granted) => {
        if (err || granted?.some((g) => g.qos === 128)) return reject(err ?? new Error(`subscription refused for ${username}`));
        c.publish(topics.nodeStatus(nodeId), status(), { qos: 1, retain: true }, () => resolve());
        // Heartbeats like a real node daemon (every 5 s), or the registry takes the node offline after 30 s.
        const hb = setInterval(() => c.publish(topics.nodeHeartbeat(nodeId), encode({ nodeId, at: Date.now(), busy: 0, queued: 0, agents: [{ agentId, state: "awake" }] }), { qos: 0 }), 5000);
        hb.unref();
      }),
    );
  });
}

await Promise.all(nodes.map(simNode));
process.stdout.write("ready\n");
const shutdown = () => {
  for (const c of clients) c.end(true);
  process.exit(0);
};
process.on("SIGTERM", shutdown);
// stdin is a pipe from the bench: it closes when the bench exits, however it exits.
process.stdin.on("close", shutdown).resume();
