/**
 * Every MQTT topic of protocol v1 (docs/protocol.md lists each with its payload). MQTT 3.1.1 only
 * (aedes has no MQTT 5): correlation ids and reply topics live in the payload.
 */
export const PROTOCOL_VERSION = 1;
export const ROOT = "colony/v1";

export const topics = {
  submit: `${ROOT}/tasks/submit`,
  taskEvents: (taskId: string) => `${ROOT}/tasks/${taskId}/events`,
  taskResult: (taskId: string) => `${ROOT}/tasks/${taskId}/result`,
  taskFeedback: (taskId: string) => `${ROOT}/tasks/${taskId}/feedback`,
  /** Retained coordinator presence (`online` with broker info, or `offline` by last will). */
  coordinatorStatus: `${ROOT}/coordinator/status`,
  /** Retained fleet snapshot for `colony status` (nodes, agents, open auctions, counters); ~1/s. Added in v1, optional to read. */
  coordinatorStats: `${ROOT}/coordinator/stats`,
  /** Coordinator -> all nodes: a task is up for auction. */
  announce: `${ROOT}/market/announce`,
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
  /** Coordinator -> the node that ran a task: how the attempt was judged, with the agent's record. */
  nodeVerdict: (nodeId: string) => `${ROOT}/nodes/${nodeId}/verdict`,
  /** Subscription patterns. */
  allNodeStatus: `${ROOT}/nodes/+/status`,
  allNodeHeartbeats: `${ROOT}/nodes/+/heartbeat`,
  allBids: `${ROOT}/nodes/+/bid`,
  allAcks: `${ROOT}/nodes/+/ack`,
  allProgress: `${ROOT}/nodes/+/progress`,
  allDone: `${ROOT}/nodes/+/done`,
  allFeedback: `${ROOT}/tasks/+/feedback`,
} as const;

/** Splits `colony/v1/nodes/{nodeId}/{kind}`; returns undefined for any other topic. */
export function parseNodeTopic(topic: string): { nodeId: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "nodes") return undefined;
  return { nodeId: parts[3]!, kind: parts[4]! };
}

/** Splits `colony/v1/tasks/{taskId}/{kind}`; returns undefined for any other topic. */
export function parseTaskTopic(topic: string): { taskId: string; kind: string } | undefined {
  const parts = topic.split("/");
  if (parts.length !== 5 || parts[0] !== "colony" || parts[1] !== "v1" || parts[2] !== "tasks") return undefined;
  return { taskId: parts[3]!, kind: parts[4]! };
}
