/**
 * A small seeded pseudo-random generator: the same seed gives the same sequence on every run,
 * every machine and every Node version (only 32-bit integer arithmetic, no Math.random).
 * Used wherever Colony needs reproducible randomness: skill instances, training data order,
 * weight initialisation, fuzz tests, mutation of genomes.
 *
 * The core is sfc32 (Chris Doty-Humphrey's "small fast counting" generator, public domain): it
 * passes PractRand to many terabytes, has a 128-bit state and a guaranteed minimum period of 2^32
 * thanks to its counter, which is plenty for these uses. The seed (a number or a string) is
 * expanded to the 128-bit state with splitmix32 so that nearby seeds give unrelated streams.
 * Not for cryptography.
 */

/** One splitmix32 step: a well-mixed 32-bit value from a 32-bit counter. */
function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units: a stable 32-bit hash of a string seed. */
export function hashString32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export type Seed = number | string;

function seedTo32(seed: Seed): number {
  if (typeof seed === "string") return hashString32(seed);
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number or a string, got ${seed}`);
  // Fold the high bits of large integer seeds (e.g. Date.now()) in instead of dropping them.
  const hi = Math.floor(seed / 0x100000000);
  return (seed >>> 0) ^ Math.imul(hi | 0, 0x9e3779b1);
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(seed: Seed = 0) {
    const s = seedTo32(seed);
    this.a = splitmix32(s);
    this.b = splitmix32(s + 1);
    this.c = splitmix32(s + 2);
    this.d = 1; // the counter
    // Discard the first outputs: sfc32's early values are correlated with the seed.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniform unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform integer in [lo, hiInclusive]; both bounds must be safe integers. */
  int(lo: number, hiInclusive: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hiInclusive) || hiInclusive < lo) {
      throw new RangeError(`int(${lo}, ${hiInclusive}): bounds must be safe integers with lo <= hi`);
    }
    const span = hiInclusive - lo + 1;
    if (span <= 0x100000000) {
      // Rejection sampling removes the modulo bias.
      const limit = Math.floor(0x100000000 / span) * span;
      let x: number;
      do x = this.nextU32();
      while (x >= limit);
      return lo + (x % span);
    }
    return lo + Math.floor(this.next() * span);
  }

  /** A standard normal sample (mean 0, sd 1), Marsaglia's polar method; the pair's spare is kept. */
  normal(mean = 0, sd = 1): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return mean + sd * v;
    }
    let u: number, v: number, s: number;
    do {
      u = this.next() * 2 - 1;
      v = this.next() * 2 - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    return mean + sd * u * m;
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError("pick() from an empty array");
    return arr[this.int(0, arr.length - 1)]!;
  }

  /** Shuffles `arr` in place (Fisher-Yates) and returns it. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
    return arr;
  }

  /** An independent generator derived from this one's stream (for sub-tasks that must not shift it twice). */
  fork(): Rng {
    return new Rng(this.nextU32());
  }
}
