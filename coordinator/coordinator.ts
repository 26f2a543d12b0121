import { mkdir } from "node:fs/promises";
import path from "node:path";
import { systemClock, type Clock } from "../common/clock.ts";
import { Counters } from "../common/counters.ts";
import type { Lifecycle, NamedPart } from "../common/lifecycle.ts";
import { PartGroup } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import type { CoordinatorStats } from "../common/protocol.ts";
import { Rng } from "../common/random.ts";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import { createAedesAuthHooks, issueCredential, loadOrCreateFleetSecret } from "./auth.ts";
import { EmbeddedBroker, isWildcard } from "./broker.ts";
import type { CoordinatorConfig } from "./config.ts";
import { Architect } from "./architect/architect.ts";
import { Evolution } from "./evolution/evolution.ts";
import { NicheBook } from "./evolution/niche-book.ts";
import { Inbound } from "./inbound.ts";
import { ExperienceExport } from "./mind/export.ts";
import { ExperienceStore } from "./mind/experiences.ts";
import { Mind } from "./mind/mind.ts";
import type { startDistilJob } from "../trainer/distil/job.ts";
import type { Throughput } from "../trainer/throughput.ts";
import { ServedFiles } from "./mind/served-files.ts";
import { Trainers } from "./mind/trainers.ts";
import { ModelServer, type ModelServerOptions } from "./models/model-server.ts";
import { ModelStore } from "./models/model-store.ts";
import { CatalogPublisher } from "./models/catalog.ts";
import { PushDesk } from "./models/push-desk.ts";
import { RolloutTable } from "./models/rollouts.ts";
import { importSeedModels } from "./models/seed-models.ts";
import { deriveSigningKey } from "../common/model-manifest.ts";
import { CoordinatorLink } from "./link.ts";
import { CheckRunner } from "./market/checks.ts";
import { MarketEventBus } from "./market/events.ts";
import { FeedbackDesk } from "./market/feedback.ts";
import { TaskLookup } from "./market/lookup.ts";
import { MarketOutbox } from "./market/outbox.ts";
import { SubmitterQuota } from "./market/quota.ts";
import { Retention } from "./market/retention.ts";
import { Market } from "./market/market.ts";
import { Reputation } from "./market/reputation.ts";
import { TaskStore } from "./market/task-store.ts";
import { VerdictRelay } from "./market/verdicts.ts";
import { Presence } from "./presence.ts";
import { Registry } from "./registry.ts";
import { Roster } from "./roster.ts";
import { fleetStats, StatsPublisher } from "./stats.ts";
import type { FleetMetrics } from "./metrics/fleet-metrics.ts";
import type { MetricsHttpServer } from "../common/metrics-http.ts";
import type { DashboardServer } from "./dashboard/server.ts";
import { HomeAssistantDiscovery } from "./home-assistant/home-assistant.ts";
import { COLONY_VERSION } from "./home-assistant/discovery.ts";

/**
 * The coordinator process's root: it wires named parts and starts them in order, closing them in
 * reverse (common/lifecycle.ts):
 *
 *   broker -> store -> link -> registry -> reputation -> verdicts -> evolution -> experiences -> mind-export -> checks -> retention -> niches -> roster -> market -> model-store -> model-seeds -> model-catalog -> models -> model-push -> model-rollouts -> mind -> inbound
 *   -> architect -> presence -> stats -> metrics -> metrics-http -> home-assistant -> dashboard-feed -> dashboard (each opt-in) -> mdns
 *
 * The market decides; the parts that learn from it subscribe to its typed events (`events`):
 * reputation (track records and penalties) first, then verdicts to nodes, which send the updated
 * record; then evolution (lineage, fitness, life cycle commands), which the architect reads on its
 * schedule. A new learner (cold cache, metrics) is one more subscriber here.
 */
export class Coordinator implements Lifecycle {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private parts: PartGroup | undefined;
  private broker: EmbeddedBroker | undefined;
  private store: TaskStore | undefined;
  readonly counters: Counters;
  readonly events: MarketEventBus;
  registry!: Registry;
  market!: Market;
  reputation!: Reputation;
  evolution!: Evolution;
  /** The cold cache: every finished attempt as an experience (docs/mind.md). */
  experiences!: ExperienceStore;
  /** Distillation jobs (docs/mind.md). */
  mind!: Mind;
  /** Absent when `architect` is off. */
  architect: Architect | undefined;
  private link: CoordinatorLink | undefined;
  private startedAt = 0;

  /** The models the coordinator serves to nodes (docs/models.md); absent in an insecure fleet (no secret, no signing key). */
  modelStore: ModelStore | undefined;
  /** Every model x node transfer with its progress (docs/models.md, "Rollouts"); absent with the store. */
  rollouts: RolloutTable | undefined;
  /** The fleet's model signing key, public half only (what node credentials carry as `modelKey`); absent when insecure. */
  signingKey: { publicKey: string; keyId: string } | undefined;

  /** The model store (the same as `modelStore`). */
  get models(): ModelStore | undefined {
    return this.modelStore;
  }

  constructor(private readonly config: Readonly<CoordinatorConfig>, private readonly deps: { logger: Logger; clock?: Clock; modelServer?: Pick<ModelServerOptions, "maxInFlightPerNode" | "maxQueuedPerNode" | "corrupt">; startDistilJob?: typeof startDistilJob; measureTraining?: () => Promise<Throughput> }) {
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.counters = new Counters(this.logger, () => this.clock.now());
    this.events = new MarketEventBus((err, event) => this.logger.error({ err, event }, "a market event subscriber failed"));
  }

  /** URL the coordinator's own client uses (embedded: the address listened on and the bound port). */
  get brokerUrl(): string {
    return this.link?.url ?? "";
  }

  /** URL for nodes and submitters on other machines (the external broker's, or the embedded one's LAN address). */
  get lanUrl(): string {
    return this.broker?.lanUrl ?? this.brokerUrl;
  }

  get port(): number | undefined {
    return this.broker?.port;
  }
  /** Port of the Prometheus endpoint, once started (undefined when `metricsPort` is unset). */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }
  private metricsServer: MetricsHttpServer | undefined;
  /** The Prometheus registry (absent when `metricsPort` is unset). */
  metrics: FleetMetrics | undefined;

  get wsPort(): number | undefined {
    return this.broker?.wsPort;
  }
  /** Port of the live dashboard, once started (undefined when `dashboardPort` is unset). */
  get dashboardPort(): number | undefined {
    return this.dashboardServer?.port;
  }
  private dashboardServer: DashboardServer | undefined;

  async start(): Promise<void> {
    const cfg = this.config;
    const log = this.logger;
    this.startedAt = this.clock.now();
    await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    const external = cfg.broker !== undefined;
    if (external && cfg.dashboardPort !== undefined) {
      // The page reads the fleet over the embedded broker's WebSocket, with an observer credential signed by the fleet secret.
      throw new ColonyError(CommonErrors.CONFIG_INVALID, "invalid configuration:\n  dashboardPort needs the embedded broker (its WebSocket): unset broker, or unset dashboardPort");
    }
    // The secret signs every credential; an insecure fleet on an external broker needs none.
    const secret = cfg.insecure ? undefined : await loadOrCreateFleetSecret(cfg.dataDir);
    const parts: NamedPart[] = [];

    if (!external) {
      const hooks = cfg.insecure ? undefined : createAedesAuthHooks({ secret, insecure: false, logger: log.child({ part: "auth" }), onRefusal: (action) => this.counters.inc(`auth.refused.${action}`) });
      // The dashboard's page reads the fleet over MQTT-over-WebSocket: it turns the WebSocket on (any free port) when unset.
      const wsPort = cfg.wsPort ?? (cfg.dashboardPort !== undefined ? 0 : undefined);
      this.broker = new EmbeddedBroker({ host: cfg.host, port: cfg.port, wsPort, hooks, redis: cfg.brokerRedis, logger: log });
      parts.push(["broker", this.broker]);
    }
    const store = (this.store = new TaskStore(path.join(cfg.dataDir, "tasks")));
    parts.push(["store", store]);

    const broker = this.broker;
    const link = (this.link = new CoordinatorLink({
      // Read when the link starts: the embedded broker's port is known only once it listens.
      url: () => (external ? cfg.broker! : broker!.localUrl),
      credential: cfg.brokerUsername ? { username: cfg.brokerUsername, password: cfg.brokerPassword ?? "" } : secret ? issueCredential(secret, "coordinator") : undefined,
      stream: !external && !cfg.brokerOverTcp ? () => broker!.connectInMemory() : undefined,
      logger: log,
    }));
    parts.push(["link", link]);

    this.registry = new Registry(this.clock, cfg.heartbeatTimeoutMs, (err, event) => log.error({ err, event }, "a registry event subscriber failed"));
    this.registry.events.on("nodeOffline", ({ nodeId, why }) => {
      log.info({ nodeId, why }, "node offline");
      this.counters.inc(`nodes.offline.${why}`);
      this.market.onNodeOffline(nodeId);
    });
    parts.push(["registry", this.registry]);

    // Learners, in the order they must see each event.
    this.reputation = new Reputation({
      store, clock: this.clock, events: this.events, logger: log.child({ part: "reputation" }), penaltyBaseMs: cfg.penaltyBaseMs, penaltyMaxMs: cfg.penaltyMaxMs,
      trustedSubmitters: cfg.trustedSubmitters, verdictWindow: cfg.verdictWindow, untrustedWeight: cfg.untrustedWeight,
    });
    parts.push(["reputation", this.reputation]);
    parts.push(["verdicts", new VerdictRelay(this.events, this.reputation, link.outbox)]);
    // Lineage, fitness and life cycle commands (docs/evolution.md): a learner like the others.
    const evo = (this.evolution = new Evolution({
      store, events: this.events, registry: this.registry, reputation: this.reputation, out: link.outbox, clock: this.clock, counters: this.counters,
      logger: log.child({ part: "evolution" }), windowMs: cfg.evolution.windowMs,
    }));
    parts.push(["evolution", evo]);
    // The cold cache (docs/mind.md): a learner like the others, and its export to coordinator credentials.
    this.experiences = new ExperienceStore({
      store, events: this.events, clock: this.clock, counters: this.counters, logger: log.child({ part: "experiences" }),
      retentionMs: cfg.experienceRetentionMs, maxExperiences: cfg.maxExperiences,
    });
    parts.push(["experiences", this.experiences]);
    parts.push(["mind-export", new ExperienceExport({ link, experiences: this.experiences, counters: this.counters, logger: log.child({ part: "mind-export" }) })]);

    const checks = new CheckRunner(this.counters);
    parts.push(["checks", checks]);
    const quota = new SubmitterQuota(cfg, this.clock, this.counters);
    const marketOut = new MarketOutbox(link.outbox);
    // Before the market: recent results are back on the broker before tasks resume.
    parts.push(["retention", new Retention({ store, out: marketOut, clock: this.clock, counters: this.counters, logger: log.child({ part: "retention" }), settings: cfg })]);
    const rng = new Rng(cfg.seed ?? this.clock.now());
    // Niches of tasks without a skill, learned from their prompts (docs/scoring.md); before the market.
    const niches = cfg.unlabeledNiches ? new NicheBook({ store, clock: this.clock, logger: log.child({ part: "niches" }) }) : undefined;
    if (niches) parts.push(["niches", niches]);
    this.market = new Market({
      settings: cfg, clock: this.clock, rng: () => rng.next(), store, registry: this.registry, reputation: this.reputation, events: this.events,
      counters: this.counters, logger: log.child({ part: "market" }), out: link.outbox, checks, quota, ...(niches ? { niches } : {}),
    });
    // No auction before the nodes that were online before a restart are back (or a grace period).
    const roster = new Roster({ store, registry: this.registry, clock: this.clock, logger: log.child({ part: "roster" }), graceMs: cfg.resumeGraceMs });
    parts.push(["roster", roster]);
    parts.push(["market", { start: () => this.market.start({ gate: roster.ready }), close: () => this.market.close() }]);
    // A reconnect of the coordinator's own link (an external broker restarted): hold auctions until
    // the nodes are back, as after a restart.
    link.onReconnect(() => this.market.hold(roster.afterReconnect()));
    const feedback = new FeedbackDesk(store, this.events, this.clock, this.counters, (taskId) => this.market.isRunning(taskId));
    const lookup = new TaskLookup({ store, out: marketOut, clock: this.clock, counters: this.counters, quota });
    // Pushed models: the signed store, and its bytes to nodes over MQTT, one binary frame per fetch
    // (models/model-server.ts). The signing key is derived from the fleet secret: none when insecure.
    let modelServer: ModelServer | undefined;
    let trainers: Trainers | undefined;
    if (secret) {
      const key = deriveSigningKey(secret);
      this.signingKey = { publicKey: key.publicKey, keyId: key.keyId };
      const modelStore = (this.modelStore = new ModelStore({ dir: path.join(cfg.dataDir, "models"), tasks: store, key, now: () => this.clock.now(), logger: log.child({ part: "model-store" }) }));
      parts.push(["model-store", modelStore]);
      // The seed models get signed manifests at the fleet's first start (a no-op afterwards).
      parts.push(["model-seeds", { start: async () => void (await importSeedModels(modelStore, { logger: log.child({ part: "model-store" }) })), close: async () => {} }]);
      parts.push(["model-catalog", new CatalogPublisher({ store: modelStore, keyId: key.keyId, out: link.outbox, now: () => this.clock.now() })]);
      // Besides the signed models, a distillation job's experiences for the trainer node it was given to (mind/served-files.ts).
      const served = new ServedFiles(modelStore);
      trainers = new Trainers({ registry: this.registry, served, commands: evo.commands, settings: cfg.mind, counters: this.counters, logger: log.child({ part: "mind" }), ...(this.deps.measureTraining ? { measure: this.deps.measureTraining } : {}) });
      modelServer = new ModelServer({
        store: served, publish: (topic, payload) => link.client.publish(topic, payload, { qos: 0 }), counters: this.counters, logger: log.child({ part: "models" }), ...this.deps.modelServer,
      });
      parts.push(["models", modelServer]);
      const rollouts = (this.rollouts = new RolloutTable({ out: link.outbox, clock: this.clock, counters: this.counters, known: (sha256) => modelStore.get(sha256) !== undefined }));
      parts.push(["model-push", new PushDesk({ link, store: modelStore, commands: evo.commands, registry: this.registry, rollouts, counters: this.counters, logger: log.child({ part: "model-push" }) })]);
      // Closed before the push desk: a push still waiting on a node's transfer is let go at once.
      parts.push(["model-rollouts", rollouts]);
    }
    // The collective mind (docs/mind.md): distillation jobs in their own process, gate, signed model, spawned child.
    const mind = (this.mind = new Mind({
      store, dataDir: cfg.dataDir, experiences: this.experiences, models: this.modelStore, evolution: evo, registry: this.registry, link,
      clock: this.clock, counters: this.counters, logger: log.child({ part: "mind" }), settings: cfg.mind, ...(this.deps.startDistilJob ? { startJob: this.deps.startDistilJob } : {}), trainers,
    }));
    parts.push(["mind", mind]);
    parts.push(["inbound", new Inbound(link, { registry: this.registry, market: this.market, feedback, lookup, commands: evo.commands, models: modelServer, rollouts: this.rollouts, mind }, this.counters)]);
    if (cfg.architect) {
      this.architect = new Architect({
        store, evolution: evo, registry: this.registry, out: link.outbox, clock: this.clock, counters: this.counters, logger: log.child({ part: "architect" }),
        settings: cfg.evolution, seed: cfg.seed ?? 0, distil: (d) => mind.fromDecision(d),
      });
      parts.push(["architect", this.architect]);
    }
    parts.push(["presence", new Presence(link, { fleetId: cfg.fleetId, startedAt: () => this.startedAt })]);
    const statsSources = { fleetId: cfg.fleetId, startedAt: () => this.startedAt, registry: this.registry, market: this.market, reputation: this.reputation, counters: this.counters };
    parts.push(["stats", new StatsPublisher(statsSources, link.outbox, this.clock, cfg.statsIntervalMs)]);
    // Operators' views (docs/operations.md): Prometheus on its own HTTP port, Home Assistant discovery over MQTT.
    if (cfg.metricsPort !== undefined) {
      // Loaded only when asked for: prom-client costs ~60 ms of start-up.
      const [{ FleetMetrics }, { MetricsHttpServer }] = await Promise.all([import("./metrics/fleet-metrics.ts"), import("../common/metrics-http.ts")]);
      const metrics = (this.metrics = new FleetMetrics({ events: this.events, counters: this.counters, registry: this.registry, market: this.market, maxAttempts: cfg.maxAttempts }));
      parts.push(["metrics", metrics]);
      this.metricsServer = new MetricsHttpServer({ host: cfg.host, port: cfg.metricsPort, source: metrics, logger: log.child({ part: "metrics" }) });
      parts.push(["metrics-http", this.metricsServer]);
    }
    if (cfg.homeAssistant) {
      parts.push(["home-assistant", new HomeAssistantDiscovery({
        client: () => link.client, registry: this.registry, events: this.events, counters: this.counters, clock: this.clock, logger: log.child({ part: "home-assistant" }),
        prefix: cfg.homeAssistantPrefix, fleetId: cfg.fleetId, version: COLONY_VERSION, intervalMs: cfg.statsIntervalMs,
      })]);
    }
    if (cfg.dashboardPort !== undefined) {
      // The live dashboard (docs/operations.md): a sanitized feed of the market for observers, and the page on its own HTTP port.
      const [{ DashboardFeed }, { DashboardServer }] = await Promise.all([import("./dashboard/feed.ts"), import("./dashboard/server.ts")]);
      parts.push(["dashboard-feed", new DashboardFeed({ events: this.events, registry: this.registry, out: link.outbox, clock: this.clock, intervalMs: cfg.statsIntervalMs, showPrompts: cfg.dashboardShowPrompts })]);
      this.dashboardServer = new DashboardServer({
        host: cfg.host, port: cfg.dashboardPort, fleetId: cfg.fleetId, wsPort: () => this.broker?.wsPort, showPrompts: cfg.dashboardShowPrompts, logger: log.child({ part: "dashboard" }),
        credential: () => (secret ? issueCredential(secret, "observer", "dashboard") : undefined),
      });
      parts.push(["dashboard", this.dashboardServer]);
    }
    if (cfg.mdns && !external) parts.push(["mdns", this.mdnsPart()]);

    this.parts = new PartGroup(parts, (err, part) => log.error({ err, part }, "error while closing"));
    await this.parts.start();
    log.info({ url: this.brokerUrl, port: this.port, wsPort: this.wsPort, insecure: cfg.insecure, dataDir: cfg.dataDir, parts: this.parts.names }, "coordinator started");
  }

  /** Discovery is a convenience: without it nodes are given the broker URL, so a failure only warns. */
  private mdnsPart(): Lifecycle {
    let adv: Lifecycle | undefined;
    return {
      start: async () => {
        try {
          const { MdnsAdvertiser } = await import("./advertise.ts");
          // Bound to one address: announce on that interface, with that address in the TXT url.
          const host = this.config.host;
          const specific = !isWildcard(host) ? { interface: host, brokerUrl: this.broker!.localUrl } : {};
          adv = new MdnsAdvertiser({ port: this.broker!.port, wsPort: this.broker!.wsPort, fleetId: this.config.fleetId, logger: this.logger, upTimeoutMs: 1500, ...specific });
          await adv.start();
        } catch (err) {
          this.logger.warn({ err: { message: (err as Error).message } }, "mDNS advertisement failed; nodes need the broker URL");
        }
      },
      close: async () => adv?.close(),
    };
  }

  /** Retained messages held by the embedded broker (undefined with an external broker). */
  async retainedMessages(): Promise<number | undefined> {
    return this.broker?.retainedCount();
  }

  /** Tasks in the store (finished ones leave after `taskRetentionMs`). */
  async storedTasks(): Promise<number> {
    return (await this.store?.countTasks()) ?? 0;
  }

  stats(): CoordinatorStats {
    return fleetStats({ fleetId: this.config.fleetId, startedAt: () => this.startedAt, registry: this.registry, market: this.market, reputation: this.reputation, counters: this.counters }, this.clock.now());
  }

  async close(): Promise<void> {
    await this.parts?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
