import type { Command } from "commander";

/** `colony status`: the coordinator's retained fleet snapshot (nodes, agents, auctions, counters). */
export function register(program: Command): void {
  program
    .command("status")
    .description("show the fleet: coordinator presence, nodes, agents with their track records, open auctions, counters")
    .option("--url <url>", "broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--username <name>", "MQTT username")
    .option("--password <pw>", "MQTT password")
    .option("--credentials <file>", "credentials JSON file (default $COLONY_CREDENTIALS)")
    .option("--data-dir <dir>", "on the coordinator's host: issue a coordinator credential from this folder's fleet secret")
    .option("--wait-ms <n>", "how long to wait for the retained snapshot (default 2000)")
    .option("--json", "print the snapshot as one JSON line")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { topics } = await import("../../common/protocol.ts");
      const { connectClient } = await import("../../coordinator/submitter.ts");
      const { cliEnv } = await import("../env.ts");
      const s = (v: unknown) => (typeof v === "string" ? v : undefined);
      let { username, password } = { username: s(o.username), password: s(o.password) };
      if (!username && s(o.dataDir)) {
        const { loadOrCreateFleetSecret, issueCredential } = await import("../../coordinator/auth.ts");
        ({ username, password } = issueCredential(await loadOrCreateFleetSecret(s(o.dataDir)!), "coordinator"));
      }
      const env = cliEnv();
      const logger = createLogger({ level: env.logLevel ?? "warn", name: "status" });
      (await import("../warnings.ts")).warnPasswordFlag(o.password);
      const client = await connectClient({ url: s(o.url), username, password, credentials: s(o.credentials) ?? env.credentials, defaultUrl: env.broker, logger });
      const got: Record<string, unknown> = {};
      try {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intArg("--wait-ms", s(o.waitMs)) ?? 2000);
          client.on("message", (topic, payload) => {
            try {
              got[topic === topics.coordinatorStats ? "stats" : "coordinator"] = JSON.parse(payload.toString("utf8"));
            } catch {}
            if (got.stats && got.coordinator) {
              clearTimeout(timer);
              resolve();
            }
          });
          client.subscribeAsync([topics.coordinatorStatus, topics.coordinatorStats], { qos: 0 }).catch(() => {});
        });
      } finally {
        await client.endAsync().catch(() => {});
      }
      if (!got.coordinator && !got.stats) throw new ColonyError(CommonErrors.MQTT_CONNECT_FAILED, "no coordinator status on this broker (is the coordinator running? a submitter credential may not read stats: use --data-dir or a coordinator credential)");
      if (o.json) return void process.stdout.write(JSON.stringify(got) + "\n");
      const c = got.coordinator as { state?: string; fleetId?: string } | undefined;
      process.stdout.write(`coordinator: ${c?.state ?? "unknown"}${c?.fleetId ? ` (fleet ${c.fleetId})` : ""}\n`);
      const st = got.stats as import("../../common/protocol.ts").CoordinatorStats | undefined;
      if (!st) return void process.stdout.write("no stats readable (submitter credentials cannot read colony/v1/coordinator/stats)\n");
      process.stdout.write(`nodes (${st.nodes.filter((n) => n.online).length} online / ${st.nodes.length}):\n`);
      for (const n of st.nodes) process.stdout.write(`  ${n.nodeId} ${n.online ? "online" : "offline"} ${n.deviceClass ?? ""} slots=${n.slots ?? "-"} agents=${n.agents.map((a) => `${a.agentId}[${a.skills.join(",")}:${a.state}]`).join(" ")}\n`);
      process.stdout.write(`agents (track record per skill):\n`);
      for (const a of st.agents) process.stdout.write(`  ${a.nodeId ? `${a.nodeId}/` : ""}${a.agentId} ${a.skill}: ${a.successes} ok / ${a.failures} failed${a.excludedUntil ? ` (excluded for ${Math.max(0, a.excludedUntil - st.at)} ms)` : ""}\n`);
      process.stdout.write(`open auctions: ${st.openAuctions.length}\n`);
      for (const a of st.openAuctions) process.stdout.write(`  ${a.taskId} attempt ${a.attempt}: ${a.bids}/${a.expected} bids\n`);
      process.stdout.write(`running tasks: ${st.runningTasks.length}\n`);
      process.stdout.write(`counters: ${Object.entries(st.counters).map(([k, v]) => `${k}=${v}`).join(" ")}\n`);
    });
}
