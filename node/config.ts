/**
 * The node daemon's one config module: defaults < JSON file (--config) < COLONY_* environment <
 * flags, validated once (every problem listed) and frozen. docs/node.md lists every key.
 */
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { loadConfig } from "../common/config.ts";
import { PublicKeySchema } from "../common/model-manifest.ts";
import { IdSchema } from "../common/protocol.ts";

export const NodeConfigSchema = z.strictObject({
  /** Broker URL (mqtt://host:1883); unset = find the coordinator by mDNS. */
  coordinator: z.string().min(1).optional(),
  /** Credentials JSON file from `colony credentials issue` ({username, password, url?}). */
  credentials: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /**
   * The fleet's model key (base64url ed25519 public key) that pushed models' signed manifests must
   * verify with (docs/models.md). Default: the credentials file's `modelKey`; with neither, every
   * pushed model is refused (MODEL_KEY_MISSING).
   */
  modelKey: PublicKeySchema.optional(),
  /** Default: the host name, cleaned to the id character set. */
  nodeId: IdSchema.default(os.hostname().replace(/[^A-Za-z0-9._:-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "node"),
  /** Profile name in firmware-configs/ or a JSON file; unset = detect from the hardware. */
  profile: z.string().min(1).optional(),
  /** Agents file; unset = one agent per seed model (models/seed-manifest.json). */
  agents: z.string().min(1).optional(),
  /** Node state: LevelDB (calibration, hot cache) and downloaded models. Default ~/.colony/node. */
  dataDir: z.string().min(1).default(path.join(os.homedir(), ".colony", "node")),
  /** Inference threads; overrides the profile. */
  threads: z.number().int().min(1).max(256).optional(),
  /** Heartbeat interval. Default 5000 ms. */
  heartbeatMs: z.number().int().min(100).max(600_000).default(5000),
  /** Minimum interval between two progress messages of one task. Default 100 ms. */
  progressIntervalMs: z.number().int().min(10).max(60_000).default(100),
  /** Hardware probe refresh interval. Default 2000 ms. */
  probeIntervalMs: z.number().int().min(100).max(600_000).default(2000),
  discoveryTimeoutMs: z.number().int().min(100).max(600_000).default(5000),
  fleetId: z.string().min(1).max(128).optional(),
  /** Experiences kept per agent in the hot cache. Default 200. */
  hotCacheSize: z.number().int().min(1).max(1_000_000).default(200),
  /** Measure uncalibrated models at start. Default true. */
  calibrate: z.boolean().default(true),
  /** Re-measure a model whose calibration is older than this, when the node is idle. Default 6 h. */
  recalibrateAfterMs: z.number().int().min(1000).default(6 * 3600_000),
  /**
   * Where a task's measured energy comes from: "auto" reads RAPL (powercap) or a discharging
   * battery when the device has one, else the profile's power model; "model" always uses the model.
   */
  energyMeter: z.enum(["auto", "model"]).default("auto"),
  /**
   * Load models the model gate cannot fully check (another architecture or tokenizer, unmodelled
   * keys or tensor types) after its basic vocabulary checks, instead of refusing them with
   * MODEL_UNSUPPORTED. At your own risk: such a file may abort llama.cpp and the node. Default false.
   */
  allowUncheckedModels: z.boolean().default(false),
  /** Serve this node's own Prometheus metrics on `GET /metrics` at this port (0: any free port). Default: off (node/metrics.ts). */
  metricsPort: z.number().int().min(0).max(65535).optional(),
  /** Address the metrics port listens on. Default 0.0.0.0 (every interface: firewall it, or give 127.0.0.1). */
  metricsHost: z.string().min(1).default("0.0.0.0"),
  /** Overrides the profile's sleepAfterMs. */
  sleepAfterMs: z.number().int().min(100).optional(),
  /** How long a retire command waits for the agent's running and queued tasks before AGENT_BUSY. Default 120 s. */
  retireWaitMs: z.number().int().min(0).max(3600_000).default(120_000),
  /**
   * Probe readings pinned over the measured ones, so one machine can stand in for a device in another
   * state (a 4 GB board, a laptop on battery): benchmarks and labs (bench/ecosystem.ts). Default: none.
   */
  injectProbe: z
    .strictObject({
      cpuLoad: z.number().min(0).max(100),
      totalMemMB: z.number().int().min(1),
      freeMemMB: z.number().int().min(0),
      batteryPercent: z.number().min(0).max(100),
      charging: z.boolean(),
      temperatureC: z.number().min(-50).max(200),
    })
    .partial()
    .optional(),
  /**
   * Offer to train the coordinator's distillation jobs (docs/mind.md, "Trainer nodes"): the node
   * measures its training speed at start, advertises it and bids for jobs. `threads`: cores a job
   * may use (default: the inference threads). Default: off.
   */
  trainer: z.union([z.boolean(), z.strictObject({ threads: z.number().int().min(1).max(256).optional() })]).default(false),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type NodeConfig = z.infer<typeof NodeConfigSchema>;

const ENV: Record<string, keyof NodeConfig> = {
  COLONY_COORDINATOR: "coordinator",
  COLONY_CREDENTIALS: "credentials",
  COLONY_MODEL_KEY: "modelKey",
  COLONY_NODE_ID: "nodeId",
  COLONY_PROFILE: "profile",
  COLONY_AGENTS: "agents",
  COLONY_NODE_DATA_DIR: "dataDir",
  COLONY_THREADS: "threads",
  COLONY_FLEET_ID: "fleetId",
  COLONY_LOG_LEVEL: "logLevel",
  COLONY_ALLOW_UNCHECKED_MODELS: "allowUncheckedModels",
  // Not COLONY_METRICS_PORT: `colony fleet` runs a coordinator and a node in one environment.
  COLONY_NODE_METRICS_PORT: "metricsPort",
  COLONY_TRAINER: "trainer",
};

/** Environment text to a config value: numbers for threads, booleans for flags ("1"/"true", "0"/"false"). */
function envValue(key: keyof NodeConfig, raw: string): unknown {
  if ((key === "threads" || key === "metricsPort") && /^\d+$/.test(raw)) return Number(raw);
  if ((key === "allowUncheckedModels" || key === "trainer") && /^(1|true|0|false)$/.test(raw)) return raw === "1" || raw === "true";
  return raw;
}

export function loadNodeConfig(sources: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof NodeConfig, unknown>> }): Readonly<NodeConfig> {
  const env: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const raw = sources.env?.[name];
    if (raw === undefined || raw === "") continue;
    env[key] = envValue(key, raw);
  }
  return loadConfig(NodeConfigSchema, { file: sources.file, env, flags: sources.flags ?? {} });
}
