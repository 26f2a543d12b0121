/**
 * Counts of events in time buckets, for "how many in the last window" and "in the window before"
 * without keeping one entry per event: `slots` buckets of `windowMs / slots` ms cover the current
 * window and the previous one. O(1) per event, a few numbers per counter, JSON-serialisable (the
 * fitness book persists its counters and a restart keeps every window).
 */
export interface WindowCounterState {
  /** Start time of bucket 0 of `counts` (a multiple of the bucket length). */
  start: number;
  counts: number[];
}

export class WindowCounter {
  private readonly bucketMs: number;
  private readonly kept: number;
  private start = 0;
  private counts: number[] = [];

  constructor(readonly windowMs: number, readonly slots = 10, state?: WindowCounterState) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / slots));
    this.kept = slots * 2;
    if (state) {
      this.start = state.start;
      this.counts = state.counts.slice(-this.kept);
    }
  }

  private advance(now: number): void {
    const bucket = Math.floor(now / this.bucketMs) * this.bucketMs;
    if (this.counts.length === 0) {
      this.start = bucket;
      this.counts = [0];
      return;
    }
    const last = this.start + (this.counts.length - 1) * this.bucketMs;
    if (bucket <= last) return;
    const gap = Math.min(this.kept, Math.round((bucket - last) / this.bucketMs));
    for (let i = 0; i < gap; i++) this.counts.push(0);
    if (this.counts.length > this.kept) this.counts.splice(0, this.counts.length - this.kept);
    this.start = bucket - (this.counts.length - 1) * this.bucketMs;
  }

  add(now: number, n = 1): void {
    this.advance(now);
    // An event older than the kept buckets (a clock step back) counts in the oldest one.
    const i = Math.max(0, Math.min(this.counts.length - 1, Math.floor((now - this.start) / this.bucketMs)));
    this.counts[i]! += n;
  }

  private sum(now: number, fromBack: number, toBack: number): number {
    this.advance(now);
    let s = 0;
    const n = this.counts.length;
    for (let i = Math.max(0, n - toBack); i < n - fromBack; i++) s += this.counts[i]!;
    return s;
  }

  /**
   * Events in the last window: its buckets, the current partial one included, plus the part of the
   * bucket before them that the window still covers (as if its events were spread evenly), so a
   * read just after a bucket boundary does not lose a tenth of the window.
   */
  current(now: number): number {
    const whole = this.sum(now, 0, this.slots);
    const older = this.counts.length - this.slots - 1;
    if (older < 0) return whole;
    const elapsed = (now - (this.start + (this.counts.length - 1) * this.bucketMs)) / this.bucketMs;
    return whole + this.counts[older]! * Math.max(0, 1 - elapsed);
  }

  /** Events in the window before the last one. */
  previous(now: number): number {
    return this.sum(now, this.slots, this.kept);
  }

  toJSON(): WindowCounterState {
    return { start: this.start, counts: [...this.counts] };
  }
}
