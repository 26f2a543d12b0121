/**
 * A compact, human-readable rendering of pino's JSON lines, for a person at a terminal
 * (createLogger picks it when stderr is a TTY; piped or under systemd the lines stay JSON):
 *
 *   08:21:03.123 INFO  fleet/node: calibrated agentId=seed-add genTokensPerS=1623 threads=1
 *   08:21:04.001 WARN  coordinator/market: attempt failed taskId=t1 err="ColonyError: ..."
 *       at ...
 *
 * Time of day (local), level, the logger's name and role/part, the message, then every other key as
 * key=value (strings quoted when they hold spaces, numbers to 4 significant digits, objects as
 * compact JSON cut at 160 characters); an error's stack follows on indented lines.
 */

const LEVELS: Record<number, { label: string; color: string }> = {
  10: { label: "TRACE", color: "\x1b[90m" },
  20: { label: "DEBUG", color: "\x1b[90m" },
  30: { label: "INFO", color: "\x1b[32m" },
  40: { label: "WARN", color: "\x1b[33m" },
  50: { label: "ERROR", color: "\x1b[31m" },
  60: { label: "FATAL", color: "\x1b[35m" },
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
/** Keys shown in the prefix or not at all (pino's own). */
const SCOPE_KEYS = ["role", "part"] as const;
const HIDDEN = new Set(["level", "time", "msg", "name", "pid", "hostname", "v", "err", ...SCOPE_KEYS]);
const MAX_VALUE = 160;

export interface LogFormatOptions {
  /** ANSI colors for the level and dim stack lines. Default false. */
  color?: boolean;
}

function value(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === "string") return cut(/^[\w.:/@+,-]+$/.test(v) ? v : JSON.stringify(v));
  if (v === null || typeof v === "boolean") return String(v);
  return cut(JSON.stringify(v) ?? String(v));
}

function cut(s: string): string {
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s;
}

function time(t: unknown): string {
  if (typeof t !== "number") return "";
  const d = new Date(t);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One JSON log line (with or without its newline) as one or more text lines ending in "\n". A line that is not a JSON object passes through. */
export function formatLogLine(line: string, opts: LogFormatOptions = {}): string {
  const text = line.endsWith("\n") ? line.slice(0, -1) : line;
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch {
    return text + "\n";
  }
  if (rec === null || typeof rec !== "object" || Array.isArray(rec)) return text + "\n";
  const r = rec as Record<string, unknown>;
  const lv = typeof r.level === "number" ? LEVELS[r.level] : undefined;
  const label = (lv?.label ?? String(r.level ?? "")).padEnd(5);
  const color = opts.color === true;
  const scope = [r.name, ...SCOPE_KEYS.map((k) => r[k])].filter((s) => typeof s === "string" && s !== "").join("/");
  const parts = [time(r.time), color && lv ? `${lv.color}${label}${RESET}` : label];
  const head = `${scope}${scope && typeof r.msg === "string" ? ": " : ""}${typeof r.msg === "string" ? r.msg : ""}`;
  if (head) parts.push(head);
  for (const [k, v] of Object.entries(r)) if (!HIDDEN.has(k) && v !== undefined) parts.push(`${k}=${value(v)}`);
  let out = parts.filter((p) => p !== "").join(" ");
  const err = r.err as { type?: unknown; message?: unknown; code?: unknown; stack?: unknown } | undefined;
  if (err && typeof err === "object") {
    const name = typeof err.type === "string" ? err.type : "Error";
    out += ` err=${value(`${name}${typeof err.code === "string" ? ` ${err.code}` : ""}: ${String(err.message ?? "")}`)}`;
    if (typeof err.stack === "string") {
      const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l)).map((l) => `    ${l.trim()}`);
      if (frames.length) out += "\n" + (color ? `${DIM}${frames.join("\n")}${RESET}` : frames.join("\n"));
    }
  }
  return out + "\n";
}

/** A stream for pino that writes each JSON line to `out` formatted by formatLogLine. */
export function prettyStream(out: NodeJS.WritableStream, opts: LogFormatOptions = {}): { write(chunk: string): boolean } {
  let pending = "";
  return {
    write(chunk: string): boolean {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop() ?? "";
      let text = "";
      for (const l of lines) if (l !== "") text += formatLogLine(l, opts);
      return text === "" ? true : out.write(text);
    },
  };
}
