import type { Command } from "commander";

/** `colony coordinator`: the broker (embedded aedes or external), the task market and the registry. */
export function register(program: Command): void {
  program
    .command("coordinator")
    .description("run the coordinator: embedded MQTT broker (or --broker URL), node registry, task market with LevelDB store")
    .option("--port <n>", "MQTT TCP port of the embedded broker, 0-65535 (default 1883)")
    .option("--ws-port <n>", "also serve MQTT over WebSocket on this port")
    .option("--host <addr>", "address the embedded broker listens on (default 0.0.0.0)")
    .option("--broker <url>", "use this external broker (e.g. mqtt://host:1883 for mosquitto) instead of the embedded one")
    .option("--broker-redis <url>", "the embedded broker joins the broker cluster of this Redis (redis://host:6379); more members: `colony broker` (docs/scale.md)")
    .option("--data-dir <dir>", "folder for the task store and fleet secret (default $COLONY_DATA_DIR or ~/.colony)")
    .option("--insecure", "no MQTT authentication on the embedded broker (trusted network or demo only)")
    .option("--bid-window-ms <n>", "longest an auction stays open; it closes earlier when every eligible node answered (default 300)")
    .option("--max-attempts <n>", "attempts per task before an error result (default 3)")
    .option("--ack-within-ms <n>", "time a winner has to acknowledge its award (default 2000)")
    .option("--fleet-id <id>", "fleet id in the coordinator status and mDNS record (default \"default\")")
    .option("--no-mdns", "do not advertise the broker by mDNS")
    .option("--no-architect", "no architect: agents are neither spawned nor retired (the lineage is still kept)")
    .option("--architect-dry-run", "the architect plans and publishes each cycle but sends nothing; see `colony architect plan`")
    .option("--metrics-port <n>", "serve Prometheus metrics on http://HOST:N/metrics (0 = any port; default off); docs/operations.md")
    .option("--dashboard-port <n>", "serve the live dashboard on http://HOST:N/ (0 = any port; default off; turns --ws-port on; anyone reaching it can observe); docs/operations.md")
    .option("--home-assistant", "publish Home Assistant MQTT discovery configs and states (docs/operations.md)")
    .option("--config <file>", "JSON config file (defaults < file < COLONY_* environment < flags); see docs/coordinator.md")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { loadCoordinatorConfig } = await import("../../coordinator/config.ts");
      const { Coordinator } = await import("../../coordinator/coordinator.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { onShutdownSignal } = await import("../shutdown.ts");
      const { cliEnv } = await import("../env.ts");
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      const config = loadCoordinatorConfig({
        file: str(o.config),
        env: cliEnv().env,
        flags: {
          port: intArg("--port", str(o.port)),
          wsPort: intArg("--ws-port", str(o.wsPort)),
          host: str(o.host),
          broker: str(o.broker),
          brokerRedis: str(o.brokerRedis),
          dataDir: str(o.dataDir),
          insecure: o.insecure === true ? true : undefined,
          bidWindowMs: intArg("--bid-window-ms", str(o.bidWindowMs)),
          maxAttempts: intArg("--max-attempts", str(o.maxAttempts)),
          ackWithinMs: intArg("--ack-within-ms", str(o.ackWithinMs)),
          fleetId: str(o.fleetId),
          mdns: o.mdns === false ? false : undefined,
          architect: o.architect === false ? false : undefined,
          metricsPort: intArg("--metrics-port", str(o.metricsPort)),
          homeAssistant: o.homeAssistant === true ? true : undefined,
          dashboardPort: intArg("--dashboard-port", str(o.dashboardPort)),
        },
        architectDryRun: o.architectDryRun === true ? true : undefined,
      });
      const logger = createLogger({ level: config.logLevel, name: "coordinator" });
      const coordinator = new Coordinator(config, { logger });
      onShutdownSignal(async () => {
        logger.info({}, "shutting down");
        await coordinator.close();
      });
      await coordinator.start();
      // Machine-readable line for scripts and tests that start the coordinator on port 0.
      // `url` is what other machines dial: the address listened on (for 0.0.0.0, this host's LAN address).
      process.stdout.write(JSON.stringify({ ready: true, url: coordinator.lanUrl, localUrl: coordinator.brokerUrl, port: coordinator.port, wsPort: coordinator.wsPort, metricsPort: coordinator.metricsPort, dashboardPort: coordinator.dashboardPort }) + "\n");
    });
}
