import { test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { readKernelsConfig } from "../../trainer/kernels/config.ts";

test("kernels config: defaults, and an empty variable counts as unset (CXX excepted)", () => {
  const want = { backend: "auto", threads: Math.max(1, os.availableParallelism()), cacheDir: undefined, userCacheDir: path.join(os.homedir(), ".cache"), ownNapi: false, cxx: "g++" };
  assert.deepEqual({ ...readKernelsConfig({}) }, want);
  const empty = readKernelsConfig({ COLONY_KERNELS: "", COLONY_KERNEL_THREADS: "", COLONY_KERNELS_CACHE: "", XDG_CACHE_HOME: "", COLONY_KERNELS_OWN_NAPI: "", CXX: "" });
  assert.deepEqual({ ...empty }, { ...want, cxx: "" });
});

test("kernels config: reads every variable and freezes the result", () => {
  const c = readKernelsConfig({ COLONY_KERNELS: "wasm", COLONY_KERNEL_THREADS: "3", COLONY_KERNELS_CACHE: "/c", XDG_CACHE_HOME: "/x", COLONY_KERNELS_OWN_NAPI: "1", CXX: "clang++" });
  assert.deepEqual({ ...c }, { backend: "wasm", threads: 3, cacheDir: "/c", userCacheDir: "/x", ownNapi: true, cxx: "clang++" });
  assert.ok(Object.isFrozen(c));
  assert.equal(readKernelsConfig({ COLONY_KERNELS_OWN_NAPI: "yes" }).ownNapi, false);
});

test("kernels config: a bad backend and a bad thread count are reported together as KERNEL_OPTIONS_INVALID", () => {
  assert.throws(
    () => readKernelsConfig({ COLONY_KERNELS: "gpu", COLONY_KERNEL_THREADS: "0" }),
    (err: unknown) => {
      assert.ok(err instanceof ColonyError);
      assert.equal(err.code, "KERNEL_OPTIONS_INVALID");
      assert.equal((err.details?.problems as string[]).length, 2);
      assert.match(err.message, /COLONY_KERNELS/);
      assert.match(err.message, /COLONY_KERNEL_THREADS must be an integer 1\.\.256, got 0/);
      return true;
    },
  );
  for (const bad of ["257", "1.5", "two"]) assert.throws(() => readKernelsConfig({ COLONY_KERNEL_THREADS: bad }), /KERNEL_THREADS/);
});
