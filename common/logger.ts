import { pino, type Logger } from "pino";
import { prettyStream } from "./log-format.ts";

export type { Logger };

/**
 * One root logger per process. Log calls are `(obj, message)`, errors go under `err`, and data from
 * peers is never spread into the line (conventions.md). Level from COLONY_LOG_LEVEL via the process's
 * config module; tests pass "silent". pino writes a key once per binding, so a child logger or a log
 * call must not reuse a key of its parent's (`name`, `role`, `part`, `nodeId`): a log shipper would
 * keep one of the two (test/integration/log-keys.test.ts reads every line of a fleet's log).
 * Lines go to stderr: compact text at a terminal (common/log-format.ts), JSON otherwise (`format`).
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream; format?: LogFormat } = {}): Logger {
  const level = opts.level ?? "info";
  const base = { name: opts.name ?? "colony" };
  // Logs go to stderr so that stdout stays for machine-readable output (bench JSON, `colony task`,
  // the ready line of `colony fleet`); never to stdout.
  const dest = opts.destination ?? process.stderr;
  const tty = (dest as { isTTY?: boolean }).isTTY === true;
  const pretty = opts.format === "pretty" || ((opts.format ?? "auto") === "auto" && tty);
  return pino({ level, base }, (pretty ? prettyStream(dest, { color: tty }) : dest) as any);
}

/**
 * "json": one pino JSON line per record (log shippers, journald, tests). "pretty": compact text
 * (common/log-format.ts). "auto" (the default): pretty when the destination is a terminal, else JSON.
 */
export type LogFormat = "json" | "pretty" | "auto";

// pino's default destination is stdout: even a silent logger gets stderr, so that a child logger
// given a level cannot write on stdout.
export const silentLogger: Logger = pino({ level: "silent" }, process.stderr as any);
