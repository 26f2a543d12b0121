// Every fast kernel backend (js, wasm, native) against the reference loops: odd shapes that are not multiples of the
// native micro-tile / cache blocks, T=1, a large case, several thread counts, views with a byte
// offset, accumulate-vs-overwrite semantics, and the shape checks of the dispatcher.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  kernelInfo,
  kernelsFor,
  matmulDyTX,
  matmulDyW,
  matmulXWt,
  setKernelBackend,
  setKernelThreads,
  type KernelBackend,
} from "../../trainer/kernels.ts";
import { loadNativeKernels } from "../../trainer/kernels/native.ts";
import { refMatmulDyTX, refMatmulDyW, refMatmulXWt } from "../../trainer/kernels/reference.ts";
import { installCommand } from "../fixtures/system-tools.ts";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

// Float32 sums in another order differ by rounding that grows with the length of the sum (K).
function assertClose(got: Float32Array, want: Float32Array, K: number, what: string): void {
  assert.equal(got.length, want.length, what);
  const tol = 1e-5 * Math.sqrt(K + 1) * 4;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= tol * (1 + Math.abs(want[i]!)))) assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (|diff| ${d})`);
  }
}

// [T, in, out]: 1s and primes around the AVX2 (6x16), AVX-512 (8x32) and NEON (8x8) tiles; K past
// the 256 block; M past MC (96/128) and N past NC (512/1024); T=1 decode; a large layer.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 5, 3],
  [2, 3, 7],
  [1, 512, 1408],
  [7, 37, 33],
  [13, 129, 65],
  [67, 257, 300],
  [130, 300, 1031],
  [300, 70, 97],
  [160, 384, 1100],
];

interface Case {
  x: Float32Array; w: Float32Array; dy: Float32Array; dx0: Float32Array; dw0: Float32Array;
  y: Float32Array; dx: Float32Array; dw: Float32Array;
}
// The reference is slow (~1 GFLOP/s): compute it once per shape for all backends and thread counts.
const refs = new Map<string, Case>();
function reference(T: number, I: number, O: number): Case {
  const key = `${T},${I},${O}`;
  let c = refs.get(key);
  if (!c) {
    const x = rand(T * I, T * 31 + I), w = rand(O * I, O * 17 + 3), dy = rand(T * O, I + O + 5);
    const dx0 = rand(T * I, 7), dw0 = rand(O * I, 8);
    const y = new Float32Array(T * O), dx = dx0.slice(), dw = dw0.slice();
    refMatmulXWt(y, x, w, T, I, O);
    refMatmulDyW(dx, dy, w, T, I, O);
    refMatmulDyTX(dw, dy, x, T, I, O);
    c = { x, w, dy, dx0, dw0, y, dx, dw };
    refs.set(key, c);
  }
  return c;
}

function checkBackend(backend: KernelBackend, T: number, I: number, O: number): void {
  const k = kernelsFor(backend);
  const c = reference(T, I, O);
  const tag = `${backend} T=${T} in=${I} out=${O}`;
  const y = rand(T * O, 99); // garbage that must be overwritten
  k.matmulXWt(y, c.x, c.w, T, I, O);
  assertClose(y, c.y, I, `${tag} matmulXWt`);
  const dx = c.dx0.slice(); // nonzero start: the kernel must accumulate
  k.matmulDyW(dx, c.dy, c.w, T, I, O);
  assertClose(dx, c.dx, O, `${tag} matmulDyW`);
  const dw = c.dw0.slice();
  k.matmulDyTX(dw, c.dy, c.x, T, I, O);
  assertClose(dw, c.dw, T, `${tag} matmulDyTX`);
}

test("js kernels match the reference on odd, tiny and large shapes", () => {
  for (const [T, I, O] of SHAPES) checkBackend("js", T, I, O);
});

test("wasm SIMD kernels match the reference on odd, tiny and large shapes", () => {
  // Node 20 always has WASM SIMD; unavailability is covered in kernels-fallback.test.ts.
  for (const [T, I, O] of SHAPES) checkBackend("wasm", T, I, O);
});

// Where a C++ compiler exists the native backend must build and load: a broken build fails here
// instead of silently falling back. Without one (a bare device) the test is skipped with the reason.
function hasCompiler(): boolean {
  try {
    execFileSync(process.env.CXX ?? "g++", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const native = loadNativeKernels();
const nativeSkip = native.ok ? false : hasCompiler() ? false : `no C++ compiler: ${native.reason}; install with \`${installCommand("g++")}\` (.ci/run does)`;

test("native kernels match the reference at 1, 2, 3 and 5 threads", { skip: nativeSkip }, () => {
  assert.ok(native.ok, native.ok ? "" : native.reason);
  try {
    for (const threads of [1, 2, 3, 5]) {
      setKernelThreads(threads);
      for (const [T, I, O] of SHAPES) checkBackend("native", T, I, O);
    }
  } finally {
    setKernelThreads(2);
  }
});

test("auto picks native when it loads, and the dispatching exports match the reference", () => {
  const info = setKernelBackend("auto");
  if (native.ok) {
    assert.equal(info.backend, "native");
    assert.match(info.isa ?? "", /lanes=\d+/);
  } else {
    assert.equal(info.backend, "js");
    assert.ok(info.fallbackReason);
  }
  assert.equal(kernelInfo().backend, info.backend);
  // Views with a byte offset (the model slices big buffers) must read and write the right floats.
  const T = 5, I = 41, O = 23;
  const xBuf = rand(T * I + 3, 1), wBuf = rand(O * I + 1, 2), dyBuf = rand(T * O + 2, 3);
  const x = xBuf.subarray(3), w = wBuf.subarray(1), dy = dyBuf.subarray(2);
  const yBuf = new Float32Array(T * O + 4), y = yBuf.subarray(4);
  const yRef = new Float32Array(T * O);
  matmulXWt(y, x, w, T, I, O);
  refMatmulXWt(yRef, x, w, T, I, O);
  assertClose(y, yRef, I, "dispatch matmulXWt");
  assert.deepEqual([...yBuf.subarray(0, 4)], [0, 0, 0, 0], "nothing written before the view");
  const dx = new Float32Array(T * I), dxRef = new Float32Array(T * I);
  matmulDyW(dx, dy, w, T, I, O);
  refMatmulDyW(dxRef, dy, w, T, I, O);
  assertClose(dx, dxRef, O, "dispatch matmulDyW");
  const dw = new Float32Array(O * I), dwRef = new Float32Array(O * I);
  matmulDyTX(dw, dy, x, T, I, O);
  refMatmulDyTX(dwRef, dy, x, T, I, O);
  assertClose(dw, dwRef, T, "dispatch matmulDyTX");
});

test("empty sizes: T=0 leaves outputs alone, in=0 gives y = 0", () => {
  for (const b of ["js", "wasm", "native"] as const) {
    if (b === "native" && !native.ok) continue;
    setKernelBackend(b);
    const dx = new Float32Array([1, 2]);
    matmulDyW(dx, new Float32Array(0), new Float32Array(6), 0, 2, 3);
    assert.deepEqual([...dx], [1, 2]);
    const y = new Float32Array([5, 5, 5]);
    matmulXWt(y, new Float32Array(0), new Float32Array(0), 1, 0, 3);
    assert.deepEqual([...y], [0, 0, 0]);
  }
  setKernelBackend("auto");
});

test("bad shapes, backends and thread counts are ColonyErrors with stable codes", () => {
  const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;
  const a = new Float32Array(6);
  assert.throws(() => matmulXWt(a, a, new Float32Array(5), 2, 3, 2), code("KERNEL_SHAPE_INVALID"));
  assert.throws(() => matmulDyW(new Float32Array(5), a, a, 2, 3, 3), code("KERNEL_SHAPE_INVALID"));
  assert.throws(() => matmulDyTX(a, a, a, -1, 3, 2), code("KERNEL_SHAPE_INVALID"));
  assert.throws(() => matmulDyTX(a, a, a, 1.5, 2, 2), code("KERNEL_SHAPE_INVALID"));
  assert.throws(() => matmulXWt(a, new Float64Array(6) as unknown as Float32Array, a, 2, 3, 2), code("KERNEL_SHAPE_INVALID"));
  assert.throws(() => setKernelThreads(0), code("KERNEL_OPTIONS_INVALID"));
  assert.throws(() => setKernelThreads(2.5), code("KERNEL_OPTIONS_INVALID"));
  assert.throws(() => setKernelBackend("cuda" as "js"), code("KERNEL_OPTIONS_INVALID"));
});
