import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { deepFreeze, loadConfig, type ConfigSources } from "../common/config.ts";
import { ColonyError, CommonErrors } from "../common/errors.ts";
import { EvolutionSettingsSchema } from "./architect/settings.ts";
import { MindSettingsSchema } from "./mind/settings.ts";

/**
 * The coordinator's one config module: defaults < JSON file (--config) < COLONY_* environment <
 * flags, validated once and frozen. docs/coordinator.md lists every key.
 */
export const CoordinatorConfigSchema = z.strictObject({
  /** MQTT TCP port of the embedded broker (0 = any free port). Ignored with `broker`. Default 1883. */
  port: z.number().int().min(0).max(65535).default(1883),
  /** MQTT-over-WebSocket port of the embedded broker; unset = no WebSocket listener. */
  wsPort: z.number().int().min(0).max(65535).optional(),
  /** Address the embedded broker listens on. Default 0.0.0.0 (the fleet is on the LAN). */
  host: z.string().min(1).default("0.0.0.0"),
  /** External broker URL (e.g. mosquitto); unset = run the embedded aedes broker. */
  broker: z.string().min(1).optional(),
  /**
   * The market's own client reaches the embedded broker over loopback TCP instead of in memory.
   * Only for comparisons (bench/auction.ts --coordinator-tcp) and debugging. Default false.
   */
  brokerOverTcp: z.boolean().default(false),
  /**
   * Redis URL of a broker cluster (docs/scale.md): the embedded broker joins it as one member, and
   * nodes and submitters may connect to any member (`colony broker --redis URL` on other hosts).
   * Ignored with `broker`. Unset = the embedded broker on its own.
   */
  brokerRedis: z.string().regex(/^redis:\/\//, "must be a redis:// URL").optional(),
  /** Username/password of the coordinator on an external broker; default: issued from the fleet secret. */
  brokerUsername: z.string().optional(),
  brokerPassword: z.string().optional(),
  /** Folder for the task store (LevelDB) and the fleet secret. Default $COLONY_DATA_DIR or ~/.colony. */
  dataDir: z.string().min(1).default(path.join(os.homedir(), ".colony")),
  /** No authentication on the embedded broker (trusted network or demo only). Default false. */
  insecure: z.boolean().default(false),
  /** How long an auction stays open at most; it closes earlier once every eligible online node answered. Default 300. */
  bidWindowMs: z.number().int().min(1).max(60_000).default(300),
  /** Attempts per task before an ATTEMPTS_EXHAUSTED error result. Default 3. */
  maxAttempts: z.number().int().min(1).max(20).default(3),
  /** Time a winner has to ack its award. Default 2000. */
  ackWithinMs: z.number().int().min(1).max(60_000).default(2000),
  /** Deadline of a task that gives none. Default 60000. */
  defaultDeadlineMs: z.number().int().min(100).default(60_000),
  /** maxTokens of a task that gives none. Default 256. */
  defaultMaxTokens: z.number().int().min(1).max(8192).default(256),
  /** First exclusion of a failed agent; doubles with each consecutive failure. Default 5000. */
  penaltyBaseMs: z.number().int().min(0).default(5000),
  /** Cap of the exclusion. Default 600000 (10 min). */
  penaltyMaxMs: z.number().int().min(0).default(600_000),
  /**
   * After a restart, how long auctions wait at most for the nodes that were online before (they come
   * back after their reconnect backoff: the node daemon's grows to 5 s, +-20%). Default 8000.
   */
  resumeGraceMs: z.number().int().min(0).max(600_000).default(8000),
  /** A node with no status or heartbeat for this long is offline (the last will is the fast path). Default 30000. */
  heartbeatTimeoutMs: z.number().int().min(100).default(30_000),
  /** Minimum interval between two retained stats publications. Default 1000. */
  statsIntervalMs: z.number().int().min(50).default(1000),
  /**
   * Submitters (MQTT usernames, e.g. "submitter.alice") whose verdicts (checks, feedback) count in
   * agents' records without limit; any other submitter's count only in a window of its latest
   * `verdictWindow` per agent and skill (docs/scoring.md). Default none.
   */
  trustedSubmitters: z.array(z.string().min(1).max(256)).max(1000).default([]),
  /** Verdicts per agent and skill an untrusted submitter's window holds. Default 20. */
  verdictWindow: z.number().int().min(1).max(10_000).default(20),
  /** What one verdict of an untrusted submitter is worth, in observations. Default 0.25. */
  untrustedWeight: z.number().min(0).max(1).default(0.25),
  /**
   * How long a result stays retained on the broker after its task finished; then it is cleared from
   * the broker (the store keeps it: `colony task ID`, `tasks/{id}/get`). Default 86400000 (24 h).
   */
  resultRetentionMs: z.number().int().min(1000).default(86_400_000),
  /** How long a finished task stays in the store; then it is deleted and its id is free. Default 2592000000 (30 days). */
  taskRetentionMs: z.number().int().min(1000).default(2_592_000_000),
  /** How long an experience (a finished attempt) stays in the cold cache (docs/mind.md). Default 2592000000 (30 days). */
  experienceRetentionMs: z.number().int().min(1000).default(2_592_000_000),
  /** Most experiences the cold cache keeps; the oldest beyond it are pruned. Default 1000000. */
  maxExperiences: z.number().int().min(1).default(1_000_000),
  /** Requests (submits, gets) per second each submitter may send once its burst is spent; 0 = unlimited. Default 20. */
  submitRate: z.number().min(0).default(20),
  /** Requests a submitter may send at once. Default 500. */
  submitBurst: z.number().int().min(1).default(500),
  /** Unfinished tasks each submitter may have; 0 = unlimited. Default 1000. */
  maxOpenTasks: z.number().int().min(0).default(1000),
  /**
   * Announce every task only to the nodes that can bid for it, each on its own topic, so a node
   * without the skill never sees the prompt (a submit's `private` overrides). Costs one message per
   * eligible node instead of one for the fleet. Default false.
   */
  privateAnnounces: z.boolean().default(false),
  /**
   * Tasks without a skill get a niche inferred from their prompt (coordinator/evolution/niches.ts),
   * with its own track records, instead of sharing the key "*" (docs/scoring.md). Default true.
   */
  unlabeledNiches: z.boolean().default(true),
  /** The architect: agents are spawned, retired and kept warm from the market's history (docs/evolution.md). */
  architect: z.boolean().default(true),
  /** The collective mind's settings: distillation jobs, their gate (coordinator/mind/settings.ts, docs/mind.md). */
  mind: MindSettingsSchema.default(MindSettingsSchema.parse({})),
  /** Evolution's and the architect's settings (coordinator/architect/settings.ts). */
  evolution: EvolutionSettingsSchema.default(EvolutionSettingsSchema.parse({})),
  /** Seed of the scoring's tie-break randomness; default: time-based. */
  seed: z.number().int().optional(),
  /** Fleet id in the coordinator status and the mDNS TXT record. Default "default". */
  fleetId: z.string().min(1).max(128).default("default"),
  /** Advertise the broker on the LAN by mDNS. Default true. */
  mdns: z.boolean().default(true),
  /**
   * Port of the Prometheus endpoint (`GET /metrics`, on `host`; docs/operations.md); 0 = any free
   * port. Default unset: no metrics endpoint.
   */
  metricsPort: z.number().int().min(0).max(65535).optional(),
  /**
   * Port of the live dashboard (HTTP, on `host`; docs/operations.md, "Dashboard"); 0 = any free port.
   * It needs the broker's WebSocket (`wsPort`, turned on at a free port when unset) and hands an
   * observer credential to anyone who can reach it. Default unset: no dashboard.
   */
  dashboardPort: z.number().int().min(0).max(65535).optional(),
  /** Let the dashboard show prompts and outputs (observers then read them). Default false. */
  dashboardShowPrompts: z.boolean().default(false),
  /** Publish Home Assistant MQTT discovery configs and states (docs/operations.md). Default false. */
  homeAssistant: z.boolean().default(false),
  /** Home Assistant's discovery prefix (its MQTT integration setting). Default "homeassistant". */
  homeAssistantPrefix: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "a topic without wildcards, outside colony/").refine((p) => p.split("/")[0] !== "colony", "outside colony/").default("homeassistant"),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfigSchema>;

const ENV_KEYS: Record<string, keyof CoordinatorConfig> = {
  COLONY_PORT: "port",
  COLONY_WS_PORT: "wsPort",
  COLONY_HOST: "host",
  COLONY_BROKER: "broker",
  COLONY_BROKER_REDIS: "brokerRedis",
  COLONY_BROKER_USERNAME: "brokerUsername",
  COLONY_BROKER_PASSWORD: "brokerPassword",
  COLONY_DATA_DIR: "dataDir",
  COLONY_INSECURE: "insecure",
  COLONY_BID_WINDOW_MS: "bidWindowMs",
  COLONY_MAX_ATTEMPTS: "maxAttempts",
  COLONY_ACK_WITHIN_MS: "ackWithinMs",
  COLONY_FLEET_ID: "fleetId",
  COLONY_MDNS: "mdns",
  COLONY_LOG_LEVEL: "logLevel",
  COLONY_TRUSTED_SUBMITTERS: "trustedSubmitters",
  COLONY_RESULT_RETENTION_MS: "resultRetentionMs",
  COLONY_TASK_RETENTION_MS: "taskRetentionMs",
  COLONY_EXPERIENCE_RETENTION_MS: "experienceRetentionMs",
  COLONY_MAX_EXPERIENCES: "maxExperiences",
  COLONY_SUBMIT_RATE: "submitRate",
  COLONY_SUBMIT_BURST: "submitBurst",
  COLONY_MAX_OPEN_TASKS: "maxOpenTasks",
  COLONY_PRIVATE_ANNOUNCES: "privateAnnounces",
  COLONY_UNLABELED_NICHES: "unlabeledNiches",
  COLONY_ARCHITECT: "architect",
  COLONY_METRICS_PORT: "metricsPort",
  COLONY_DASHBOARD_PORT: "dashboardPort",
  COLONY_DASHBOARD_SHOW_PROMPTS: "dashboardShowPrompts",
  COLONY_HOME_ASSISTANT: "homeAssistant",
  COLONY_HOME_ASSISTANT_PREFIX: "homeAssistantPrefix",
};

const NUMERIC_KEYS = new Set<keyof CoordinatorConfig>(["port", "wsPort", "bidWindowMs", "maxAttempts", "ackWithinMs", "resultRetentionMs", "taskRetentionMs", "experienceRetentionMs", "maxExperiences", "submitRate", "submitBurst", "maxOpenTasks", "metricsPort", "dashboardPort"]);
const BOOLEAN_KEYS = new Set<keyof CoordinatorConfig>(["insecure", "mdns", "privateAnnounces", "unlabeledNiches", "architect", "homeAssistant", "dashboardShowPrompts"]);

/** Environment strings become numbers/booleans where the key is one, so zod reports real problems. */
function envValue(key: keyof CoordinatorConfig, raw: string): unknown {
  if (BOOLEAN_KEYS.has(key) && (raw === "true" || raw === "false" || raw === "1" || raw === "0")) return raw === "true" || raw === "1";
  if (NUMERIC_KEYS.has(key) && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (key === "trustedSubmitters") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  return raw;
}

/**
 * `architectDryRun` (flag `--architect-dry-run`, env COLONY_ARCHITECT_DRY_RUN=1) sets `evolution.dryRun`
 * without replacing the rest of the file's `evolution` object (sources merge one level deep).
 */
export function loadCoordinatorConfig(sources: { file?: string | undefined; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof CoordinatorConfig, unknown>>; architectDryRun?: boolean | undefined }): Readonly<CoordinatorConfig> {
  const env: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = sources.env?.[name];
    if (raw !== undefined && raw !== "") env[key] = envValue(key, raw);
  }
  const s: ConfigSources = { file: sources.file, env, flags: sources.flags ?? {} };
  const config = loadConfig(CoordinatorConfigSchema, s);
  const rawDry = sources.env?.COLONY_ARCHITECT_DRY_RUN;
  if (rawDry !== undefined && rawDry !== "" && !["0", "1", "true", "false"].includes(rawDry)) {
    throw new ColonyError(CommonErrors.CONFIG_INVALID, `invalid configuration:\n  COLONY_ARCHITECT_DRY_RUN must be 0, 1, true or false, got ${JSON.stringify(rawDry)}`);
  }
  const dryRun = sources.architectDryRun ?? (rawDry === "1" || rawDry === "true" ? true : rawDry === "0" || rawDry === "false" ? false : undefined);
  if (dryRun === undefined || dryRun === config.evolution.dryRun) return config;
  return deepFreeze({ ...config, evolution: { ...config.evolution, dryRun } });
}
