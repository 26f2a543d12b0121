import os from "node:os";
import path from "node:path";
import { ColonyError, CommonErrors } from "../common/errors.ts";

/**
 * The CLI's one reader of the environment (conventions.md: one config module per process). The
 * commands read their COLONY_* settings from `cliEnv()`; the commands that start a coordinator or a
 * node hand `env` on to that process's own config module (coordinator/config.ts, node/config.ts).
 * An empty variable counts as unset, as in those config modules.
 */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CliEnv {
  /** COLONY_DATA_DIR: the coordinator's data folder (fleet.secret, task store). Default ~/.colony. */
  readonly dataDir: string;
  /** COLONY_LOG_LEVEL: pino level; undefined = the command's own default (info for `train`, warn for the clients). */
  readonly logLevel: LogLevel | undefined;
  /** COLONY_BROKER: broker URL for the client commands when neither --url nor the credentials file names one. */
  readonly broker: string | undefined;
  /** COLONY_CREDENTIALS: credentials JSON file when --credentials is not given. */
  readonly credentials: string | undefined;
  /** A frozen copy of the whole environment, for the process config modules and bootNode. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Reads and validates the CLI's variables; every problem is reported at once as CONFIG_INVALID. */
export function readCliEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  const get = (name: string): string | undefined => (env[name] === "" ? undefined : env[name]);
  const problems: string[] = [];
  const logLevel = get("COLONY_LOG_LEVEL");
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.push(`COLONY_LOG_LEVEL: must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`);
  }
  if (problems.length > 0) throw new ColonyError(CommonErrors.CONFIG_INVALID, `invalid environment:\n  ${problems.join("\n  ")}`, { problems });
  return Object.freeze({
    dataDir: get("COLONY_DATA_DIR") ?? path.join(os.homedir(), ".colony"),
    logLevel: logLevel as LogLevel | undefined,
    broker: get("COLONY_BROKER"),
    credentials: get("COLONY_CREDENTIALS"),
    env: Object.freeze({ ...env }),
  });
}

let cached: CliEnv | undefined;

/** `readCliEnv(process.env)`, read once per process. */
export function cliEnv(): CliEnv {
  cached ??= readCliEnv();
  return cached;
}
