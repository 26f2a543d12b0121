/**
 * Home Assistant MQTT discovery (opt-in: `homeAssistant`): the coordinator publishes retained
 * discovery configs (discovery.ts) for itself and for every node it knows, and small retained state
 * JSONs under `colony/v1/ha/` that the sensors read. States are published when they change (checked
 * every `intervalMs`, and at once when a node comes or goes) and every 60 intervals regardless;
 * every config again when Home Assistant says `online` on `{prefix}/status` (it restarted and lost
 * them: HA's birth message).
 *
 * It publishes on the coordinator's own client (coordinator rights); these topics are outside the
 * Colony wire contract (common/protocol.ts), so they are plain retained JSON, not a channel.
 */
import { every, type Clock, type Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { Lifecycle } from "../../common/lifecycle.ts";
import type { Logger } from "../../common/logger.ts";
import type { MqttClient } from "../../common/mqtt-connect.ts";
import type { MarketEventBus } from "../market/events.ts";
import type { NodeEntry, Registry } from "../registry.ts";
import { coordinatorDiscovery, haTopics, nodeDiscovery, type CoordinatorHaState, type DiscoveryContext, type DiscoveryMessage, type NodeHaState } from "./discovery.ts";

export interface HomeAssistantOptions {
  /** The coordinator's MQTT client, once its link is up. */
  client: () => MqttClient;
  registry: Registry;
  events: MarketEventBus;
  counters: Counters;
  clock: Clock;
  logger: Logger;
  /** Discovery prefix; Home Assistant's default is `homeassistant`. */
  prefix: string;
  fleetId: string;
  version: string;
  /** How often states are compared and the changed ones published. */
  intervalMs: number;
}

const RETAINED = { qos: 1 as const, retain: true };
/** States are republished unchanged every this many intervals (a minute at the default 1 s). */
const REFRESH_EVERY_TICKS = 60;

export class HomeAssistantDiscovery implements Lifecycle {
  private timer: Timer | undefined;
  private unsubscribe: (() => void)[] = [];
  /** Per node, from market events since start: tasks delivered ok, joules. Bounded by the fleet's nodes. */
  private readonly tallies = new Map<string, { tasksDone: number; energyJ: number }>();
  private energyJ = 0;
  /** What was last published: state JSON per topic, config set per node (to add battery once it shows). */
  private readonly lastState = new Map<string, string>();
  private readonly lastConfigs = new Map<string, string>();
  private client: MqttClient | undefined;
  private readonly ctx: DiscoveryContext;
  /** Topics with a publish awaiting its ack, and the newest payload to send after it (see `publish`). */
  private readonly inFlight = new Map<string, string | undefined>();

  constructor(private readonly o: HomeAssistantOptions) {
    this.ctx = { prefix: o.prefix, fleetId: o.fleetId, version: o.version };
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== haTopics.haStatus(this.o.prefix) || payload.toString().trim() !== "online") return;
    this.o.logger.info({ prefix: this.o.prefix }, "Home Assistant came online: republishing discovery");
    this.publishAll(true);
  };

  async start(): Promise<void> {
    const client = (this.client = this.o.client());
    const ev = this.o.events;
    this.unsubscribe = [
      ev.on("taskFinished", (e) => {
        const d = e.delivered;
        if (!d) return;
        const t = this.tallies.get(d.nodeId) ?? { tasksDone: 0, energyJ: 0 };
        if (e.status === "ok") t.tasksDone++;
        t.energyJ += d.cost.energyJ ?? 0;
        this.energyJ += d.cost.energyJ ?? 0;
        this.tallies.set(d.nodeId, t);
      }),
      this.o.registry.events.on("nodeOnline", () => this.publishAll(false)),
      this.o.registry.events.on("nodeOffline", () => this.publishAll(false)),
    ];
    client.on("message", this.onMessage);
    await client.subscribeAsync(haTopics.haStatus(this.o.prefix), { qos: 1 });
    this.publishAll(true);
    let ticks = 0;
    this.timer = every(this.o.clock, this.o.intervalMs, () => {
      // Every state again now and then, unchanged or not: a broker may hand a new subscriber its
      // retained copy after a newer live one (seen with aedes), which would otherwise stick.
      if (++ticks % REFRESH_EVERY_TICKS === 0) this.lastState.clear();
      this.publishAll(false);
    });
  }

  /** Configs (all of them with `force`, else only new or changed ones) and changed states. */
  private publishAll(force: boolean): void {
    const client = this.client;
    if (!client) return;
    if (force) this.lastState.clear();
    const send = (m: DiscoveryMessage) => this.publish(m.topic, JSON.stringify(m.payload));
    if (force || !this.lastConfigs.has("")) {
      coordinatorDiscovery(this.ctx).forEach(send);
      this.lastConfigs.set("", "sent");
    }
    this.sendState(haTopics.coordinatorState, this.coordinatorState());
    for (const n of this.o.registry.list()) {
      const state = this.nodeState(n);
      const configs = nodeDiscovery(this.ctx, n.nodeId, state, n.status?.deviceClass);
      const signature = configs.map((c) => c.topic).join("\n") + (n.status?.deviceClass ?? "");
      if (force || this.lastConfigs.get(n.nodeId) !== signature) {
        configs.forEach(send);
        this.lastConfigs.set(n.nodeId, signature);
      }
      this.sendState(haTopics.nodeState(n.nodeId), state);
    }
  }

  private sendState(topic: string, state: object): void {
    const json = JSON.stringify(state);
    if (this.lastState.get(topic) === json) return;
    this.lastState.set(topic, json);
    this.publish(topic, json);
  }

  /**
   * One publish per topic at a time: a broker stores a retained message asynchronously (aedes:
   * `persistence.storeRetained`, a promise; a LevelDB-backed persistence takes longer), so two quick
   * publishes on one topic must not race to be the retained copy. The next payload waits for the
   * previous one's PUBACK (aedes acks after storing), and only the newest waiting one is sent.
   */
  private publish(topic: string, json: string): void {
    const client = this.client;
    if (!client) return;
    if (this.inFlight.has(topic)) {
      this.inFlight.set(topic, json);
      return;
    }
    this.inFlight.set(topic, undefined);
    client.publish(topic, json, RETAINED, () => {
      const next = this.inFlight.get(topic);
      this.inFlight.delete(topic);
      if (next !== undefined) this.publish(topic, next);
    });
  }

  private nodeState(n: NodeEntry): NodeHaState {
    const agents = n.status?.agents ?? [];
    const stateOf = (agentId: string, fallback: string) => n.heartbeat?.agents.find((h) => h.agentId === agentId)?.state ?? fallback;
    const awake = n.online ? agents.filter((a) => ["awake", "busy"].includes(stateOf(a.agentId, a.state))).length : 0;
    const t = this.tallies.get(n.nodeId);
    const device = n.heartbeat?.device;
    return {
      online: n.online, agentsAwake: awake, agents: agents.length, tasksDone: t?.tasksDone ?? 0, energyJ: Math.round((t?.energyJ ?? 0) * 1000) / 1000,
      ...(device?.batteryPercent !== undefined ? { batteryPercent: device.batteryPercent } : {}),
      ...(device?.temperatureC !== undefined ? { temperatureC: device.temperatureC } : {}),
    };
  }

  private coordinatorState(): CoordinatorHaState {
    const nodes = this.o.registry.list().filter((n) => n.online);
    return {
      nodesOnline: nodes.length,
      agentsAwake: nodes.reduce((sum, n) => sum + this.nodeState(n).agentsAwake, 0),
      tasksOk: this.o.counters.get("tasks.ok"),
      tasksFailed: this.o.counters.get("tasks.error"),
      energyJ: Math.round(this.energyJ * 1000) / 1000,
    };
  }

  async close(): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const client = this.client;
    this.client = undefined;
    this.inFlight.clear();
    if (!client) return;
    client.off("message", this.onMessage);
    // The coordinator's offline status (its link closes next) makes every entity unavailable.
    await client.unsubscribeAsync(haTopics.haStatus(this.o.prefix)).catch(() => {});
  }
}
