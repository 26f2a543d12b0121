import { pino, type Logger } from "pino";

export type { Logger };

/**
 * One root logger per process. Log calls are `(obj, message)`, errors go under `err`, and data from
 * peers is never spread into the line (conventions.md). Level from COLONY_LOG_LEVEL via the process's
 * config module; tests pass "silent". pino writes a key once per binding, so a child logger or a log
 * call must not reuse a key of its parent's (`name`, `role`, `part`, `nodeId`): a log shipper would
 * keep one of the two (test/integration/log-keys.test.ts reads every line of a fleet's log).
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? "info";
  const base = { name: opts.name ?? "colony" };
  // Logs go to stderr so that stdout stays for machine-readable output (bench JSON, `colony task`).
  return pino({ level, base }, (opts.destination ?? process.stderr) as any);
}

export const silentLogger: Logger = pino({ level: "silent" });
