/**
 * Every MQTT topic of protocol v1 (docs/protocol.md lists each with its payload). MQTT 3.1.1 only
 * (aedes has no MQTT 5): correlation ids and reply topics live in the payload.
 */
export const PROTOCOL_VERSION = 1;
export const ROOT = "colony/v1";

/** The submitter of an insecure fleet, whose clients have no username. */
export const ANONYMOUS = "anonymous";

/**
 * Everything about a task lives under its SUBMITTER's folder, `colony/v1/submitters/{user}/`, where
 * `{user}` is the MQTT username the submitter logs in with: the broker lets only that user publish
 * there and read from there (on aedes and, with a pattern ACL, on mosquitto), so the coordinator
 * knows who submitted a task and who gave its feedback, and nobody else can read its result.
 */
export const topics = {
  submitterRoot: (user: string) => `${ROOT}/submitters/${user}`,
  submit: (user: string) => `${ROOT}/submitters/${user}/submit`,
  taskEvents: (user: string, taskId: string) => `${ROOT}/submitters/${user}/tasks/${taskId}/events`,
  taskResult: (user: string, taskId: string) => `${ROOT}/submitters/${user}/tasks/${taskId}/result`,
  taskFeedback: (user: string, taskId: string) => `${ROOT}/submitters/${user}/tasks/${taskId}/feedback`,
  /** Asks for a task's result again (it expired from the broker, or the submitter was not subscribed). */
  taskGet: (user: string, taskId: string) => `${ROOT}/submitters/${user}/tasks/${taskId}/get`,
  /** Retained coordinator presence (`online` with broker info, or `offline` by last will). */
  coordinatorStatus: `${ROOT}/coordinator/status`,
  /** Retained fleet snapshot for `colony status` (nodes, agents, open auctions, counters); ~1/s. Added in v1, optional to read. */
  coordinatorStats: `${ROOT}/coordinator/stats`,
  /** Coordinator -> all nodes: a task without a skill is up for auction (any agent may be the one). */
  announce: `${ROOT}/market/announce`,
  /**
   * Coordinator -> the nodes with an agent for `skill`: a task with that skill is up for auction. A
   * node subscribes to its agents' skills only, so an auction costs the broker its eligible nodes,
   * not the fleet (node/link.ts `listen`).
   */
  skillAnnounce: (skill: string) => `${ROOT}/market/announce/${skill}`,
  /** Node-owned topics: a node may publish only under its own `nodes/{nodeId}/`. */
  nodeStatus: (nodeId: string) => `${ROOT}/nodes/${nodeId}/status`,
  nodeHeartbeat: (nodeId: string) => `${ROOT}/nodes/${nodeId}/heartbeat`,
  nodeBid: (nodeId: string) => `${ROOT}/nodes/${nodeId}/bid`,
  nodeAck: (nodeId: string) => `${ROOT}/nodes/${nodeId}/ack`,
  nodeProgress: (nodeId: string) => `${ROOT}/nodes/${nodeId}/progress`,
  nodeDone: (nodeId: string) => `${ROOT}/nodes/${nodeId}/done`,
  /** Coordinator -> one node. */
  nodeAward: (nodeId: string) => `${ROOT}/nodes/${nodeId}/award`,
  nodeCancel: (nodeId: string) => `${ROOT}/nodes/${nodeId}/cancel`,
  /** Coordinator -> one node: an announce of a private task (only nodes that can bid get it). */
  nodeAnnounce: (nodeId: string) => `${ROOT}/nodes/${nodeId}/announce`,
  /** Coordinator -> one node: spawn, retire or keep an agent warm (common/protocol/lifecycle.ts). */
  nodeCommand: (nodeId: string) => `${ROOT}/nodes/${nodeId}/command`,
  /** Node -> coordinator: the outcome of a command. */
  nodeCommandAck: (nodeId: string) => `${ROOT}/nodes/${nodeId}/command-ack`,
  /** Retained: every agent's life (parents, generation, birth, death, niche fitness). */
  evolutionLineage: `${ROOT}/evolution/lineage`,
  /** Retained: the architect's latest decisions and what held others back. */
  architectDecisions: `${ROOT}/architect/decisions`,
  /** Coordinator -> the node that ran a task: how the attempt was judged, with the agent's record. */
  nodeVerdict: (nodeId: string) => `${ROOT}/nodes/${nodeId}/verdict`,
  /** Node -> coordinator: a byte range of a model in the coordinator's store (common/protocol/models.ts). */
  nodeModelFetch: (nodeId: string) => `${ROOT}/nodes/${nodeId}/model-fetch`,
  /** Coordinator -> one node: the answer to a model-fetch, a binary frame (common/protocol/model-frame.ts). */
  nodeModelChunk: (nodeId: string) => `${ROOT}/nodes/${nodeId}/model-chunk`,
  /** Node -> coordinator: a fetched model was verified and stored, or refused with a code. */
  nodeModelReport: (nodeId: string) => `${ROOT}/nodes/${nodeId}/model-report`,
  /** Node -> coordinator: a model transfer's throttled progress (bytes, state; common/protocol/models.ts). */
  nodeModelProgress: (nodeId: string) => `${ROOT}/nodes/${nodeId}/model-progress`,
  /** Node -> coordinator: a training job's progress and end (common/protocol/training.ts). */
  nodeTrainProgress: (nodeId: string) => `${ROOT}/nodes/${nodeId}/train-progress`,
  /** Node -> coordinator: the trained child, in binary chunk frames (model-frame.ts) with the job id as requestId. */
  nodeTrainUpload: (nodeId: string) => `${ROOT}/nodes/${nodeId}/train-upload`,
  /** Retained, coordinator-only: the signed manifests of the models in the coordinator's store (common/protocol/models.ts). */
  modelCatalog: `${ROOT}/models/catalog`,
  /** Coordinator-only (ACL): roll a model out to nodes (`colony models push`), and its answer. */
  modelPush: `${ROOT}/models/push`,
  modelPushReply: (requestId: string) => `${ROOT}/models/push/replies/${requestId}`,
  /** Retained, coordinator-only publish: every model x node rollout with its progress. Observers may read it. */
  modelRollouts: `${ROOT}/models/rollouts`,
  /** Coordinator-only (ACL): asks the coordinator for an export of its cold cache (common/protocol/mind.ts). */
  mindExperienceExport: `${ROOT}/mind/experiences/export`,
  /** Coordinator-only (ACL): the pages answering one mind request. */
  mindReply: (requestId: string) => `${ROOT}/mind/replies/${requestId}`,
  /** Coordinator-only (ACL): start or cancel a distillation job (common/protocol/mind-jobs.ts). */
  mindDistil: `${ROOT}/mind/distil`,
  /** Coordinator-only (ACL), retained: the newest distillation jobs with state, progress and gate report. */
  mindJobs: `${ROOT}/mind/jobs`,
  /** The dashboard feed (common/protocol/dashboard.ts): sanitized market events, live. Observers may read `dashboard/#`. */
  dashboardEvents: `${ROOT}/dashboard/events`,
  /** Retained: the newest dashboard events. */
  dashboardRecent: `${ROOT}/dashboard/recent`,
  /** Retained: nodes, device readings and agents as the coordinator sees them. */
  dashboardFleet: `${ROOT}/dashboard/fleet`,
  /** Subscription patterns. */
  allNodeStatus: `${ROOT}/nodes/+/status`,
  allNodeHeartbeats: `${ROOT}/nodes/+/heartbeat`,
  allBids: `${ROOT}/nodes/+/bid`,
  allAcks: `${ROOT}/nodes/+/ack`,
  allProgress: `${ROOT}/nodes/+/progress`,
  allDone: `${ROOT}/nodes/+/done`,
  allCommandAcks: `${ROOT}/nodes/+/command-ack`,
  allModelFetches: `${ROOT}/nodes/+/model-fetch`,
  allModelReports: `${ROOT}/nodes/+/model-report`,
  allModelProgress: `${ROOT}/nodes/+/model-progress`,
  allTrainProgress: `${ROOT}/nodes/+/train-progress`,
  allTrainUploads: `${ROOT}/nodes/+/train-upload`,
  allSubmits: `${ROOT}/submitters/+/submit`,
  allFeedback: `${ROOT}/submitters/+/tasks/+/feedback`,
  allGets: `${ROOT}/submitters/+/tasks/+/get`,
} as const;

/** Splits `colony/v1/nodes/{nodeId}/{kind}`; returns undefined for any other topic. */
export function parseNodeTopic(topic: string): { nodeId: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "nodes") return undefined;
  return { nodeId: parts[3]!, kind: parts[4]! };
}

/**
 * Splits `colony/v1/submitters/{user}/submit` (taskId undefined) and
 * `colony/v1/submitters/{user}/tasks/{taskId}/{kind}`; returns undefined for any other topic.
 */
export function parseSubmitterTopic(topic: string): { user: string; taskId?: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "submitters" || !parts[3]) return undefined;
  if (parts.length === 5) return { user: parts[3], kind: parts[4]! };
  if (parts.length === 7 && parts[4] === "tasks" && parts[5]) return { user: parts[3], taskId: parts[5], kind: parts[6]! };
  return undefined;
}
