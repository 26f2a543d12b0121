/**
 * The typed topic -> payload map: each channel names its topic builder, its payload schema and how
 * it is published (QoS, retain). Receivers decode with `channel.schema`; senders go through an
 * `Outbox`, so publishing is type-checked like receiving: `out.send(channels.nodeAward, [nodeId],
 * award)` does not compile with a Bid in place of the Award or without the node id.
 */
import type { z } from "zod";
import { encode } from "./codec.ts";
import { CoordinatorStatsSchema, CoordinatorStatusSchema, HeartbeatSchema, NodeStatusSchema } from "./fleet.ts";
import { AckSchema, AnnounceSchema, AwardSchema, BidSchema, CancelSchema, DoneSchema, ProgressSchema, VerdictSchema } from "./market.ts";
import { ArchitectReportSchema, CommandAckSchema, CommandSchema, LineageSnapshotSchema } from "./lifecycle.ts";
import { ModelFetchSchema, ModelReportSchema } from "./models.ts";
import { ModelCatalogSchema, ModelProgressSchema, ModelPushReplySchema, ModelPushRequestSchema, ModelRolloutsSchema } from "./models.ts";
import { ExperienceExportRequestSchema, MindReplyPageSchema } from "./mind.ts";
import { DistilRequestSchema, MindJobsSnapshotSchema } from "./mind-jobs.ts";
import { TrainProgressSchema } from "./training.ts";
import { DashboardEventSchema, DashboardFleetSchema, DashboardRecentSchema } from "./dashboard.ts";
import { FeedbackSchema, ResultSchema, SubmitSchema, TaskEventSchema, TaskGetSchema } from "./task.ts";
import { topics } from "./topics.ts";

export interface Channel<A extends string[], S extends z.ZodType> {
  readonly topic: (...args: A) => string;
  readonly schema: S;
  /** QoS 1 where losing the message changes what someone must do; 0 for what the next one supersedes. */
  readonly qos: 0 | 1;
  readonly retain: boolean;
}

function channel<A extends string[], S extends z.ZodType>(topic: (...args: A) => string, schema: S, qos: 0 | 1, retain = false): Channel<A, S> {
  return Object.freeze({ topic, schema, qos, retain });
}

export const channels = {
  // Submitters <-> coordinator, under the submitter's own folder (`user`: its MQTT username).
  submit: channel((user: string) => topics.submit(user), SubmitSchema, 1),
  /** Progress goes at QoS 0 (callers pass it); every other event at QoS 1, so they keep their order. */
  taskEvent: channel((user: string, taskId: string) => topics.taskEvents(user, taskId), TaskEventSchema, 1),
  /** Retained, so a submitter that subscribes late still gets it. */
  taskResult: channel((user: string, taskId: string) => topics.taskResult(user, taskId), ResultSchema, 1, true),
  taskFeedback: channel((user: string, taskId: string) => topics.taskFeedback(user, taskId), FeedbackSchema, 1),
  taskGet: channel((user: string, taskId: string) => topics.taskGet(user, taskId), TaskGetSchema, 1),
  coordinatorStatus: channel(() => topics.coordinatorStatus, CoordinatorStatusSchema, 1, true),
  coordinatorStats: channel(() => topics.coordinatorStats, CoordinatorStatsSchema, 0, true),
  // Coordinator -> nodes
  announce: channel(() => topics.announce, AnnounceSchema, 1),
  skillAnnounce: channel((skill: string) => topics.skillAnnounce(skill), AnnounceSchema, 1),
  nodeAward: channel((nodeId: string) => topics.nodeAward(nodeId), AwardSchema, 1),
  nodeCancel: channel((nodeId: string) => topics.nodeCancel(nodeId), CancelSchema, 1),
  nodeAnnounce: channel((nodeId: string) => topics.nodeAnnounce(nodeId), AnnounceSchema, 1),
  nodeVerdict: channel((nodeId: string) => topics.nodeVerdict(nodeId), VerdictSchema, 1),
  nodeCommand: channel((nodeId: string) => topics.nodeCommand(nodeId), CommandSchema, 1),
  evolutionLineage: channel(() => topics.evolutionLineage, LineageSnapshotSchema, 1, true),
  architectDecisions: channel(() => topics.architectDecisions, ArchitectReportSchema, 1, true),
  modelCatalog: channel(() => topics.modelCatalog, ModelCatalogSchema, 1, true),
  modelPush: channel(() => topics.modelPush, ModelPushRequestSchema, 1),
  modelPushReply: channel((requestId: string) => topics.modelPushReply(requestId), ModelPushReplySchema, 1),
  modelRollouts: channel(() => topics.modelRollouts, ModelRolloutsSchema, 1, true),
  // Node -> coordinator
  nodeCommandAck: channel((nodeId: string) => topics.nodeCommandAck(nodeId), CommandAckSchema, 1),
  nodeStatus: channel((nodeId: string) => topics.nodeStatus(nodeId), NodeStatusSchema, 1, true),
  nodeHeartbeat: channel((nodeId: string) => topics.nodeHeartbeat(nodeId), HeartbeatSchema, 0),
  /** QoS 0: a bid is worth nothing after its window, and a PUBACK round trip is most of its cost. */
  nodeBid: channel((nodeId: string) => topics.nodeBid(nodeId), BidSchema, 0),
  nodeAck: channel((nodeId: string) => topics.nodeAck(nodeId), AckSchema, 1),
  nodeProgress: channel((nodeId: string) => topics.nodeProgress(nodeId), ProgressSchema, 0),
  nodeDone: channel((nodeId: string) => topics.nodeDone(nodeId), DoneSchema, 1),
  /** A model's byte range; answered by a binary frame on `nodeModelChunk` (not a JSON channel: model-frame.ts). */
  nodeModelFetch: channel((nodeId: string) => topics.nodeModelFetch(nodeId), ModelFetchSchema, 1),
  nodeModelReport: channel((nodeId: string) => topics.nodeModelReport(nodeId), ModelReportSchema, 1),
  /** QoS 0 while fetching (callers pass 1 for a change of state: verifying, done, failed). */
  nodeModelProgress: channel((nodeId: string) => topics.nodeModelProgress(nodeId), ModelProgressSchema, 0),
  /** QoS 0 while running (callers pass 1 for an end: trained, failed, cancelled). The child goes on `nodeTrainUpload` (binary frames). */
  nodeTrainProgress: channel((nodeId: string) => topics.nodeTrainProgress(nodeId), TrainProgressSchema, 0),
  // Coordinator-role principals only (the ACL): the collective mind (docs/mind.md)
  mindExperienceExport: channel(() => topics.mindExperienceExport, ExperienceExportRequestSchema, 1),
  mindReply: channel((requestId: string) => topics.mindReply(requestId), MindReplyPageSchema, 1),
  mindDistil: channel(() => topics.mindDistil, DistilRequestSchema, 1),
  mindJobs: channel(() => topics.mindJobs, MindJobsSnapshotSchema, 1, true),
  // Coordinator -> observers: the dashboard feed (sanitized; docs/operations.md)
  dashboardEvents: channel(() => topics.dashboardEvents, DashboardEventSchema, 0),
  dashboardRecent: channel(() => topics.dashboardRecent, DashboardRecentSchema, 0, true),
  dashboardFleet: channel(() => topics.dashboardFleet, DashboardFleetSchema, 0, true),
} as const;

export type Payload<C> = C extends Channel<string[], infer S> ? z.infer<S> : never;

/** What an Outbox writes to: an MQTT client's publish, or a recorder in unit tests. */
export interface RawPublisher {
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }): void;
}

export interface SendOptions {
  /** Overrides the channel's QoS (task events that are informational go at 0). */
  qos?: 0 | 1;
  /** Also publish the same bytes to this topic (a submitter's `replyTo`), without the retain flag. */
  alsoTo?: string | undefined;
  /** `false`: publish without the channel's retain flag (an answer to one asker, not the topic's state). */
  retain?: false;
}

export class Outbox {
  constructor(private readonly raw: RawPublisher) {}

  send<A extends string[], S extends z.ZodType>(ch: Channel<A, S>, args: A, msg: z.infer<S>, opts: SendOptions = {}): void {
    const payload = encode(msg);
    const qos = opts.qos ?? ch.qos;
    this.raw.publish(ch.topic(...args), payload, { qos, retain: opts.retain ?? ch.retain });
    if (opts.alsoTo !== undefined) this.raw.publish(opts.alsoTo, payload, { qos });
  }

  /**
   * Removes a retained channel's message from the broker: an empty retained payload (MQTT 3.1.1
   * §3.3.1.3). Subscribers see one empty message; receivers skip empty payloads.
   */
  clear<A extends string[], S extends z.ZodType>(ch: Channel<A, S>, args: A): void {
    if (!ch.retain) throw new Error("only a retained channel can be cleared");
    this.raw.publish(ch.topic(...args), "", { qos: ch.qos, retain: true });
  }
}
