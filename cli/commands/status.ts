import type { Command } from "commander";
import { readRetained, retainedOptions } from "../retained.ts";

/** `colony status`: the coordinator's retained fleet snapshot (nodes, agents, auctions, counters). */
export function register(program: Command): void {
  retainedOptions(program.command("status"))
    .description("show the fleet: coordinator presence, nodes, agents with their track records, open auctions, counters")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { topics } = await import("../../common/protocol.ts");
      const byTopic = await readRetained(o, [topics.coordinatorStatus, topics.coordinatorStats], "status");
      const got = { coordinator: byTopic.get(topics.coordinatorStatus), stats: byTopic.get(topics.coordinatorStats) };
      if (!got.coordinator && !got.stats) throw new ColonyError(CommonErrors.RETAINED_MISSING, "no coordinator status on this broker (is the coordinator running? a submitter credential may not read stats: use --data-dir or a coordinator credential)");
      if (o.json) return void process.stdout.write(JSON.stringify(got) + "\n");
      const c = got.coordinator as { state?: string; fleetId?: string } | undefined;
      process.stdout.write(`coordinator: ${c?.state ?? "unknown"}${c?.fleetId ? ` (fleet ${c.fleetId})` : ""}\n`);
      const st = got.stats as import("../../common/protocol.ts").CoordinatorStats | undefined;
      if (!st) return void process.stdout.write("no stats readable (submitter credentials cannot read colony/v1/coordinator/stats)\n");
      process.stdout.write(`nodes (${st.nodes.filter((n) => n.online).length} online / ${st.nodes.length}):\n`);
      for (const n of st.nodes) process.stdout.write(`  ${n.nodeId} ${n.online ? "online" : "offline"} ${n.deviceClass ?? ""} slots=${n.slots ?? "-"}${n.trainerGflops !== undefined ? ` trainer=${n.trainerGflops}GFLOP/s` : ""} agents=${n.agents.map((a) => `${a.agentId}[${a.skills.join(",")}:${a.state}]`).join(" ")}\n`);
      process.stdout.write(`agents (track record per skill):\n`);
      for (const a of st.agents) process.stdout.write(`  ${a.nodeId ? `${a.nodeId}/` : ""}${a.agentId} ${a.skill}: ${a.successes} ok / ${a.failures} failed${a.excludedUntil ? ` (excluded for ${Math.max(0, a.excludedUntil - st.at)} ms)` : ""}\n`);
      process.stdout.write(`open auctions: ${st.openAuctions.length}\n`);
      for (const a of st.openAuctions) process.stdout.write(`  ${a.taskId} attempt ${a.attempt}: ${a.bids}/${a.expected} bids\n`);
      process.stdout.write(`running tasks: ${st.runningTasks.length}\n`);
      process.stdout.write(`counters: ${Object.entries(st.counters).map(([k, v]) => `${k}=${v}`).join(" ")}\n`);
    });
}
