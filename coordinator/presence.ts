/**
 * The coordinator's retained `online` status, published once the market listens, and again after
 * every reconnect (an external broker that restarted lost it, or published our will on a network
 * blip). Nodes re-register when they see a new `startedAt`.
 */
import type { Lifecycle } from "../common/lifecycle.ts";
import { channels, PROTOCOL_VERSION, type CoordinatorStatus } from "../common/protocol.ts";
import type { CoordinatorLink } from "./link.ts";

export class Presence implements Lifecycle {
  private readonly republish = () => this.publish();
  constructor(private readonly link: CoordinatorLink, private readonly status: { fleetId: string; startedAt: () => number }) {}

  private publish(): void {
    const online: CoordinatorStatus = { state: "online", protocol: PROTOCOL_VERSION, fleetId: this.status.fleetId, startedAt: this.status.startedAt() };
    this.link.outbox.send(channels.coordinatorStatus, [], online);
  }

  async start(): Promise<void> {
    this.publish();
    this.link.client.on("connect", this.republish);
  }

  async close(): Promise<void> {
    try {
      this.link.client.off("connect", this.republish);
    } catch {
      // The link is already closed.
    }
  }
}
