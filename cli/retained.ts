/**
 * Reads the coordinator's retained topics (stats, lineage, the architect's decisions) for the CLI:
 * the common options (`--url`, `--credentials`, `--data-dir` to issue a coordinator credential on
 * the coordinator's host) and a wait until every topic arrived or `--wait-ms` passed.
 */
import type { Command } from "commander";

export function retainedOptions(cmd: Command): Command {
  return cmd
    .option("--url <url>", "broker URL (default: credentials file, $COLONY_BROKER, mqtt://127.0.0.1:1883)")
    .option("--username <name>", "MQTT username")
    .option("--password <pw>", "MQTT password")
    .option("--credentials <file>", "credentials JSON file (default $COLONY_CREDENTIALS)")
    .option("--data-dir <dir>", "on the coordinator's host: issue a coordinator credential from this folder's fleet secret")
    .option("--wait-ms <n>", "how long to wait for the retained messages (default 2000)")
    .option("--json", "print as one JSON line");
}

/**
 * Connects with the common options: `--username`/`--password`, else a coordinator credential issued
 * from `--data-dir`'s fleet secret, else `--credentials` or $COLONY_CREDENTIALS.
 */
export async function connectWithOptions(o: Record<string, string | boolean | undefined>, name: string) {
  const { createLogger } = await import("../common/logger.ts");
  const { connectClient } = await import("../coordinator/submitter.ts");
  const { cliEnv } = await import("./env.ts");
  const s = (v: unknown) => (typeof v === "string" ? v : undefined);
  let { username, password } = { username: s(o.username), password: s(o.password) };
  if (!username && s(o.dataDir)) {
    const { loadOrCreateFleetSecret, issueCredential } = await import("../coordinator/auth.ts");
    ({ username, password } = issueCredential(await loadOrCreateFleetSecret(s(o.dataDir)!), "coordinator"));
  }
  const env = cliEnv();
  const logger = createLogger({ level: env.logLevel ?? "warn", name });
  (await import("./warnings.ts")).warnPasswordFlag(o.password);
  return connectClient({ url: s(o.url), username, password, credentials: s(o.credentials) ?? env.credentials, defaultUrl: env.broker, logger });
}

/** topic -> parsed JSON payload, for those of `topics` that arrived. */
export async function readRetained(o: Record<string, string | boolean | undefined>, wanted: readonly string[], name: string): Promise<Map<string, unknown>> {
  const { intArg } = await import("../common/config.ts");
  const s = (v: unknown) => (typeof v === "string" ? v : undefined);
  const client = await connectWithOptions(o, name);
  const got = new Map<string, unknown>();
  try {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intArg("--wait-ms", s(o.waitMs)) ?? 2000);
      client.on("message", (topic, payload) => {
        if (payload.length === 0) return;
        try {
          got.set(topic, JSON.parse(payload.toString("utf8")));
        } catch {}
        if (wanted.every((t) => got.has(t))) {
          clearTimeout(timer);
          resolve();
        }
      });
      client.subscribeAsync([...wanted], { qos: 0 }).catch(() => {});
    });
  } finally {
    await client.endAsync().catch(() => {});
  }
  return got;
}
