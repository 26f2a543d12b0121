/**
 * Home Assistant MQTT discovery payloads (pure): one HA device for the coordinator and one per
 * node, each a handful of sensors reading a small retained state JSON the coordinator publishes
 * under `colony/v1/ha/`. Keys are HA's documented discovery keys for `sensor` and `binary_sensor`
 * (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery);
 * test/fixtures/ha-discovery-schema.ts checks every payload against them, strictly.
 *
 * Availability: every entity is unavailable while the coordinator's retained status
 * (`colony/v1/coordinator/status`, `{"state":"online"|"offline"}`, its last will included) says
 * offline; a node's sensors are also unavailable while the node is offline. Home Assistant reads
 * with an observer credential, which cannot read the nodes' own topics (they carry the fleet's
 * genomes), so the coordinator mirrors each node's presence (its retained status, last will and
 * heartbeat timeout, as the registry sees them) into the node's state JSON as `online`.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { INTEGRATION_ROOT } from "../auth/acl.ts";
import { topics } from "../../common/protocol.ts";

export const DEFAULT_DISCOVERY_PREFIX = "homeassistant";

/** Colony's version (package.json), the devices' `sw_version`. */
export const COLONY_VERSION: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

export const haTopics = {
  coordinatorState: `${INTEGRATION_ROOT}/coordinator/state`,
  nodeState: (nodeId: string) => `${INTEGRATION_ROOT}/nodes/${nodeId}/state`,
  /** HA's birth/last-will topic: `online` when HA (re)starts and wants every config again. */
  haStatus: (prefix: string) => `${prefix}/status`,
};

/** The retained state a node's sensors read. Optional fields appear once the node reports them. */
export interface NodeHaState {
  online: boolean;
  /** Agents loaded in memory (awake or busy), from the last heartbeat (else the status). */
  agentsAwake: number;
  agents: number;
  /** Tasks this node delivered with status ok since the coordinator started. */
  tasksDone: number;
  /** Joules its delivered attempts reported since the coordinator started. */
  energyJ: number;
  batteryPercent?: number;
  temperatureC?: number;
}

export interface CoordinatorHaState {
  nodesOnline: number;
  agentsAwake: number;
  tasksOk: number;
  tasksFailed: number;
  energyJ: number;
}

export interface DiscoveryMessage {
  topic: string;
  payload: Record<string, unknown>;
}

export interface DiscoveryContext {
  prefix: string;
  fleetId: string;
  version: string;
}

/** HA object ids and discovery node ids are `[a-zA-Z0-9_-]`; Colony ids may also hold `.` and `:`. */
export function haSlug(id: string): string {
  const s = id.replace(/[^A-Za-z0-9_-]/g, "_");
  // Two ids that differ only in those characters must not share an entity.
  return s === id ? s : `${s}_${createHash("sha256").update(id).digest("hex").slice(0, 6)}`;
}

const coordinatorIdentifier = (ctx: DiscoveryContext) => `colony_${haSlug(ctx.fleetId)}_coordinator`;
const nodeIdentifier = (ctx: DiscoveryContext, nodeId: string) => `colony_${haSlug(ctx.fleetId)}_node_${haSlug(nodeId)}`;

const coordinatorAvailability = { topic: topics.coordinatorStatus, value_template: "{{ value_json.state }}", payload_available: "online", payload_not_available: "offline" };

interface SensorSpec {
  key: string;
  name: string;
  component: "sensor" | "binary_sensor";
  value_template: string;
  device_class?: string;
  unit_of_measurement?: string;
  state_class?: "measurement" | "total_increasing";
  icon?: string;
  entity_category?: "diagnostic";
  suggested_display_precision?: number;
}

function entity(ctx: DiscoveryContext, deviceId: string, device: Record<string, unknown>, stateTopic: string, availability: Record<string, string>[], spec: SensorSpec): DiscoveryMessage {
  const { key, component, ...keys } = spec;
  return {
    topic: `${ctx.prefix}/${component}/${deviceId}/${key}/config`,
    payload: {
      ...keys,
      unique_id: `${deviceId}_${key}`,
      state_topic: stateTopic,
      availability,
      availability_mode: "all",
      ...(component === "binary_sensor" ? { payload_on: "ON", payload_off: "OFF" } : {}),
      device,
      origin: { name: "Colony", sw_version: ctx.version },
    },
  };
}

/** The coordinator's device: whether it is online, and the fleet's totals. */
export function coordinatorDiscovery(ctx: DiscoveryContext): DiscoveryMessage[] {
  const id = coordinatorIdentifier(ctx);
  const device = { identifiers: [id], name: `Colony ${ctx.fleetId}`, manufacturer: "Colony", model: "Coordinator", sw_version: ctx.version };
  const onlineSensor: DiscoveryMessage = {
    topic: `${ctx.prefix}/binary_sensor/${id}/online/config`,
    payload: {
      name: "Online", unique_id: `${id}_online`, device_class: "connectivity", state_topic: topics.coordinatorStatus,
      value_template: "{{ 'ON' if value_json.state == 'online' else 'OFF' }}", payload_on: "ON", payload_off: "OFF",
      device, origin: { name: "Colony", sw_version: ctx.version },
    },
  };
  const st = haTopics.coordinatorState;
  const av = [coordinatorAvailability];
  return [
    onlineSensor,
    entity(ctx, id, device, st, av, { key: "nodes_online", component: "sensor", name: "Nodes online", value_template: "{{ value_json.nodesOnline }}", state_class: "measurement", icon: "mdi:server-network" }),
    entity(ctx, id, device, st, av, { key: "agents_awake", component: "sensor", name: "Agents awake", value_template: "{{ value_json.agentsAwake }}", state_class: "measurement", icon: "mdi:robot" }),
    entity(ctx, id, device, st, av, { key: "tasks_ok", component: "sensor", name: "Tasks done", value_template: "{{ value_json.tasksOk }}", state_class: "total_increasing", icon: "mdi:check-circle" }),
    entity(ctx, id, device, st, av, { key: "tasks_failed", component: "sensor", name: "Tasks failed", value_template: "{{ value_json.tasksFailed }}", state_class: "total_increasing", icon: "mdi:alert-circle" }),
    entity(ctx, id, device, st, av, energySpec()),
  ];
}

// HA's energy device class takes Wh (and kWh, ...); 1 Wh = 3600 J.
function energySpec(): SensorSpec {
  return { key: "energy", component: "sensor", name: "Energy", value_template: "{{ (value_json.energyJ / 3600) | round(4) }}", device_class: "energy", unit_of_measurement: "Wh", state_class: "total_increasing", suggested_display_precision: 3 };
}

/** A node's device. Battery and temperature sensors only once the node has reported them. */
export function nodeDiscovery(ctx: DiscoveryContext, nodeId: string, state: NodeHaState, deviceClass?: string): DiscoveryMessage[] {
  const id = nodeIdentifier(ctx, nodeId);
  const device = {
    identifiers: [id], name: `Colony node ${nodeId}`, manufacturer: "Colony", model: deviceClass ? `Node (${deviceClass})` : "Node", sw_version: ctx.version,
    via_device: coordinatorIdentifier(ctx),
  };
  const st = haTopics.nodeState(nodeId);
  const nodeOnline = { topic: st, value_template: "{{ 'online' if value_json.online else 'offline' }}", payload_available: "online", payload_not_available: "offline" };
  const both = [coordinatorAvailability, nodeOnline];
  const out = [
    // Online stays available while the node is offline (it says "off"); only the coordinator's absence makes it unknown.
    entity(ctx, id, device, st, [coordinatorAvailability], { key: "online", component: "binary_sensor", name: "Online", device_class: "connectivity", value_template: "{{ 'ON' if value_json.online else 'OFF' }}" }),
    entity(ctx, id, device, st, both, { key: "agents_awake", component: "sensor", name: "Agents awake", value_template: "{{ value_json.agentsAwake }}", state_class: "measurement", icon: "mdi:robot" }),
    entity(ctx, id, device, st, both, { key: "tasks_done", component: "sensor", name: "Tasks done", value_template: "{{ value_json.tasksDone }}", state_class: "total_increasing", icon: "mdi:check-circle" }),
    entity(ctx, id, device, st, both, energySpec()),
  ];
  if (state.batteryPercent !== undefined) {
    out.push(entity(ctx, id, device, st, both, { key: "battery", component: "sensor", name: "Battery", value_template: "{{ value_json.batteryPercent }}", device_class: "battery", unit_of_measurement: "%", state_class: "measurement" }));
  }
  if (state.temperatureC !== undefined) {
    out.push(entity(ctx, id, device, st, both, { key: "temperature", component: "sensor", name: "Temperature", value_template: "{{ value_json.temperatureC }}", device_class: "temperature", unit_of_measurement: "°C", state_class: "measurement" }));
  }
  return out;
}
