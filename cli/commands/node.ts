import type { Command } from "commander";

/** `colony node`: the node daemon of one device. */
export function register(program: Command): void {
  program
    .command("node")
    .description("run a node daemon: hosts llama.cpp agents, bids for tasks from the coordinator and runs the ones it wins")
    .option("--coordinator <url>", "broker URL, e.g. mqtt://192.168.1.10:1883 (default: the credentials file's url, else mDNS discovery)")
    .option("--credentials <file>", "credentials JSON from `colony credentials issue --node ID --out FILE` (or $COLONY_CREDENTIALS)")
    .option("--node-id <id>", "this node's id, [A-Za-z0-9._:-] (default: the host name)")
    .option("--profile <name|file>", "device profile name in firmware-configs/ or a JSON file (default: detected from the hardware)")
    .option("--agents <file>", "agents JSON file (default: one agent per seed model in models/seed-manifest.json)")
    .option("--data-dir <dir>", "node state: calibration, hot cache, downloaded models (default ~/.colony/node)")
    .option("--threads <n>", "inference threads (default: the profile's, \"auto\" = physical cores)")
    .option("--fleet-id <id>", "with mDNS discovery, only join this fleet")
    .option("--no-calibrate", "do not measure uncalibrated models at start (bids then use slow defaults)")
    .option("--metrics-port <n>", "serve this node's Prometheus metrics on GET /metrics at this port, 0 = any free port (or $COLONY_NODE_METRICS_PORT; default off)")
    .option("--trainer", "offer to train the coordinator's distillation jobs: measure this device's training speed and bid for jobs (or $COLONY_TRAINER=1; docs/mind.md)")
    .option("--config <file>", "JSON config file (defaults < file < COLONY_* environment < flags); see docs/node.md")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { loadNodeConfig } = await import("../../node/config.ts");
      const { bootNode } = await import("../../node/boot.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { onShutdownSignal } = await import("../shutdown.ts");
      const { cliEnv } = await import("../env.ts");
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      const env = cliEnv().env;
      const config = loadNodeConfig({
        file: str(o.config),
        env,
        flags: {
          coordinator: str(o.coordinator), credentials: str(o.credentials), nodeId: str(o.nodeId), profile: str(o.profile),
          agents: str(o.agents), dataDir: str(o.dataDir), threads: intArg("--threads", str(o.threads)), fleetId: str(o.fleetId),
          calibrate: o.calibrate === false ? false : undefined, metricsPort: intArg("--metrics-port", str(o.metricsPort)),
          trainer: o.trainer === true ? true : undefined,
        },
      });
      const logger = createLogger({ level: config.logLevel, name: "node" });
      const node = await bootNode(config, logger, { env });
      onShutdownSignal(async () => {
        logger.info({}, "shutting down");
        await node.close();
      });
      const d = node.daemon;
      process.stdout.write(JSON.stringify({ ready: true, nodeId: d.nodeId, agents: d.pool.info().map((a) => a.agentId), ...(node.metricsPort !== undefined ? { metricsPort: node.metricsPort } : {}) }) + "\n");
    });
}
