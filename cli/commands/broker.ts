import type { Command } from "commander";

/**
 * `colony broker`: one more MQTT broker for a fleet bigger than one host (docs/scale.md). It is an
 * aedes member of the cluster that the coordinator's embedded broker joins with `--broker-redis`:
 * the members share subscriptions, retained messages and every published message through Redis
 * (mqemitter-redis, aedes-persistence-redis), so a node or submitter may connect to any member. It
 * authenticates and authorizes exactly as the coordinator's broker does, with the fleet's secret
 * copied from the coordinator host into its data folder.
 */
export function register(program: Command): void {
  program
    .command("broker")
    .description("run one more MQTT broker of the fleet's broker cluster (members share messages through Redis); docs/scale.md")
    .requiredOption("--redis <url>", "the cluster's Redis, e.g. redis://10.0.0.5:6379 (the coordinator's --broker-redis)")
    .option("--port <n>", "MQTT TCP port, 0-65535 (default 1883)")
    .option("--ws-port <n>", "also serve MQTT over WebSocket on this port")
    .option("--host <addr>", "address to listen on (default 0.0.0.0)")
    .option("--data-dir <dir>", "folder holding fleet.secret, copied from the coordinator host (default $COLONY_DATA_DIR or ~/.colony)")
    .option("--insecure", "no MQTT authentication (only for a cluster whose coordinator runs --insecure)")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { intArg } = await import("../../common/config.ts");
      const { createLogger } = await import("../../common/logger.ts");
      const { createAedesAuthHooks, loadFleetSecret } = await import("../../coordinator/auth.ts");
      const { EmbeddedBroker, redisOptions } = await import("../../coordinator/broker.ts");
      const { onShutdownSignal } = await import("../shutdown.ts");
      const { cliEnv } = await import("../env.ts");
      const str = (v: unknown) => (typeof v === "string" ? v : undefined);
      const env = cliEnv();
      const redis = str(o.redis)!;
      redisOptions(redis); // a bad URL fails here, with its code, before anything starts
      const logger = createLogger({ level: env.logLevel ?? "info", name: "broker" });
      const insecure = o.insecure === true;
      const hooks = insecure ? undefined : createAedesAuthHooks({ secret: await loadFleetSecret(str(o.dataDir) ?? env.dataDir), insecure: false, logger: logger.child({ part: "auth" }) });
      const broker = new EmbeddedBroker({ host: str(o.host) ?? "0.0.0.0", port: intArg("--port", str(o.port)) ?? 1883, wsPort: intArg("--ws-port", str(o.wsPort)), hooks, redis, logger });
      onShutdownSignal(async () => {
        logger.info({}, "shutting down");
        await broker.close();
      });
      await broker.start();
      process.stdout.write(JSON.stringify({ ready: true, url: broker.lanUrl, localUrl: broker.localUrl, port: broker.port, wsPort: broker.wsPort }) + "\n");
    });
}
