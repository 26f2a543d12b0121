import { mkdir } from "node:fs/promises";
import path from "node:path";
import { systemClock, type Clock } from "../common/clock.ts";
import { Counters } from "../common/counters.ts";
import type { Lifecycle, NamedPart } from "../common/lifecycle.ts";
import { PartGroup } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import type { CoordinatorStats } from "../common/protocol.ts";
import { Rng } from "../common/random.ts";
import { createAedesAuthHooks, issueCredential, loadOrCreateFleetSecret } from "./auth.ts";
import { EmbeddedBroker, isWildcard } from "./broker.ts";
import type { CoordinatorConfig } from "./config.ts";
import { Architect } from "./architect/architect.ts";
import { Evolution } from "./evolution/evolution.ts";
import { NicheBook } from "./evolution/niche-book.ts";
import { Inbound } from "./inbound.ts";
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

/**
 * The coordinator process's root: it wires named parts and starts them in order, closing them in
 * reverse (common/lifecycle.ts):
 *
 *   broker -> store -> link -> registry -> reputation -> verdicts -> evolution -> checks -> retention -> niches -> roster -> market -> inbound
 *   -> architect -> presence -> stats -> mdns
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
  /** Absent when `architect` is off. */
  architect: Architect | undefined;
  private link: CoordinatorLink | undefined;
  private startedAt = 0;

  constructor(private readonly config: Readonly<CoordinatorConfig>, deps: { logger: Logger; clock?: Clock }) {
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
    const parts: NamedPart[] = [];

    if (!external) {
      const hooks = cfg.insecure ? undefined : createAedesAuthHooks({ secret, insecure: false, logger: log.child({ part: "auth" }) });
      this.broker = new EmbeddedBroker({ host: cfg.host, port: cfg.port, wsPort: cfg.wsPort, hooks, logger: log });
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
    const feedback = new FeedbackDesk(store, this.events, this.clock, this.counters, (taskId) => this.market.isRunning(taskId));
    const lookup = new TaskLookup({ store, out: marketOut, clock: this.clock, counters: this.counters, quota });
    parts.push(["inbound", new Inbound(link, { registry: this.registry, market: this.market, feedback, lookup, commands: evo.commands }, this.counters)]);
    if (cfg.architect) {
      this.architect = new Architect({
        store, evolution: evo, registry: this.registry, out: link.outbox, clock: this.clock, counters: this.counters, logger: log.child({ part: "architect" }),
        settings: cfg.evolution, seed: cfg.seed ?? 0,
      });
      parts.push(["architect", this.architect]);
    }
    parts.push(["presence", new Presence(link, { fleetId: cfg.fleetId, startedAt: () => this.startedAt })]);
    const statsSources = { fleetId: cfg.fleetId, startedAt: () => this.startedAt, registry: this.registry, market: this.market, reputation: this.reputation, counters: this.counters };
    parts.push(["stats", new StatsPublisher(statsSources, link.outbox, this.clock, cfg.statsIntervalMs)]);
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
