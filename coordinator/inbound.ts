import type { z } from "zod";
import type { Counters } from "../common/counters.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import { channels, decode, IdSchema, parseNodeTopic, parseSubmitterTopic, topics, type CommandAck, type ModelFetch, type ModelProgress, type ModelReport, type TrainProgress } from "../common/protocol.ts";
import type { CoordinatorLink } from "./link.ts";
import type { FeedbackDesk } from "./market/feedback.ts";
import type { TaskLookup } from "./market/lookup.ts";
import type { Market } from "./market/market.ts";
import type { Registry } from "./registry.ts";

/**
 * Where bytes from MQTT become typed calls on the registry and the market. Every payload is
 * decoded once against its topic's schema; a node-owned message whose payload names another node
 * than its topic is a forgery and is dropped (the broker ACL stops it first when auth is on; this
 * is the second line, and the only one with --insecure). A submit or a feedback comes from the
 * submitter whose folder it was published in (the ACL lets only that user publish there); so does a
 * `get`, which asks for a task's result again.
 */
export const SUBSCRIPTIONS = [
  topics.allSubmits, topics.allNodeStatus, topics.allNodeHeartbeats, topics.allBids, topics.allAcks, topics.allProgress, topics.allDone, topics.allFeedback, topics.allGets, topics.allCommandAcks,
  topics.allModelFetches, topics.allModelReports, topics.allModelProgress, topics.allTrainProgress, topics.allTrainUploads,
] as const;

/** Who handles what arrives. */
export interface InboundRoutes {
  registry: Registry;
  market: Market;
  feedback: FeedbackDesk;
  lookup: TaskLookup;
  /** Acks of life cycle commands (evolution/commands.ts); absent: they are counted as dropped. */
  commands?: { onAck(ack: CommandAck): void } | undefined;
  /** Model fetches and reports (models/model-server.ts); absent: they are counted as dropped. */
  models?: { onFetch(f: ModelFetch): void; onReport(r: ModelReport): void } | undefined;
  /** Model transfers' progress (models/rollouts.ts); absent: counted as dropped. */
  rollouts?: { onProgress(p: ModelProgress): void } | undefined;
  /** Trainer nodes' progress and uploads (mind/mind.ts); absent: counted as dropped. */
  mind?: { onTrainProgress(p: TrainProgress): void; onTrainUpload(nodeId: string, payload: Buffer): void } | undefined;
}

export class Inbound implements Lifecycle {
  private readonly registry: Registry;
  private readonly market: Market;
  private readonly feedback: FeedbackDesk;
  private readonly lookup: TaskLookup;
  private readonly commands: InboundRoutes["commands"];
  private readonly models: InboundRoutes["models"];
  private readonly rollouts: InboundRoutes["rollouts"];
  private readonly mind: InboundRoutes["mind"];

  constructor(private readonly link: CoordinatorLink, routes: InboundRoutes, private readonly counters: Counters) {
    this.registry = routes.registry;
    this.market = routes.market;
    this.feedback = routes.feedback;
    this.lookup = routes.lookup;
    this.commands = routes.commands;
    this.models = routes.models;
    this.rollouts = routes.rollouts;
    this.mind = routes.mind;
  }

  private readonly onMessage = (topic: string, payload: Buffer, packet?: { retain?: boolean }): void => {
    // Integrations subscribe on the same client outside colony/ (home-assistant/: `homeassistant/status`); theirs to handle.
    if (!topic.startsWith("colony/")) return;
    try {
      // A retained message is an old one the broker replays to every new subscriber: a retained
      // submit would re-run on every coordinator restart. Only node presence is retained by design.
      if (packet?.retain && !topic.endsWith("/status")) return this.counters.drop("retained", { topic: topic.slice(0, 200) });
      this.route(topic, payload);
    } catch (err) {
      // Nothing a peer sends may take the coordinator down.
      this.counters.drop("handler-error", { topic: topic.slice(0, 200), err: { message: (err as Error).message } });
    }
  };

  async start(): Promise<void> {
    this.link.client.on("message", this.onMessage);
    await this.link.client.subscribeAsync([...SUBSCRIPTIONS], { qos: 1 });
  }

  async close(): Promise<void> {
    try {
      this.link.client.off("message", this.onMessage);
    } catch {
      // The link is already closed.
    }
  }

  private decodeNode<S extends z.ZodType>(schema: S, kind: string, topicNodeId: string, payload: Buffer): z.infer<S> | undefined {
    const d = decode(schema, payload);
    if (!d.ok) {
      this.counters.drop(`${kind}.${d.code}`, { nodeId: topicNodeId });
      return undefined;
    }
    if ((d.value as { nodeId: string }).nodeId !== topicNodeId) {
      this.counters.drop(`${kind}.forged-node-id`, { nodeId: topicNodeId });
      return undefined;
    }
    this.registry.touch(topicNodeId);
    return d.value;
  }

  private route(topic: string, payload: Buffer): void {
    // Subscribed and decoded by their own parts on the same client (mind/export.ts, mind/mind.ts, models/push-desk.ts).
    if (topic === topics.mindExperienceExport || topic === topics.mindDistil || topic === topics.modelPush) return;
    this.counters.inc("received");
    const sub = parseSubmitterTopic(topic);
    if (sub) {
      // The folder names its owner; a name that could not be a topic level of ours is not one.
      if (!IdSchema.safeParse(sub.user).success) return this.counters.drop("submitter.bad-name");
      if (sub.kind === "submit" && sub.taskId === undefined) {
        this.market.onSubmit(payload, sub.user).catch((err) => this.counters.drop("submit.handler-error", { err: { message: (err as Error).message } }));
        return;
      }
      if (sub.kind === "feedback" && sub.taskId !== undefined) {
        const d = decode(channels.taskFeedback.schema, payload);
        if (!d.ok) return this.counters.drop(`feedback.${d.code}`);
        this.feedback.onFeedback(sub.user, sub.taskId, d.value).catch((err) => this.counters.drop("feedback.handler-error", { err: { message: (err as Error).message } }));
        return;
      }
      if (sub.kind === "get" && sub.taskId !== undefined) {
        if (!IdSchema.safeParse(sub.taskId).success) return this.counters.drop("get.bad-id");
        const d = decode(channels.taskGet.schema, payload.length === 0 ? Buffer.from("{}") : payload);
        if (!d.ok) return this.counters.drop(`get.${d.code}`);
        this.lookup.onGet(sub.user, sub.taskId).catch((err) => this.counters.drop("get.handler-error", { err: { message: (err as Error).message } }));
        return;
      }
    }
    const node = parseNodeTopic(topic);
    if (node) {
      switch (node.kind) {
        case "status": {
          // An empty retained payload clears the retained status (MQTT 3.1.1 §3.3.1.3): nothing to do.
          if (payload.length === 0) return;
          const v = this.decodeNode(channels.nodeStatus.schema, "status", node.nodeId, payload);
          // An offline status reaches the market through the registry's onOffline callback.
          if (v) this.registry.onStatus(v);
          return;
        }
        case "heartbeat": {
          const v = this.decodeNode(channels.nodeHeartbeat.schema, "heartbeat", node.nodeId, payload);
          if (v) this.registry.onHeartbeat(v);
          return;
        }
        case "bid": {
          const v = this.decodeNode(channels.nodeBid.schema, "bid", node.nodeId, payload);
          if (v) this.market.onBid(v);
          return;
        }
        case "ack": {
          const v = this.decodeNode(channels.nodeAck.schema, "ack", node.nodeId, payload);
          if (v) this.market.onAck(v);
          return;
        }
        case "progress": {
          const v = this.decodeNode(channels.nodeProgress.schema, "progress", node.nodeId, payload);
          if (v) this.market.onProgress(v);
          return;
        }
        case "done": {
          const v = this.decodeNode(channels.nodeDone.schema, "done", node.nodeId, payload);
          if (v) this.market.onDone(v);
          return;
        }
        case "command-ack": {
          const v = this.decodeNode(channels.nodeCommandAck.schema, "command-ack", node.nodeId, payload);
          if (v && this.commands) this.commands.onAck(v);
          else if (v) this.counters.drop("command-ack.no-evolution");
          return;
        }
        case "model-fetch": {
          const v = this.decodeNode(channels.nodeModelFetch.schema, "model-fetch", node.nodeId, payload);
          if (v && this.models) this.models.onFetch(v);
          else if (v) this.counters.drop("model-fetch.no-store");
          return;
        }
        case "model-report": {
          const v = this.decodeNode(channels.nodeModelReport.schema, "model-report", node.nodeId, payload);
          if (v && this.models) this.models.onReport(v);
          else if (v) this.counters.drop("model-report.no-store");
          return;
        }
        case "train-progress": {
          const v = this.decodeNode(channels.nodeTrainProgress.schema, "train-progress", node.nodeId, payload);
          if (v && this.mind) this.mind.onTrainProgress(v);
          return;
        }
        case "train-upload": {
          // Binary chunk frames (model-frame.ts), larger than a JSON message: decoded by the job they belong to.
          if (!this.mind) return this.counters.drop("train-upload.no-mind");
          this.registry.touch(node.nodeId);
          this.mind.onTrainUpload(node.nodeId, payload);
          return;
        }
        case "model-progress": {
          const v = this.decodeNode(channels.nodeModelProgress.schema, "model-progress", node.nodeId, payload);
          if (v && this.rollouts) this.rollouts.onProgress(v);
          else if (v) this.counters.drop("model-progress.no-store");
          return;
        }
      }
    }
    this.counters.drop("unknown-topic");
  }
}
