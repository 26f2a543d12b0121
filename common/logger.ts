import { pino, type Logger } from "pino";

export type { Logger };

/**
 * One root logger per process. Log calls are `(obj, message)`, errors go under `err`, and data from
 * peers is never spread into the line (conventions.md). Level from COLONY_LOG_LEVEL via the process's
 * config module; tests pass "silent".
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? "info";
  const base = { name: opts.name ?? "colony" };
  // Logs go to stderr so that stdout stays for machine-readable output (bench JSON, `colony task`).
  return pino({ level, base }, (opts.destination ?? process.stderr) as any);
}

export const silentLogger: Logger = pino({ level: "silent" });
