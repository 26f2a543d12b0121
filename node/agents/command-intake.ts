/**
 * A life cycle command's way in (like coordinator/market/intake.ts for submits): decode against
 * channels.nodeCommand's schema; a payload that fails but still names a valid `commandId`,
 * `agentId` and `kind` becomes a refusal to ack (the coordinator waits on that ack), anything
 * else a counted drop (nobody to tell). A spawn whose genome is the problem is refused with
 * GENOME_INVALID, so the coordinator can tell a bad genome from a bad envelope.
 */
import { GenomeSchema } from "../../common/genome.ts";
import { channels, COMMAND_KINDS, decode, IdSchema, type Command, type WireError } from "../../common/protocol.ts";
import { NodeErrors } from "../errors.ts";

export type CommandKind = Command["kind"];

export type CommandIntake =
  | { kind: "command"; command: Command }
  | { kind: "refuse"; commandId: string; agentId: string; command: CommandKind; error: WireError }
  | { kind: "drop"; reason: string };

const KINDS: readonly string[] = COMMAND_KINDS;

export function takeCommand(payload: Buffer): CommandIntake {
  const d = decode(channels.nodeCommand.schema, payload);
  if (d.ok) return { kind: "command", command: d.value };
  if (d.code === "PAYLOAD_TOO_LARGE") return { kind: "drop", reason: `command.${d.code}` };
  let raw: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(payload.toString("utf8"));
    if (v && typeof v === "object" && !Array.isArray(v)) raw = v as Record<string, unknown>;
  } catch {}
  const { commandId, agentId, kind } = raw ?? {};
  if (!IdSchema.safeParse(commandId).success || !IdSchema.safeParse(agentId).success || typeof kind !== "string" || !KINDS.includes(kind)) {
    return { kind: "drop", reason: `command.${d.code}` };
  }
  let error: WireError = { code: d.code, message: d.message.slice(0, 4000) };
  if (kind === "spawn") {
    const g = GenomeSchema.safeParse(raw!.genome);
    if (!g.success) {
      const first = g.error.issues.slice(0, 5).map((i) => `genome.${i.path.join(".")}: ${i.message}`);
      error = { code: NodeErrors.GENOME_INVALID, message: first.join("; ").slice(0, 1000) };
    }
  }
  return { kind: "refuse", commandId: commandId as string, agentId: agentId as string, command: kind as CommandKind, error };
}
