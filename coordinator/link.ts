/**
 * The coordinator's own MQTT client: to the embedded broker in memory (the same MQTT packets and
 * auth hooks without a loopback TCP hop per message; bench/auction.ts measures both) or to an
 * external broker over the network. Its last will says `offline` on the retained coordinator
 * status; close() says it itself. Publishing goes through `outbox` (typed, common/protocol.ts).
 */
import type { Duplex } from "node:stream";
import type { Lifecycle } from "../common/lifecycle.ts";
import type { Logger } from "../common/logger.ts";
import { closeClient, connectMqtt, type MqttClient } from "../common/mqtt-connect.ts";
import { channels, encode, Outbox, type CoordinatorStatus } from "../common/protocol.ts";

export interface CoordinatorLinkOptions {
  url: () => string;
  credential: { username: string; password: string } | undefined;
  /** Opens an in-memory stream to the embedded broker; undefined = dial `url`. */
  stream?: (() => Duplex) | undefined;
  logger: Logger;
}

export class CoordinatorLink implements Lifecycle {
  private c: MqttClient | undefined;
  /** The broker URL, once started. */
  url: string | undefined;
  /** Messages published before the client is up are dropped with a warning, never thrown. */
  readonly outbox = new Outbox({
    publish: (topic, payload, opts) => {
      const c = this.c;
      if (!c) return this.o.logger.warn({ topic }, "publish before the coordinator's MQTT client connected; dropped");
      c.publish(topic, payload, opts, (err) => {
        if (err) this.o.logger.warn({ err: { message: err.message }, topic }, "publish failed");
      });
    },
  });

  private readonly reconnectListeners: (() => void)[] = [];

  constructor(private readonly o: CoordinatorLinkOptions) {}

  /** Called after every reconnection (not the first connection): the broker may have restarted. */
  onReconnect(fn: () => void): void {
    this.reconnectListeners.push(fn);
  }

  get client(): MqttClient {
    if (!this.c) throw new Error("the coordinator's MQTT client is not connected");
    return this.c;
  }

  async start(): Promise<void> {
    const offline: CoordinatorStatus = { state: "offline" };
    const ch = channels.coordinatorStatus;
    this.url = this.o.url();
    this.c = await connectMqtt({
      url: this.url, username: this.o.credential?.username, password: this.o.credential?.password, logger: this.o.logger,
      will: { topic: ch.topic(), payload: encode(offline), qos: ch.qos, retain: ch.retain },
      stream: this.o.stream,
    });
    this.c.on("connect", () => {
      for (const fn of this.reconnectListeners) fn();
    });
  }

  async close(): Promise<void> {
    const c = this.c;
    if (!c) return;
    this.c = undefined;
    const offline: CoordinatorStatus = { state: "offline" };
    await closeClient(c, { topic: channels.coordinatorStatus.topic(), payload: encode(offline), retain: true });
  }
}
