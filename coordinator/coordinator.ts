import { mkdir } from "node:fs/promises";
import path from "node:path";
import { connectMqtt, type MqttClient } from "../common/mqtt-connect.ts";
import type { Logger } from "../common/logger.ts";
import { PartGroup, type Lifecycle } from "../common/lifecycle.ts";
import { encode, PROTOCOL_VERSION, topics, type CoordinatorStats, type CoordinatorStatus } from "../common/protocol.ts";
import { Rng } from "../common/random.ts";
import { createAedesAuthHooks, issueCredential, loadOrCreateFleetSecret } from "./auth.ts";
import { EmbeddedBroker } from "./broker.ts";
import { systemClock, type Clock, type Timer } from "./clock.ts";
import type { CoordinatorConfig } from "./config.ts";
import { Counters } from "./counters.ts";
import { Inbound } from "./inbound.ts";
import { Market } from "./market.ts";
import { Penalties } from "./penalties.ts";
import { Registry } from "./registry.ts";
import { TaskStore } from "./task-store.ts";
import { TrackRecords } from "./track-record.ts";

/**
 * The coordinator process's root: starts its parts in order (data folder, broker, task store,
 * MQTT client, registry, market, inbound routing, presence, stats, mDNS) and closes them in
 * reverse. The market talks to the broker as an MQTT client in both modes (embedded aedes or
 * an external broker such as mosquitto).
 */
export class Coordinator implements Lifecycle {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private parts: PartGroup | undefined;
  private broker: EmbeddedBroker | undefined;
  private client: MqttClient | undefined;
  private statsTimer: Timer | undefined;
  readonly counters: Counters;
  registry!: Registry;
  market!: Market;
  private records!: TrackRecords;
  private penalties!: Penalties;
  private startedAt = 0;
  /** URL the coordinator's own client uses (embedded: 127.0.0.1 and the bound port). */
  brokerUrl = "";

  constructor(private readonly config: Readonly<CoordinatorConfig>, deps: { logger: Logger; clock?: Clock }) {
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.counters = new Counters(this.logger, () => this.clock.now());
  }

  get port(): number | undefined {
    return this.broker?.port;
  }
  get wsPort(): number | undefined {
    return this.broker?.wsPort;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    const log = this.logger;
    this.startedAt = this.clock.now();
    await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    const external = cfg.broker !== undefined;
    // The secret signs every credential; an insecure fleet on an external broker needs none.
    const secret = cfg.insecure ? undefined : await loadOrCreateFleetSecret(cfg.dataDir);
    const store = new TaskStore(path.join(cfg.dataDir, "tasks"));
    const parts: Lifecycle[] = [];
    if (!external) {
      const hooks = cfg.insecure ? undefined : createAedesAuthHooks({ secret, insecure: false, logger: log.child({ part: "auth" }) });
      this.broker = new EmbeddedBroker({ host: cfg.host, port: cfg.port, wsPort: cfg.wsPort, hooks, logger: log });
      parts.push(this.broker);
    }
    parts.push(store);
    parts.push({
      start: async () => {
        this.brokerUrl = external ? cfg.broker! : this.broker!.localUrl;
        const cred = cfg.brokerUsername ? { username: cfg.brokerUsername, password: cfg.brokerPassword ?? "" } : secret ? issueCredential(secret, "coordinator") : undefined;
        const offline: CoordinatorStatus = { state: "offline" };
        // With the embedded broker the market's client connects in memory: the same MQTT packets
        // and auth hooks without a loopback TCP hop per message (bench/auction.ts measures both).
        const inMemory = !external && !cfg.brokerOverTcp;
        this.client = await connectMqtt({
          url: this.brokerUrl, username: cred?.username, password: cred?.password, logger: log,
          will: { topic: topics.coordinatorStatus, payload: encode(offline), qos: 1, retain: true },
          stream: inMemory ? () => this.broker!.connectInMemory() : undefined,
        });
        // mqtt.js leaves Nagle on: with delayed ACKs that costs ~40 ms per hop on small messages
        // (bench/auction.ts measured p50 submit-to-award 100 ms with it, a few ms without).
        const noDelay = () => (this.client?.stream as { setNoDelay?: (v: boolean) => void } | undefined)?.setNoDelay?.(true);
        noDelay();
        this.client.on("connect", noDelay);
      },
      close: async () => {
        const c = this.client;
        if (!c) return;
        const offline: CoordinatorStatus = { state: "offline" };
        await c.publishAsync(topics.coordinatorStatus, encode(offline), { qos: 1, retain: true }).catch(() => {});
        await c.endAsync().catch(() => {});
      },
    });
    const rng = new Rng(cfg.seed ?? this.clock.now());
    // Track records change on every task; they are written in batches at most every 100 ms (a crash
    // loses at most that much statistics, never a task).
    const dirty = new Map<string, { agentId: string; skill: string; rec: { successes: number; failures: number } }>();
    let flushTimer: Timer | undefined;
    const flush = async () => {
      flushTimer = undefined;
      const batch = [...dirty.values()];
      dirty.clear();
      await store.putRecords(batch).catch((err) => log.error({ err }, "track record write failed"));
    };
    this.records = new TrackRecords((agentId, skill, rec) => {
      dirty.set(`${agentId}|${skill}`, { agentId, skill, rec });
      flushTimer ??= this.clock.setTimer(100, () => void flush());
    });
    parts.push({ start: async () => {}, close: async () => (flushTimer?.cancel(), await flush()) });
    this.penalties = new Penalties(this.clock, cfg.penaltyBaseMs, cfg.penaltyMaxMs);
    this.registry = new Registry(this.clock, cfg.heartbeatTimeoutMs, (nodeId, why) => {
      log.info({ nodeId, why }, "node offline");
      this.counters.inc(`nodes.offline.${why}`);
      this.market.onNodeOffline(nodeId);
    });
    parts.push(this.registry);
    let inbound: Inbound | undefined;
    parts.push({
      start: async () => {
        const client = this.client!;
        this.market = new Market({
          settings: cfg, clock: this.clock, rng: () => rng.next(), store, registry: this.registry, records: this.records, penalties: this.penalties,
          counters: this.counters, logger: log.child({ part: "market" }),
          out: {
            publish: (topic, payload, opts) =>
              client.publish(topic, payload, opts, (err) => {
                if (err) log.warn({ err: { message: err.message }, topic }, "publish failed");
              }),
          },
        });
        inbound = new Inbound(client, this.registry, this.market, this.counters);
        await inbound.start();
        // Resume after retained node statuses had time to arrive (they follow the SUBACK).
        await this.market.start({ resumeDelayMs: 300 });
      },
      close: async () => {
        await inbound?.close();
        await this.market?.close();
      },
    });
    parts.push({
      start: async () => {
        const online: CoordinatorStatus = { state: "online", protocol: PROTOCOL_VERSION, fleetId: cfg.fleetId, startedAt: this.startedAt };
        await this.client!.publishAsync(topics.coordinatorStatus, encode(online), { qos: 1, retain: true });
        // After a reconnect (an external broker restarted and lost its retained messages, or
        // published our will on a network blip) presence must be re-asserted.
        this.client!.on("connect", () => this.client!.publish(topics.coordinatorStatus, encode(online), { qos: 1, retain: true }));
        const tick = () => {
          this.publishStats();
          this.statsTimer = this.clock.setTimer(cfg.statsIntervalMs, tick);
        };
        tick();
      },
      close: async () => this.statsTimer?.cancel(),
    });
    if (cfg.mdns && !external) {
      let adv: { start(): Promise<void>; close(): Promise<void> } | undefined;
      parts.push({
        start: async () => {
          try {
            const { MdnsAdvertiser } = await import("./advertise.ts");
            adv = new MdnsAdvertiser({ port: this.broker!.port, wsPort: this.broker!.wsPort, fleetId: cfg.fleetId, logger: log, upTimeoutMs: 1500 });
            await adv.start();
          } catch (err) {
            // Discovery is a convenience: without it nodes are given --broker URL.
            log.warn({ err: { message: (err as Error).message } }, "mDNS advertisement failed; nodes need the broker URL");
          }
        },
        close: async () => adv?.close(),
      });
    }
    this.parts = new PartGroup(parts, (err) => log.error({ err }, "error while closing"));
    await this.parts.start();
    log.info({ url: this.brokerUrl, port: this.port, wsPort: this.wsPort, insecure: cfg.insecure, dataDir: cfg.dataDir }, "coordinator started");
  }

  stats(): CoordinatorStats {
    const snap = this.market.snapshot();
    return {
      at: this.clock.now(),
      startedAt: this.startedAt,
      fleetId: this.config.fleetId,
      nodes: this.registry.list().map((n) => ({
        nodeId: n.nodeId, online: n.online, lastSeen: n.lastSeen,
        ...(n.status ? { deviceClass: n.status.deviceClass, slots: n.status.slots } : {}),
        ...(n.heartbeat ? { busy: n.heartbeat.busy } : {}),
        agents: (n.status?.agents ?? []).map((a) => ({ agentId: a.agentId, skills: a.skills, model: a.model, state: n.heartbeat?.agents.find((h) => h.agentId === a.agentId)?.state ?? a.state })),
      })),
      agents: this.records.all().map((r) => {
        const p = this.penalties.get(r.agentId);
        return { ...r, ...(p && p.until > this.clock.now() ? { excludedUntil: p.until } : {}), ...(p ? { consecutiveFailures: p.consecutive } : {}) };
      }),
      ...snap,
      counters: this.counters.snapshot(),
    };
  }

  private publishStats(): void {
    if (!this.client || !this.market) return;
    this.client.publish(topics.coordinatorStats, encode(this.stats()), { qos: 0, retain: true });
  }

  async close(): Promise<void> {
    await this.parts?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
