/**
 * The node's MQTT session with the coordinator: connect (last will = retained `offline` status),
 * subscribe, decode every inbound message once against its channel's schema and hand it to one
 * handler, and publish through a typed Outbox, the only port the other parts get. Messages that
 * fail to decode are counted and logged at most once per reason per 10 s (common/counters.ts).
 * Reconnects are mqtt.js's (backoff 200 ms doubling to 5 s); `onConnect` listeners re-register.
 * Announces and awards carry the coordinator's clock (`sentAt`); the link learns from them where
 * that clock stands against the node's (common/clock.ts SenderClock), so a node whose clock is off
 * by minutes still meets every window, and a message that sat in a queue still shows up late.
 * Life cycle commands (spawn, retire, wake) come on the node's own `command` topic; one that fails
 * to decode but names its command is still handed on, as a refusal to ack (agents/command-intake.ts).
 */
import { SenderClock, type Clock } from "../common/clock.ts";
import type { Counters } from "../common/counters.ts";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import { closeClient, connectMqtt, type MqttClient } from "../common/mqtt-connect.ts";
import { channels, decode, encode, Outbox, topics, type Announce, type Award, type Cancel, type Command, type CoordinatorStatus, type NodeStatus, type Verdict } from "../common/protocol.ts";
import { takeCommand, type CommandIntake } from "./agents/command-intake.ts";

/**
 * What the node does with each inbound message. Announce and award times are on the coordinator's
 * clock: `link.coordinatorClock` has already seen the message and converts them.
 */
export interface NodeInbound {
  announce(a: Announce): void;
  award(a: Award): void;
  cancel(c: Cancel): void;
  verdict(v: Verdict): void;
  coordinatorStatus(s: CoordinatorStatus): void;
  /** A life cycle command (its `sentAt` already observed). */
  command(c: Command): void;
  /** A command that failed to decode but named itself: to be acked `refused` with `error`. */
  badCommand(r: Extract<CommandIntake, { kind: "refuse" }>): void;
  /** A `model-chunk` frame, undecoded (binary: node/models/model-fetcher.ts decodes it). */
  modelChunk?(payload: Buffer): void;
}

export interface NodeLinkOptions {
  nodeId: string;
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  clock: Clock;
  counters: Counters;
  logger: Logger;
}

export class NodeLink implements Lifecycle {
  private client: MqttClient | undefined;
  private handlers: NodeInbound | undefined;
  private readonly connectListeners: (() => void)[] = [];
  private closing = false;
  readonly outbox: Outbox;
  /** The coordinator's clock against ours, from the `sentAt` of every announce and award. */
  readonly coordinatorClock = new SenderClock();
  /** Skills whose announce topic this node is subscribed to (`listen`). */
  private readonly skills = new Set<string>();

  constructor(private readonly o: NodeLinkOptions) {
    this.outbox = new Outbox({
      publish: (topic, payload, opts) => {
        // mqtt.js queues while reconnecting; before the first connection there is nobody to tell.
        this.client?.publish(topic, payload, opts, (err) => {
          if (err && !this.closing) o.logger.warn({ topic, err: { message: err.message } }, "publish failed");
        });
      },
    });
  }

  /** Set once, before start(), by the root that wires the parts. */
  route(handlers: NodeInbound): void {
    this.handlers = handlers;
  }

  /** Called after every (re)connection, the first included. */
  onConnect(fn: () => void): void {
    this.connectListeners.push(fn);
  }

  /**
   * Hears the announces of exactly these skills (plus those of tasks without a skill, always); `+`
   * for every skill's.
   * Returns a promise when it subscribed to a new skill, settled once the broker confirmed it: the
   * status that tells the coordinator about the skill must wait for it, or the first auction for
   * the skill would be announced before the node hears it (presence.ts). mqtt.js subscribes again
   * after a reconnect to what is subscribed here.
   */
  listen(skills: Iterable<string>): Promise<void> | undefined {
    const want = new Set(skills);
    const added = [...want].filter((s) => !this.skills.has(s));
    const removed = [...this.skills].filter((s) => !want.has(s));
    if (added.length === 0 && removed.length === 0) return undefined;
    for (const s of added) this.skills.add(s);
    for (const s of removed) this.skills.delete(s);
    const c = this.client;
    if (!c) return undefined; // start() subscribes to the set
    if (removed.length) c.unsubscribe(removed.map((s) => channels.skillAnnounce.topic(s)));
    if (added.length === 0) return undefined;
    return c.subscribeAsync(added.map((s) => channels.skillAnnounce.topic(s)), { qos: 1 }).then(
      () => undefined,
      (err: Error) => this.o.logger.warn({ err: { message: err.message }, skills: added }, "subscribing to skill announces failed"),
    );
  }

  /**
   * Publishes raw bytes at QoS 1 and resolves at the PUBACK (a trained child's chunk frames: one
   * in flight at a time keeps the coordinator's memory bounded). Rejects when not connected.
   */
  async publishBytes(topic: string, payload: Buffer): Promise<void> {
    const c = this.client;
    if (!c?.connected) throw new ColonyError(CommonErrors.ALREADY_CLOSED, "the node is not connected to the broker");
    await c.publishAsync(topic, payload, { qos: 1 });
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  async start(): Promise<void> {
    const { nodeId } = this.o;
    const offline: NodeStatus = { state: "offline", nodeId };
    const will = channels.nodeStatus;
    const client = await connectMqtt({
      // A client id carries the credential's username (the broker refuses any other, docs/security.md).
      url: this.o.url, username: this.o.username, password: this.o.password, logger: this.o.logger, clientId: this.o.username ? `${this.o.username}:daemon` : `node-${nodeId}`,
      will: { topic: will.topic(nodeId), payload: encode(offline), qos: will.qos, retain: will.retain },
      reconnectMinMs: 200, reconnectMaxMs: 5000,
    });
    this.client = client;
    client.on("message", (topic, payload, packet) => this.dispatch(topic, payload, packet.retain));
    client.on("connect", () => {
      for (const fn of this.connectListeners) fn();
    });
    const subs = [channels.announce.topic(), ...[...this.skills].map((s) => channels.skillAnnounce.topic(s)), channels.nodeAnnounce.topic(nodeId), channels.coordinatorStatus.topic(), channels.nodeAward.topic(nodeId), channels.nodeCancel.topic(nodeId), channels.nodeVerdict.topic(nodeId), channels.nodeCommand.topic(nodeId)];
    await client.subscribeAsync(subs, { qos: 1 });
    // Model chunks at QoS 0: the fetcher asks again for what is lost, and a PUBACK per MiB is a round trip.
    await client.subscribeAsync(topics.nodeModelChunk(nodeId), { qos: 0 });
    for (const fn of this.connectListeners) fn();
  }

  /** Publishes the retained offline status itself (a clean shutdown fires no will) and disconnects. */
  async close(): Promise<void> {
    const c = this.client;
    if (!c || this.closing) return;
    this.closing = true;
    const offline: NodeStatus = { state: "offline", nodeId: this.o.nodeId, at: this.o.clock.now() };
    await closeClient(c, { topic: channels.nodeStatus.topic(this.o.nodeId), payload: encode(offline), retain: true });
  }

  private isSkillAnnounce(topic: string): boolean {
    const prefix = `${channels.announce.topic()}/`;
    return topic.startsWith(prefix) && (this.skills.has("+") || this.skills.has(topic.slice(prefix.length)));
  }

  private decode<S extends Parameters<typeof decode>[0]>(schema: S, kind: string, payload: Buffer) {
    const m = decode(schema, payload);
    if (!m.ok) this.o.counters.drop(`${kind}.${m.code}`, { why: m.message.slice(0, 200) });
    return m.ok ? m.value : undefined;
  }

  private dispatch(topic: string, payload: Buffer, retained: boolean): void {
    const h = this.handlers;
    if (!h || this.closing) return;
    // Only the coordinator's presence is retained by design; a retained announce or award would be
    // replayed to the node on every reconnect.
    if (retained && topic !== channels.coordinatorStatus.topic()) return this.o.counters.drop("retained", { topic: topic.slice(0, 200) });
    const receivedAt = this.o.clock.now();
    const id = this.o.nodeId;
    try {
      // A task with a skill is announced on the skill's topic, a private task's on the node's own
      // topic; both are handled like any other.
      if (topic === channels.announce.topic() || topic === channels.nodeAnnounce.topic(id) || this.isSkillAnnounce(topic)) {
        const a = this.decode(channels.announce.schema, "announce", payload);
        if (!a) return;
        this.coordinatorClock.observe(a.sentAt, receivedAt);
        h.announce(a);
      } else if (topic === channels.nodeAward.topic(id)) {
        const a = this.decode(channels.nodeAward.schema, "award", payload);
        if (!a) return;
        this.coordinatorClock.observe(a.sentAt, receivedAt);
        h.award(a);
      } else if (topic === channels.nodeCancel.topic(id)) {
        const c = this.decode(channels.nodeCancel.schema, "cancel", payload);
        if (c) h.cancel(c);
      } else if (topic === topics.nodeModelChunk(id)) {
        if (h.modelChunk) h.modelChunk(payload);
        else this.o.counters.drop("model-chunk.unexpected");
      } else if (topic === channels.nodeVerdict.topic(id)) {
        const v = this.decode(channels.nodeVerdict.schema, "verdict", payload);
        if (v) h.verdict(v);
      } else if (topic === channels.nodeCommand.topic(id)) {
        const c = takeCommand(payload);
        if (c.kind === "drop") return this.o.counters.drop(c.reason);
        if (c.kind === "refuse") {
          this.o.counters.drop(`command.${c.error.code}`, { why: c.error.message.slice(0, 200) });
          return h.badCommand(c);
        }
        this.coordinatorClock.observe(c.command.sentAt, receivedAt);
        h.command(c.command);
      } else if (topic === channels.coordinatorStatus.topic()) {
        // An empty retained payload clears the status (MQTT 3.1.1 §3.3.1.3): nothing to do.
        if (payload.length === 0) return;
        const s = this.decode(channels.coordinatorStatus.schema, "coordinator-status", payload);
        if (s) h.coordinatorStatus(s);
      } else this.o.counters.drop("unknown-topic", { topic: topic.slice(0, 200) });
    } catch (err) {
      // Nothing a peer sends may take the node down.
      this.o.counters.drop("handler-error", { topic: topic.slice(0, 200), err: { message: (err as Error).message } });
    }
  }
}
