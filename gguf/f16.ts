/**
 * IEEE 754 binary16 <-> binary32 conversion by bit manipulation (Node 20 has no Float16Array).
 * float -> half rounds to nearest, ties to even, like the hardware and ggml's
 * GGML_FP32_TO_FP16: values too large for half become +-Inf, tiny ones become half subnormals or
 * signed zero, NaN stays NaN (quiet, top payload bits kept).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Shifts `m` right by `s` (1..31) rounding to nearest, ties to even. */
function shiftRoundEven(m: number, s: number): number {
  const q = m >>> s;
  const rem = m & ((1 << s) - 1);
  const half = 1 << (s - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    // Normal half. A carry out of the mantissa correctly bumps the exponent (and 30 -> Inf).
    return sign | ((e << 10) + shiftRoundEven(mant, 13));
  }
  // Subnormal half: value = m * 2^-24 with the implicit bit made explicit.
  const shift = 14 - e; // 14..; at 25 or more the value is below half the smallest subnormal
  if (shift > 24) return sign;
  return sign | shiftRoundEven(mant | 0x800000, shift);
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// A 64K-entry table makes bulk half -> float conversion a lookup (ggml keeps the same table).
let halfTable: Float32Array | undefined;
function table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** Decodes `count` little-endian halves starting at `byteOffset` of `bytes`. */
export function decodeHalves(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const t = table();
  const out = new Float32Array(count);
  for (let i = 0, p = byteOffset; i < count; i++, p += 2) out[i] = t[bytes[p]! | (bytes[p + 1]! << 8)]!;
  return out;
}
