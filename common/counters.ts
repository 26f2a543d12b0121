import type { Logger } from "./logger.ts";

/**
 * Counters for `colony status`, and the one place inbound messages are dropped: each drop is
 * counted under its reason and logged at most once per reason per `logEveryMs`, so a flood of bad
 * payloads cannot flood the log (conventions.md: counted, logged once, dropped).
 */
export class Counters {
  private readonly counts = new Map<string, number>();
  private readonly lastLog = new Map<string, number>();
  constructor(private readonly logger: Logger, private readonly now: () => number = Date.now, private readonly logEveryMs = 10_000) {}

  inc(name: string, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.counts.get(name) ?? 0;
  }

  /** Counts a dropped inbound message under `dropped.{reason}`; `info` must hold no peer payload. */
  drop(reason: string, info: Record<string, unknown> = {}): void {
    this.inc("dropped");
    this.inc(`dropped.${reason}`);
    const t = this.now();
    if ((this.lastLog.get(reason) ?? -Infinity) + this.logEveryMs <= t) {
      this.lastLog.set(reason, t);
      this.logger.warn({ reason, total: this.get(`dropped.${reason}`), ...info }, "inbound message dropped (further drops of this kind are counted, logged at most every 10 s)");
    }
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
