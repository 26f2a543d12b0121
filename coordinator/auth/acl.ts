/**
 * The topic ACL of a fleet, as pure functions of (principal, topic). The aedes hooks call these;
 * mosquitto-config.ts writes the closest mosquitto equivalent, and test/auth-mosquitto.test.ts runs
 * the same scenarios against both brokers. docs/security.md has the table in prose.
 */
import { ROOT, topics } from "../../common/protocol.ts";
import { usernameFor, type Principal } from "./credentials.ts";

/** What a node may publish under its own `colony/v1/nodes/{nodeId}/`. */
export const NODE_PUBLISH_KINDS = ["status", "heartbeat", "bid", "ack", "progress", "done", "command-ack", "model-fetch", "model-report", "model-progress", "train-progress", "train-upload"] as const;
/** Topics a node may subscribe to besides its own `colony/v1/nodes/{nodeId}/#`. */
export const NODE_SUBSCRIBE_TOPICS = [`${ROOT}/market/announce`, `${ROOT}/market/announce/+`, `${ROOT}/coordinator/status`, `${ROOT}/models/catalog`] as const;
/** One skill's announces (`colony/v1/market/announce/{skill}`), or `+` for every skill's. */
const SKILL_ANNOUNCE_RE = /^colony\/v1\/market\/announce\/(\+|[a-z0-9][a-z0-9_-]{0,63})$/;
/**
 * What the coordinator publishes for integrations (Home Assistant state, coordinator/home-assistant/):
 * fleet-level figures, no task and no prompt. Observers read it; nobody but the coordinator writes it.
 */
export const INTEGRATION_ROOT = `${ROOT}/ha`;
/**
 * What the coordinator publishes for the dashboard (coordinator/dashboard/feed.ts): sanitized market
 * events (no prompt or output unless `dashboardShowPrompts`) and the fleet with device readings.
 */
export const DASHBOARD_ROOT = `${ROOT}/dashboard`;
/**
 * The coordinator's retained fleet views an observer may read: none carries a prompt, an output or a
 * submitter's topic (task ids and agents' genome hashes at most).
 */
export const OBSERVER_READ_TOPICS = [
  `${ROOT}/coordinator/status`, topics.coordinatorStats, topics.evolutionLineage, topics.architectDecisions, topics.modelCatalog, topics.mindJobs,
  // Model x node states and byte counts, with refusal codes: no prompt (coordinator/models/rollouts.ts).
  topics.modelRollouts,
] as const;
/** Topics an observer (read-only: Home Assistant, dashboards) may subscribe to besides anything outside colony/. */
export const OBSERVER_SUBSCRIBE_TOPICS = [...OBSERVER_READ_TOPICS, `${INTEGRATION_ROOT}/#`, `${DASHBOARD_ROOT}/#`] as const;
// Same character set as protocol ids (no '/', '+', '#'): a level that is one concrete task id.
const CONCRETE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A submitter's own folder: only it publishes its submits and feedback there and reads its tasks' events and results. */
export function submitterFolder(principal: Principal): string {
  return topics.submitterRoot(usernameFor(principal.role, principal.name));
}

export type AclDecision = { allowed: true } | { allowed: false; reason: string };
const ALLOW: AclDecision = { allowed: true };
const deny = (reason: string): AclDecision => ({ allowed: false, reason });

function levels(topic: string): string[] {
  return topic.split("/");
}

/**
 * Topics a submitter's integrations may use freely (Home Assistant, Node-RED, a result `replyTo`):
 * the first level is a concrete name other than `colony`, and not a `$` system topic. A filter
 * starting with '+' or '#' could match `colony/...`, so it is not "outside".
 */
function isOutsideColony(topicOrFilter: string): boolean {
  const first = levels(topicOrFilter)[0]!;
  return first !== "colony" && first !== "+" && first !== "#" && !topicOrFilter.startsWith("$") && topicOrFilter.length > 0;
}

function hasWildcard(topic: string): boolean {
  return topic.includes("+") || topic.includes("#");
}

/** May `principal` publish on `topic` (with `retain`)? */
export function checkPublish(principal: Principal, topic: string, retain: boolean): AclDecision {
  if (principal.role === "coordinator") return ALLOW;
  if (hasWildcard(topic) || topic.includes("\u0000")) return deny("wildcards are not allowed in a published topic");
  const parts = levels(topic);

  if (principal.role === "node") {
    const own = parts.length === 5 && parts[0] === "colony" && parts[1] === "v1" && parts[2] === "nodes" && parts[3] === principal.name;
    if (!own || !(NODE_PUBLISH_KINDS as readonly string[]).includes(parts[4]!)) {
      return deny(`a node may publish only on ${ROOT}/nodes/${principal.name}/{${NODE_PUBLISH_KINDS.join(",")}}`);
    }
    // Only presence is retained (the contract); a retained bid or heartbeat would replay forever.
    if (retain && parts[4] !== "status") return deny("a node may retain only its status");
    return ALLOW;
  }

  if (principal.role === "observer") {
    // Read-only inside colony/: Home Assistant's birth message (`homeassistant/status`) is outside.
    if (isOutsideColony(topic)) return ALLOW;
    return deny("an observer may publish only topics outside colony/");
  }

  // submitter: its own folder colony/v1/submitters/{username}/
  const folder = submitterFolder(principal);
  const inFolder = topic.startsWith(`${folder}/`) ? topic.slice(folder.length + 1).split("/") : undefined;
  if (inFolder && (inFolder.join("/") === "submit" || (inFolder.length === 3 && inFolder[0] === "tasks" && CONCRETE_ID_RE.test(inFolder[1]!) && (inFolder[2] === "feedback" || inFolder[2] === "get")))) {
    // A retained submit would be re-submitted to every coordinator that (re)subscribes.
    if (retain) return deny("a submitter may not retain messages under colony/");
    return ALLOW;
  }
  if (isOutsideColony(topic)) return ALLOW;
  return deny(`a submitter may publish only ${folder}/submit, ${folder}/tasks/{id}/feedback, ${folder}/tasks/{id}/get and topics outside colony/`);
}

/** May `principal` subscribe with `filter`? */
export function checkSubscribe(principal: Principal, filter: string): AclDecision {
  if (principal.role === "coordinator") return ALLOW;
  const parts = levels(filter);

  if (principal.role === "node") {
    if ((NODE_SUBSCRIBE_TOPICS as readonly string[]).includes(filter) || SKILL_ANNOUNCE_RE.test(filter)) return ALLOW;
    const own = parts.length >= 5 && parts[0] === "colony" && parts[1] === "v1" && parts[2] === "nodes" && parts[3] === principal.name;
    if (own) return ALLOW; // anything below its own folder, wildcards included: it can only match its own topics
    return deny(`a node may subscribe only to ${ROOT}/nodes/${principal.name}/#, ${NODE_SUBSCRIBE_TOPICS.join(", ")}`);
  }

  if (principal.role === "observer") {
    if ((OBSERVER_READ_TOPICS as readonly string[]).includes(filter)) return ALLOW;
    // Anything below these two roots, wildcards included: they can only match the coordinator's integration topics.
    if (filter === INTEGRATION_ROOT || filter.startsWith(`${INTEGRATION_ROOT}/`) || filter === DASHBOARD_ROOT || filter.startsWith(`${DASHBOARD_ROOT}/`)) return ALLOW;
    if (isOutsideColony(filter)) return ALLOW;
    return deny(`an observer may subscribe only to ${OBSERVER_SUBSCRIBE_TOPICS.join(", ")} and topics outside colony/`);
  }

  // submitter: anything in its own folder (wildcards included: they can only match its own topics)
  if (filter === `${ROOT}/coordinator/status`) return ALLOW;
  const folder = submitterFolder(principal);
  if (filter.startsWith(`${folder}/`) || filter === folder) return ALLOW;
  if (isOutsideColony(filter)) return ALLOW;
  return deny(`a submitter may subscribe only to ${folder}/#, ${ROOT}/coordinator/status and topics outside colony/`);
}
