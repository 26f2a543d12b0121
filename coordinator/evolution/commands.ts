/**
 * Life cycle commands to nodes and their acks: each command is sent at QoS 1 on the node's own
 * `command` topic and re-sent with the same `commandId` until the node acks or `tries` run out
 * (nodes ack a re-sent command by its outcome: `exists`, `absent`), so a lost ack never makes an
 * agent twice. A node that never answers resolves as `no-answer`: the caller records it and the
 * architect tries again in a later cycle.
 */
import { randomBytes } from "node:crypto";
import type { Clock, Timer } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import { channels, type Command, type CommandAck, type Outbox } from "../../common/protocol.ts";

export type CommandOutcome = CommandAck | { status: "no-answer"; commandId: string; nodeId: string; agentId: string };

type WithoutMeta<C> = C extends unknown ? Omit<C, "commandId" | "sentAt"> : never;

interface InFlight {
  nodeId: string;
  command: Command;
  tries: number;
  timer?: Timer;
  resolve: (o: CommandOutcome) => void;
}

export class Commands {
  private readonly inFlight = new Map<string, InFlight>();
  private closed = false;

  constructor(private readonly o: { out: Outbox; clock: Clock; counters: Counters; ackTimeoutMs?: number; tries?: number }) {}

  send(nodeId: string, body: WithoutMeta<Command>): Promise<CommandOutcome> {
    const commandId = `cmd-${randomBytes(8).toString("hex")}`;
    const command = { ...body, commandId, sentAt: this.o.clock.now() } as Command;
    return new Promise((resolve) => {
      const f: InFlight = { nodeId, command, tries: 0, resolve };
      this.inFlight.set(commandId, f);
      this.transmit(f);
    });
  }

  private transmit(f: InFlight): void {
    if (this.closed) return;
    f.tries++;
    this.o.out.send(channels.nodeCommand, [f.nodeId], { ...f.command, sentAt: this.o.clock.now() });
    this.o.counters.inc(`evolution.commands.${f.command.kind}${f.tries > 1 ? ".resent" : ""}`);
    f.timer = this.o.clock.setTimer(this.o.ackTimeoutMs ?? 5000, () => {
      if (f.tries < (this.o.tries ?? 3)) return this.transmit(f);
      this.inFlight.delete(f.command.commandId);
      this.o.counters.inc("evolution.commands.no-answer");
      f.resolve({ status: "no-answer", commandId: f.command.commandId, nodeId: f.nodeId, agentId: f.command.agentId });
    });
  }

  /** An ack from `ack.nodeId` (inbound.ts has checked it was published on that node's topic). */
  onAck(ack: CommandAck): void {
    const f = this.inFlight.get(ack.commandId);
    if (!f || f.nodeId !== ack.nodeId) return this.o.counters.drop("command-ack.unknown");
    this.inFlight.delete(ack.commandId);
    f.timer?.cancel();
    f.resolve(ack);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  close(): void {
    this.closed = true;
    for (const f of this.inFlight.values()) {
      f.timer?.cancel();
      f.resolve({ status: "no-answer", commandId: f.command.commandId, nodeId: f.nodeId, agentId: f.command.agentId });
    }
    this.inFlight.clear();
  }
}
