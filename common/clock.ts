/**
 * Time as a dependency (conventions.md, point 5): the coordinator and the node daemon read the time
 * and set timers only through a Clock, so state machines are tested with FakeClock, without
 * sleeping, and a node whose wall clock is off can be simulated (test/integration/node-clock-skew).
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    // Timers must never keep a closing process alive; close() cancels them anyway.
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Runs `fn` every `ms` until the returned timer is cancelled; each run is scheduled after the
 * previous one returned, so a slow run never piles up behind itself.
 */
export function every(clock: Clock, ms: number, fn: () => void): Timer {
  let current: Timer | undefined;
  let cancelled = false;
  const tick = () => {
    if (cancelled) return;
    try {
      fn();
    } finally {
      if (!cancelled) current = clock.setTimer(ms, tick);
    }
  };
  current = clock.setTimer(ms, tick);
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** The system clock shifted by `offsetMs`: a device whose wall clock is wrong (tests, simulations). */
export function skewedClock(offsetMs: number, base: Clock = systemClock): Clock {
  return { now: () => base.now() + offsetMs, setTimer: (ms, fn) => base.setTimer(ms, fn) };
}

/** A manual clock: `advance(ms)` fires due timers in time order. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * Where another machine's clock stands against ours, learned from the messages it stamps with the
 * time it sent them (`sentAt`). Each message gives d = receivedAt - sentAt = offset + transit; the
 * smallest d of the recent ones is the offset plus the least transit (milliseconds on a LAN), so
 * a message that sat in a queue shows up late instead of shifting the estimate. When several
 * messages in a row arrive more than `jumpToleranceMs` "later" than the estimate, a clock jumped
 * (a Raspberry Pi without an RTC setting its clock by NTP minutes after boot) and the estimate
 * restarts from them. Pure: tested with plain numbers.
 */
export class SenderClock {
  private readonly recent: number[] = [];
  private above = 0;
  constructor(private readonly window = 32, private readonly jumpToleranceMs = 1000, private readonly jumpAfter = 3) {}

  observe(sentAt: number, receivedAt: number): void {
    const d = receivedAt - sentAt;
    const est = this.offsetMs;
    if (est !== undefined && d > est + this.jumpToleranceMs) {
      if (++this.above >= this.jumpAfter) {
        this.recent.splice(0, this.recent.length - (this.jumpAfter - 1));
        this.above = 0;
      }
    } else this.above = 0;
    this.recent.push(d);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** How far our clock is ahead of the sender's (ms), once a message was seen. */
  get offsetMs(): number | undefined {
    return this.recent.length ? Math.min(...this.recent) : undefined;
  }

  /** A time on the sender's clock, on ours. */
  toLocal(t: number): number {
    return t + (this.offsetMs ?? 0);
  }
}
