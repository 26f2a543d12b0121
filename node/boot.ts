/**
 * Builds a NodeDaemon from the node config: broker URL (flag, credentials file, or mDNS),
 * credentials, device profile (named, file, or detected), threads, agents and the hardware probe.
 * Shared by `colony node` and `colony fleet`.
 */
import { ColonyError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { loadClientCredentials } from "../common/mqtt-connect.ts";
import { loadAgents, type AgentsSpec } from "./agents/agents-file.ts";
import type { NodeConfig } from "./config.ts";
import { NodeDaemon } from "./daemon.ts";
import { NodeErrors } from "./errors.ts";
import { DeviceProbe, readHardwareIdentity } from "./probe.ts";
import { detectProfile, profileThreads, resolveProfile } from "./profile.ts";

export interface BootResult {
  daemon: NodeDaemon;
  probe: DeviceProbe;
  /** The node's own `/metrics` port, when `metricsPort` is set (node/metrics.ts). */
  metricsPort?: number | undefined;
  close(): Promise<void>;
}

export async function bootNode(config: Readonly<NodeConfig>, logger: Logger, extra: { env?: NodeJS.ProcessEnv; agents?: AgentsSpec } = {}): Promise<BootResult> {
  const cred = loadClientCredentials({ file: config.credentials, env: extra.env ?? {} });
  let url = config.coordinator ?? cred?.url;
  if (!url) {
    const { discoverCoordinator } = await import("../common/discovery.ts");
    try {
      const found = await discoverCoordinator({ timeoutMs: config.discoveryTimeoutMs, fleetId: config.fleetId, logger });
      url = found.url;
      logger.info({ url, fleetId: found.fleetId }, "coordinator found by mDNS");
    } catch (err) {
      throw new ColonyError(NodeErrors.NODE_NO_COORDINATOR, `no --coordinator URL and mDNS found none: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  const hw = await readHardwareIdentity();
  const profile = config.profile ? resolveProfile(config.profile) : detectProfile(hw);
  const threads = config.threads ?? profileThreads(profile, hw.physicalCores);
  const agents = extra.agents ?? loadAgents(config.agents);
  logger.info({ profile: profile.name, threads, agents: agents.genomes.length, from: agents.source, url }, "starting node");
  const probe = new DeviceProbe({ intervalMs: config.probeIntervalMs, logger });
  await probe.start();
  if (config.injectProbe) probe.inject(config.injectProbe);
  const daemon = new NodeDaemon({
    nodeId: config.nodeId, url, username: config.username ?? cred?.username, password: config.password ?? cred?.password, modelKey: config.modelKey ?? cred?.modelKey,
    profile, threads, agents, dataDir: config.dataDir, probe, logger,
    heartbeatMs: config.heartbeatMs, progressIntervalMs: config.progressIntervalMs, hotCacheSize: config.hotCacheSize,
    calibrate: config.calibrate, sleepAfterMs: config.sleepAfterMs, recalibrateAfterMs: config.recalibrateAfterMs,
    allowUncheckedModels: config.allowUncheckedModels, retireWaitMs: config.retireWaitMs,
    ...(config.trainer !== false ? { trainer: { threads: (typeof config.trainer === "object" ? config.trainer.threads : undefined) ?? threads } } : {}),
    ...(config.energyMeter === "model" ? { energyMeter: "model" as const } : {}),
  });
  let metrics: { port: number | undefined; close(): Promise<void> } | undefined;
  try {
    await daemon.start();
    if (config.metricsPort !== undefined) metrics = await serveNodeMetrics(daemon, config.metricsHost, config.metricsPort, logger);
  } catch (err) {
    await daemon.close().catch(() => {});
    await probe.close();
    throw err;
  }
  return {
    daemon,
    probe,
    metricsPort: metrics?.port,
    close: async () => {
      await metrics?.close();
      await daemon.close();
      await probe.close();
    },
  };
}

/** The node's own Prometheus endpoint (docs/operations.md, "A node's metrics"). */
async function serveNodeMetrics(daemon: NodeDaemon, host: string, port: number, logger: Logger): Promise<{ port: number | undefined; close(): Promise<void> }> {
  const [{ NodeMetrics }, { MetricsHttpServer }] = await Promise.all([import("./metrics.ts"), import("../common/metrics-http.ts")]);
  const source = new NodeMetrics({ counters: daemon.counters, agents: () => daemon.pool.agents.values() });
  const http = new MetricsHttpServer({ host, port, source, logger: logger.child({ part: "metrics" }) });
  await http.start();
  return { port: http.port, close: () => http.close() };
}
