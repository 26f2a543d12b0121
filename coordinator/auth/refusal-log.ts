import type { Logger } from "../../common/logger.ts";

/** At most this many refusal lines per key (client identity) per window... */
const PER_WINDOW = 5;
/** ...of this many ms; a hostile client retrying in a loop must not flood the log or the disk. */
const WINDOW_MS = 60_000;
/** Bound on tracked keys, so a flood of made-up usernames cannot grow memory without limit. */
const MAX_KEYS = 1024;
/** At most this many refusal lines per window over all keys: a flood of made-up usernames (a new key each) is summarised too. */
const ALL_PER_WINDOW = 50;

/**
 * Rate-limited warning log for refused connects, publishes and subscribes. The caller passes only
 * fields it has bounded (ids, topic prefixes); passwords never reach it.
 */
export class RefusalLog {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();
  private all = { start: 0, count: 0, suppressed: 0 };
  constructor(private readonly logger: Logger, private readonly now: () => number = Date.now) {}

  note(key: string, fields: Record<string, unknown>): void {
    const t = this.now();
    if (t - this.all.start >= WINDOW_MS) {
      if (this.all.suppressed > 0) this.logger.warn({ suppressed: this.all.suppressed, keys: "all" }, "MQTT refusals suppressed in the last window");
      this.all = { start: t, count: 0, suppressed: 0 };
    }
    if (++this.all.count > ALL_PER_WINDOW) {
      this.all.suppressed++;
      return;
    }
    let w = this.windows.get(key);
    if (w && t - w.start >= WINDOW_MS) {
      if (w.suppressed > 0) this.logger.warn({ key, suppressed: w.suppressed }, "MQTT refusals suppressed in the last window");
      w = undefined;
      this.windows.delete(key);
    }
    if (!w) {
      if (this.windows.size >= MAX_KEYS) this.windows.delete(this.windows.keys().next().value!);
      w = { start: t, count: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    if (w.count <= PER_WINDOW) this.logger.warn(fields, "MQTT access refused");
    else w.suppressed++;
  }
}
