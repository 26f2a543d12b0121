// The portability paths, each in a fresh process with its own empty build cache: no compiler
// (auto falls back to wasm, or to js where WebAssembly is off; COLONY_KERNELS=native fails with
// KERNEL_BACKEND_UNAVAILABLE), and a build without Node headers (the source's own Node-API
// declarations, as on a bare device).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { installCommand } from "../fixtures/system-tools.ts";

const run = promisify(execFile);
const kernelsUrl = new URL("../../trainer/kernels.ts", import.meta.url).href;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

// The child multiplies a small odd shape with the exported kernels, compares with the reference,
// and prints what it chose as JSON.
const child = `
const k = await import(${JSON.stringify(kernelsUrl)});
const r = await import(${JSON.stringify(new URL("../../trainer/kernels/reference.ts", import.meta.url).href)});
const out = {};
try {
  const T = 9, I = 45, O = 21;
  const x = Float32Array.from({ length: T * I }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: O * I }, (_, i) => Math.cos(i));
  const y = new Float32Array(T * O), yr = new Float32Array(T * O);
  k.matmulXWt(y, x, w, T, I, O);
  r.refMatmulXWt(yr, x, w, T, I, O);
  out.maxDiff = Math.max(...y.map((v, i) => Math.abs(v - yr[i])));
  out.info = k.kernelInfo();
} catch (err) {
  out.error = err.code ?? String(err);
}
console.log(JSON.stringify(out));
`;

async function inChild(env: Record<string, string>, nodeFlags: string[] = []): Promise<{ maxDiff?: number; info?: { backend: string; fallbackReason?: string; isa?: string }; error?: string }> {
  const { stdout } = await run(process.execPath, [...nodeFlags, "--import", "tsx", "--input-type=module", "-e", child], {
    cwd: repo,
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

test("without a compiler, auto falls back to wasm (js without WebAssembly); native-only fails with a stable code", async () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), "colony-kernels-"));
  try {
    const env = { CXX: "/nonexistent/c++", COLONY_KERNELS_CACHE: cache };
    const auto = await inChild({ ...env, COLONY_KERNELS: "auto" });
    assert.equal(auto.info?.backend, "wasm");
    assert.match(auto.info?.fallbackReason ?? "", /no C\+\+ compiler/);
    assert.ok(auto.maxDiff! < 1e-4);
    // --jitless turns WebAssembly off: the last resort is plain JS.
    const bare = await inChild({ ...env, COLONY_KERNELS: "auto" }, ["--jitless"]);
    assert.equal(bare.info?.backend, "js");
    assert.match(bare.info?.fallbackReason ?? "", /no C\+\+ compiler.*WebAssembly/);
    assert.ok(bare.maxDiff! < 1e-4);
    const forced = await inChild({ ...env, COLONY_KERNELS: "native" });
    assert.equal(forced.error, "KERNEL_BACKEND_UNAVAILABLE");
    assert.deepEqual(readdirSync(cache), [], "a failed build leaves no file behind");
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test("the native source also builds without Node headers (own Node-API declarations)", async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), "colony-kernels-"));
  try {
    const r = await inChild({ COLONY_KERNELS_OWN_NAPI: "1", COLONY_KERNELS_CACHE: cache, COLONY_KERNELS: "auto", COLONY_KERNEL_THREADS: "2" });
    if (r.info?.backend !== "native" && /no C\+\+ compiler/.test(r.info?.fallbackReason ?? "")) {
      t.skip(`no C++ compiler on this machine: install with \`${installCommand("g++")}\` (.ci/run does)`);
      return;
    }
    assert.equal(r.info?.backend, "native", r.info?.fallbackReason);
    assert.ok(r.maxDiff! < 1e-4);
    assert.equal(readdirSync(cache).filter((f) => f.endsWith(".node")).length, 1);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});
