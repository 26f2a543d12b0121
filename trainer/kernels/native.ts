/**
 * Loads the native kernels (native/kernels/binding.cc + gemm.h), compiling them on first use.
 *
 * Why a lazy build instead of an install script: the source must be compiled for the CPU that runs
 * it (-march=native picks AVX2/AVX-512 on x86-64, NEON on aarch64), a build must never need the
 * internet, and a failed build must not fail `npm install`. So the first process that wants the
 * kernels runs the C++ compiler once (about a second) and caches the result under
 * node_modules/.cache/colony-kernels/, keyed by source hash, CPU and flags. No node-gyp and no Node
 * headers are needed: the source declares the few Node-API functions it uses when headers are absent.
 * Any failure returns a reason and the caller falls back to the WASM or JS kernels.
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { kernelsEnv } from "./config.ts";
import { refMatmulDyTX, refMatmulDyW, refMatmulXWt } from "./reference.ts";

type NativeFn = (out: Float32Array, a: Float32Array, b: Float32Array, T: number, inDim: number, outDim: number, threads: number) => void;

export interface NativeKernels {
  /** (c, a, b, offsets[3·count], dims [M,N,K,aRs,aCs,bRs,bCs,ldc,accumulate,threads], alpha) */
  gemmBatch: (c: Float32Array, a: Float32Array, b: Float32Array, offsets: Int32Array, dims: Int32Array, alpha: number) => void;
  matmulXWt: NativeFn;
  matmulDyW: NativeFn;
  matmulDyTX: NativeFn;
  /** What the compiler targeted, e.g. "avx2 lanes=8 mr=6 nr=16". */
  isa: string;
  /** The loaded shared object. */
  file: string;
}

export type NativeLoad = { ok: true; kernels: NativeKernels; built: boolean } | { ok: false; reason: string };

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
export const nativeSource = path.join(repoRoot, "native", "kernels", "binding.cc");

// macOS links a shared object with unresolved symbols only when told to look them up at load time
// (they come from the node binary, as on Linux).
const BASE_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fvisibility=hidden", ...(process.platform === "darwin" ? ["-undefined", "dynamic_lookup"] : [])];
// Tried in order: x86-64 and recent aarch64 GCC take -march=native; older ARM compilers want
// -mcpu=native; the last entry builds for the baseline ISA (SSE2 / NEON are still vector units).
const ARCH_FLAGS = [["-march=native"], ["-mcpu=native"], []];

/**
 * Where builds are cached: COLONY_KERNELS_CACHE, else the project's node_modules/.cache, else (a
 * read-only install) the user's own cache folder. Never a shared temp folder: whatever lies in the
 * cache gets loaded into the process.
 */
export function nativeCacheDir(): string {
  const env = kernelsEnv();
  if (env.cacheDir !== undefined) return env.cacheDir;
  const inProject = path.join(repoRoot, "node_modules", ".cache", "colony-kernels");
  try {
    mkdirSync(inProject, { recursive: true });
    accessSync(inProject, constants.W_OK);
    return inProject;
  } catch {
    return path.join(env.userCacheDir, "colony", "kernels");
  }
}

function nodeIncludeDir(): string[] {
  // COLONY_KERNELS_OWN_NAPI=1 builds with the source's own Node-API declarations (what happens on
  // a machine without headers; the tests use it to cover that path here).
  if (kernelsEnv().ownNapi) return ["-DCOLONY_OWN_NAPI_DECLS"];
  // Official Node builds ship headers next to the binary (bin/../include/node); use them if present.
  const dir = path.resolve(path.dirname(process.execPath), "..", "include", "node");
  return existsSync(path.join(dir, "node_api.h")) ? ["-I", dir] : [];
}

function dlopen(file: string): NativeKernels {
  const mod = { exports: {} as Record<string, unknown> };
  process.dlopen(mod, file);
  const e = mod.exports;
  if (typeof e.matmulXWt !== "function" || typeof e.matmulDyW !== "function" || typeof e.matmulDyTX !== "function" || typeof e.gemmBatch !== "function") {
    throw new Error(`${file} does not export the three kernels`);
  }
  return { gemmBatch: e.gemmBatch as NativeKernels["gemmBatch"], matmulXWt: e.matmulXWt as NativeFn, matmulDyW: e.matmulDyW as NativeFn, matmulDyTX: e.matmulDyTX as NativeFn, isa: String(e.isa), file };
}

/** A tiny product against the reference, so a miscompiled or mismatched binary is never used. */
function selfTest(k: NativeKernels): string | undefined {
  const T = 3, I = 37, O = 19;
  const x = new Float32Array(T * I).map((_, i) => Math.sin(i * 1.7));
  const w = new Float32Array(O * I).map((_, i) => Math.cos(i * 0.3));
  const dy = new Float32Array(T * O).map((_, i) => Math.sin(i * 0.9 + 1));
  const pairs: [string, Float32Array, Float32Array][] = [];
  const y1 = new Float32Array(T * O), y2 = new Float32Array(T * O);
  k.matmulXWt(y1, x, w, T, I, O, 2); refMatmulXWt(y2, x, w, T, I, O); pairs.push(["matmulXWt", y1, y2]);
  const d1 = new Float32Array(T * I).fill(0.5), d2 = new Float32Array(T * I).fill(0.5);
  k.matmulDyW(d1, dy, w, T, I, O, 2); refMatmulDyW(d2, dy, w, T, I, O); pairs.push(["matmulDyW", d1, d2]);
  const g1 = new Float32Array(O * I).fill(-0.25), g2 = new Float32Array(O * I).fill(-0.25);
  k.matmulDyTX(g1, dy, x, T, I, O, 2); refMatmulDyTX(g2, dy, x, T, I, O); pairs.push(["matmulDyTX", g1, g2]);
  for (const [name, a, b] of pairs) {
    for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= 1e-4 * (1 + Math.abs(b[i]!)))) return `${name} self-test mismatch at ${i}`;
  }
  return undefined;
}

function build(out: string): { ok: true } | { ok: false; reason: string } {
  const cxx = kernelsEnv().cxx;
  let lastErr = "";
  for (const arch of ARCH_FLAGS) {
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    try {
      execFileSync(cxx, [...BASE_FLAGS, ...arch, ...nodeIncludeDir(), nativeSource, "-o", tmp], { stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
      // rename is atomic: concurrent processes (parallel test files) each build, the last one wins,
      // and no process ever opens a half-written file.
      renameSync(tmp, out);
      return { ok: true };
    } catch (err) {
      rmSync(tmp, { force: true });
      const e = err as { stderr?: Buffer; message: string; code?: string };
      lastErr = e.code === "ENOENT" ? `no C++ compiler (${cxx}) found` : (e.stderr?.toString().trim().split("\n").slice(0, 3).join(" | ") || e.message);
      if (e.code === "ENOENT") break;
    }
  }
  return { ok: false, reason: `native kernels did not compile: ${lastErr}` };
}

/**
 * Drops builds of older sources (and temp files of killed builds) so the cache does not grow with
 * every edit. Only files untouched for 10 minutes go: a process that built one a moment ago may
 * be about to load it (an open or loaded file is safe to unlink on Linux and macOS anyway).
 */
function pruneStale(dir: string, keep: string): void {
  try {
    const cutoff = Date.now() - 10 * 60_000;
    for (const f of readdirSync(dir)) {
      const p = path.join(dir, f);
      if (p === keep || !/^kernels-.*\.(node|tmp)$/.test(f)) continue;
      if (statSync(p).mtimeMs < cutoff) rmSync(p, { force: true });
    }
  } catch {
    // best effort: a cache we cannot tidy still works
  }
}

/**
 * The CPU's feature flags (Linux: the first "flags"/"Features" line of /proc/cpuinfo). Part of the
 * cache key because a -march=native build run on a CPU without its instructions dies of SIGILL,
 * which no fallback can catch: a copied cache or a VM with masked features must rebuild instead.
 */
function cpuFeatures(): string {
  try {
    const m = /^(flags|Features)\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[2]?.trim() ?? "";
  } catch {
    return "";
  }
}

let cached: NativeLoad | undefined;

/** Loads (building once if needed) the native kernels; the result is memoized per process. */
export function loadNativeKernels(): NativeLoad {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): NativeLoad {
  if (process.platform !== "linux" && process.platform !== "darwin") return { ok: false, reason: `no native kernels for ${process.platform}` };
  // The key covers every source file (binding.cc, gemm.h, pool.h, selftest.cc), so an edit rebuilds.
  const hash = createHash("sha256");
  try {
    const dir = path.dirname(nativeSource);
    for (const f of readdirSync(dir).sort()) hash.update(f).update(readFileSync(path.join(dir, f)));
  } catch {
    return { ok: false, reason: `native source ${nativeSource} is missing` };
  }
  const key = hash
    .update(JSON.stringify([BASE_FLAGS, ARCH_FLAGS, kernelsEnv().cxx, process.arch, os.cpus()[0]?.model ?? "", cpuFeatures(), nodeIncludeDir()]))
    .digest("hex")
    .slice(0, 16);
  const dir = nativeCacheDir();
  const file = path.join(dir, `kernels-${process.platform}-${process.arch}-${key}.node`);
  let built = false;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    return { ok: false, reason: `cannot create ${dir}: ${(err as Error).message}` };
  }
  if (!existsSync(file)) {
    const r = build(file);
    if (!r.ok) return r;
    built = true;
    pruneStale(dir, file);
  }
  let k: NativeKernels;
  try {
    k = dlopen(file);
  } catch (err) {
    if (built) return { ok: false, reason: `cannot load ${file}: ${(err as Error).message}` };
    // A damaged cache entry (disk full, killed copy): build it again once.
    rmSync(file, { force: true });
    const r = build(file);
    if (!r.ok) return r;
    built = true;
    try {
      k = dlopen(file);
    } catch (err2) {
      return { ok: false, reason: `cannot load ${file}: ${(err2 as Error).message}` };
    }
  }
  const bad = selfTest(k);
  if (bad) return { ok: false, reason: bad };
  return { ok: true, kernels: k, built };
}
