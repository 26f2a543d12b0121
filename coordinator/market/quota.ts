/**
 * Per-submitter admission: how many tasks one submitter may have unfinished at once, and how fast
 * it may send requests (submits and `get`s). One credential in a hostile (or buggy) hand must not
 * fill the coordinator's memory and store, or take the fleet from every other submitter. A refused
 * request gets a `rejected` event with RATE_LIMITED; an exact re-send of an accepted task is
 * answered from the record and is not limited.
 */
import type { Clock } from "../../common/clock.ts";
import type { Counters } from "../../common/counters.ts";
import type { WireError } from "../../common/protocol.ts";
import { MarketErrors } from "./errors.ts";

export interface QuotaSettings {
  /** Requests per second a submitter's bucket refills; 0 = no rate limit. */
  submitRate: number;
  /** Requests a submitter may send at once before the rate applies. */
  submitBurst: number;
  /** Unfinished tasks per submitter; 0 = no limit. */
  maxOpenTasks: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets tracked at most; the idle ones (full again) are the ones dropped. */
const MAX_BUCKETS = 10_000;

export class SubmitterQuota {
  private readonly buckets = new Map<string, Bucket>();

  /** Refused requests are counted as `submitters.rate-limited` (shown by `colony status`). */
  constructor(private readonly s: QuotaSettings, private readonly clock: Clock, private readonly counters: Pick<Counters, "inc">) {}

  /** Takes one request from `owner`'s bucket; the error to answer with when it is empty. */
  takeRequest(owner: string): WireError | undefined {
    if (this.s.submitRate <= 0) return undefined;
    const now = this.clock.now();
    const b = this.refill(owner, now);
    if (b.tokens < 1) {
      this.counters.inc("submitters.rate-limited");
      return { code: MarketErrors.RATE_LIMITED, message: `more than ${this.s.submitRate} requests/s (burst ${this.s.submitBurst}) from ${owner}; retry in ${Math.ceil(((1 - b.tokens) / this.s.submitRate) * 1000)} ms` };
    }
    b.tokens -= 1;
    return undefined;
  }

  /** Whether `owner` may open one more task while `open` of its tasks are unfinished. */
  admitTask(owner: string, open: number): WireError | undefined {
    if (this.s.maxOpenTasks > 0 && open >= this.s.maxOpenTasks) {
      this.counters.inc("submitters.rate-limited");
      return { code: MarketErrors.RATE_LIMITED, message: `${owner} has ${open} unfinished tasks (limit ${this.s.maxOpenTasks}); submit again when some have finished` };
    }
    return this.takeRequest(owner);
  }

  private refill(owner: string, now: number): Bucket {
    let b = this.buckets.get(owner);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.dropIdle(now);
      b = { tokens: this.s.submitBurst, at: now };
      this.buckets.set(owner, b);
      return b;
    }
    b.tokens = Math.min(this.s.submitBurst, b.tokens + ((now - b.at) / 1000) * this.s.submitRate);
    b.at = now;
    return b;
  }

  /** A bucket that would be full again holds nothing worth keeping. */
  private dropIdle(now: number): void {
    for (const [owner, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.s.submitRate >= this.s.submitBurst) this.buckets.delete(owner);
    }
    // Still full of busy buckets (a flood of usernames): forget the oldest; they start full again.
    for (const owner of this.buckets.keys()) {
      if (this.buckets.size < MAX_BUCKETS) break;
      this.buckets.delete(owner);
    }
  }
}
