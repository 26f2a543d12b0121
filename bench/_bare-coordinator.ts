/**
 * The bare baseline of bench/auction.ts: a minimal hand-written auction coordinator that sends and
 * receives, per task, the same MQTT messages as Colony's coordinator (same topics, QoS, retain
 * flags and payload shapes; message pattern in bench/auction.ts) with no Colony logic: no schema
 * validation, no task store, no registry, no scoring (the first bidder wins), no reputation.
 * It connects like Colony's coordinator (coordinator/link.ts): the same helper, a coordinator
 * credential from the fleet secret, a last will, and the in-memory stream when Colony's link uses it.
 */
import type { Duplex } from "node:stream";
import { silentLogger } from "../common/logger.ts";
import { connectMqtt, type MqttClient } from "../common/mqtt-connect.ts";
import { channels, encode, parseNodeTopic, parseSubmitterTopic, topics } from "../common/protocol.ts";
import { SUBSCRIPTIONS } from "../coordinator/inbound.ts";

interface Open {
  user: string;
  id: string;
  auctionId: string;
  prompt: string;
  maxTokens: number;
  acceptedAt: number;
  deadlineAt: number;
  bids: number;
  first?: { nodeId: string; agentId: string; estimate: unknown };
  awarded: boolean;
  window: NodeJS.Timeout;
}

const BID_WINDOW_MS = 2000; // Colony's bidWindowMs in bench/auction.ts

/** `nodes`: how many nodes answer each announce (the eligible ones); `skill`: the tasks' skill, announced on its topic as Colony does. */
export async function startBareCoordinator(o: { url: string; credential: { username: string; password: string }; stream?: (() => Duplex) | undefined; nodes: number; skill?: string | undefined }): Promise<MqttClient> {
  const c = await connectMqtt({
    url: o.url, ...o.credential, logger: silentLogger, stream: o.stream,
    will: { topic: topics.coordinatorStatus, payload: encode({ state: "offline" }), qos: 1, retain: true },
  });
  (c.stream as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  const open = new Map<string, Open>(); // by auction id
  let seq = 0;
  const event = (t: Open, ev: Record<string, unknown>) => c.publish(topics.taskEvents(t.user, t.id), encode({ ...ev, id: t.id, at: Date.now() }), { qos: 1 });

  const close = (t: Open) => {
    clearTimeout(t.window);
    const w = t.first;
    if (t.awarded || !w) return; // (no bid at all cannot happen here: every node bids)
    t.awarded = true;
    c.publish(topics.nodeAward(w.nodeId), encode({ auctionId: t.auctionId, taskId: t.id, attempt: 1, agentId: w.agentId, prompt: t.prompt, maxTokens: t.maxTokens, deadlineAt: t.deadlineAt, sentAt: Date.now(), ackWithinMs: 2000 }), { qos: channels.nodeAward.qos });
    event(t, { type: "awarded", attempt: 1, auctionId: t.auctionId, nodeId: w.nodeId, agentId: w.agentId, score: 0.5, bid: w.estimate });
  };

  c.on("message", (topic, payload) => {
    const m = JSON.parse(payload.toString());
    const node = parseNodeTopic(topic);
    if (!node) {
      const sub = parseSubmitterTopic(topic);
      if (sub?.kind !== "submit") return;
      const now = Date.now();
      const auctionId = `au-${(seq++).toString(16).padStart(16, "0")}`;
      // The bid window: a QoS 0 bid may be lost, so the auction closes with what it has, as Colony's does.
      const window = setTimeout(() => close(t), BID_WINDOW_MS);
      const t: Open = { user: sub.user, id: m.id, auctionId, prompt: m.prompt, maxTokens: m.maxTokens, acceptedAt: now, deadlineAt: now + 60_000, bids: 0, awarded: false, window };
      open.set(t.auctionId, t);
      event(t, { type: "accepted" });
      event(t, { type: "announced", attempt: 1, auctionId: t.auctionId });
      c.publish(m.skill ? topics.skillAnnounce(m.skill) : topics.announce, encode({ auctionId: t.auctionId, taskId: t.id, attempt: 1, prompt: t.prompt, ...(m.skill ? { skill: m.skill } : {}), maxTokens: t.maxTokens, deadlineAt: t.deadlineAt, closesAt: now + BID_WINDOW_MS, sentAt: now }), { qos: channels.announce.qos });
      return;
    }
    const t = open.get(m.auctionId);
    if (!t) return; // status and heartbeats: no registry here
    if (node.kind === "bid") {
      t.bids++;
      t.first ??= { nodeId: m.nodeId, agentId: m.agentId, estimate: m.estimate };
      if (t.bids === o.nodes) close(t); // early close once every node has answered, as Colony's market does
    } else if (node.kind === "done") {
      open.delete(t.auctionId);
      c.publish(topics.nodeVerdict(m.nodeId), encode({ taskId: t.id, agentId: m.agentId, success: true, source: "delivery", record: { successes: 1, failures: 0 } }), { qos: channels.nodeVerdict.qos });
      const result = { id: t.id, status: "ok", output: m.output, agentId: m.agentId, nodeId: m.nodeId, attempts: [{ attempt: 1, nodeId: m.nodeId, agentId: m.agentId, outcome: "ok" }], timings: { acceptedAt: t.acceptedAt, finishedAt: Date.now() } };
      c.publish(topics.taskResult(t.user, t.id), encode(result), { qos: channels.taskResult.qos, retain: channels.taskResult.retain });
    } // ack: nothing to do without a deadline watchdog
  });
  await c.subscribeAsync([...SUBSCRIPTIONS], { qos: 1 });
  return c;
}
