import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeHalves, floatToHalf, halfToFloat } from "../../gguf/f16.ts";

// Reference rounding, computed independently of the bit tricks: the nearest of the two
// neighbouring finite halves by real arithmetic, ties to the even one.
function isNaNHalf(h: number): boolean {
  return (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
}

test("every half survives half -> float -> half exactly (NaNs stay NaN)", () => {
  for (let h = 0; h < 65536; h++) {
    const f = halfToFloat(h);
    if (isNaNHalf(h)) {
      assert.ok(Number.isNaN(f));
      assert.ok(isNaNHalf(floatToHalf(f)));
      continue;
    }
    assert.equal(floatToHalf(f), h, `half 0x${h.toString(16)} -> ${f}`);
  }
});

test("known values: one, max, min subnormal, infinities, signed zero", () => {
  assert.equal(floatToHalf(1), 0x3c00);
  assert.equal(floatToHalf(-2), 0xc000);
  assert.equal(floatToHalf(65504), 0x7bff);
  assert.equal(floatToHalf(2 ** -24), 0x0001);
  assert.equal(floatToHalf(2 ** -14), 0x0400);
  assert.equal(floatToHalf(Infinity), 0x7c00);
  assert.equal(floatToHalf(-Infinity), 0xfc00);
  assert.equal(floatToHalf(-0), 0x8000);
  assert.equal(floatToHalf(1e10), 0x7c00);
  assert.equal(floatToHalf(-1e-10), 0x8000);
  assert.ok(isNaNHalf(floatToHalf(NaN)));
  assert.equal(halfToFloat(0x3555), 0.333251953125);
});

test("midpoints between neighbouring halves round to even, anything past them rounds away", () => {
  // Positive finite halves h and h+1 (including the subnormal range and the top, 65504 -> Inf).
  for (let h = 0; h < 0x7c00; h++) {
    const lo = halfToFloat(h);
    const hi = h + 1 === 0x7c00 ? 65536 : halfToFloat(h + 1); // the "next" value past max overflows
    const mid = (lo + hi) / 2; // exact in float32 for every pair: halves have 11 significant bits
    assert.equal(Math.fround(mid), mid);
    const even = (h & 1) === 0 ? h : h + 1;
    assert.equal(floatToHalf(mid), even, `midpoint of 0x${h.toString(16)}`);
    assert.equal(floatToHalf(-mid), even | 0x8000);
    // The float32 just above / below the midpoint.
    const up = Math.fround(mid + mid * 2 ** -20);
    const down = Math.fround(mid - mid * 2 ** -20);
    if (up > mid) assert.equal(floatToHalf(up), h + 1);
    if (down < mid && down > lo) assert.equal(floatToHalf(down), h);
  }
  // Below half the smallest subnormal a value flushes to zero; exactly half ties to even (zero).
  assert.equal(floatToHalf(2 ** -25), 0);
  assert.equal(floatToHalf(Math.fround(2 ** -25 * 1.0001)), 1);
  assert.equal(floatToHalf(2 ** -26), 0);
});

test("decodeHalves reads little-endian halves at an offset", () => {
  const bytes = new Uint8Array([0xff, 0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]);
  assert.deepEqual([...decodeHalves(bytes, 1, 3)], [1, -2, 2 ** -24]);
});
