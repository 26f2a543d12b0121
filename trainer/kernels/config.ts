import os from "node:os";
import path from "node:path";
import { ColonyError } from "../../common/errors.ts";
import { KernelErrors } from "./errors.ts";

/**
 * The kernels' one reader of the environment: trainer/kernels.ts and trainer/kernels/native.ts take
 * every setting from `kernelsEnv()`, read and validated once per process (when trainer/kernels.ts
 * loads) and frozen. docs/kernels.md lists the variables.
 */
export const KERNEL_BACKENDS = ["auto", "native", "wasm", "js", "reference"] as const;
export type KernelBackend = Exclude<(typeof KERNEL_BACKENDS)[number], "auto">;

export interface KernelsConfig {
  /** COLONY_KERNELS: the backend chosen at the first product. Default (unset or empty) "auto". */
  readonly backend: KernelBackend | "auto";
  /** COLONY_KERNEL_THREADS: threads per native product, an integer 1..256. Default (unset or empty): all cores. */
  readonly threads: number;
  /** COLONY_KERNELS_CACHE: folder for native builds. Default (unset or empty): node_modules/.cache/colony-kernels, see trainer/kernels/native.ts. */
  readonly cacheDir: string | undefined;
  /** XDG_CACHE_HOME: the user's cache folder, used when the project's is read-only. Default (unset or empty) ~/.cache. */
  readonly userCacheDir: string;
  /** COLONY_KERNELS_OWN_NAPI=1: build with the source's own Node-API declarations. Any other value: false. */
  readonly ownNapi: boolean;
  /** CXX: the C++ compiler. Default (unset) g++; an empty CXX is kept, and the native build then fails. */
  readonly cxx: string;
}

/** Why `n` is no thread count (an integer 1..256), or undefined when it is one; `what` names the setting. */
export function threadsProblem(n: number, what: string): string | undefined {
  return Number.isInteger(n) && n >= 1 && n <= 256 ? undefined : `${what} must be an integer 1..256, got ${String(n)}`;
}

/** Reads the kernels' variables from `env`; every problem is reported at once as KERNEL_OPTIONS_INVALID. */
export function readKernelsConfig(env: NodeJS.ProcessEnv = process.env): KernelsConfig {
  const problems: string[] = [];
  const backend = env.COLONY_KERNELS || "auto";
  if (!(KERNEL_BACKENDS as readonly string[]).includes(backend)) {
    problems.push(`unknown kernel backend ${JSON.stringify(backend)} in COLONY_KERNELS (expected one of ${KERNEL_BACKENDS.join(", ")})`);
  }
  const rawThreads = env.COLONY_KERNEL_THREADS;
  const threads = rawThreads === undefined || rawThreads === "" ? Math.max(1, os.availableParallelism()) : Number(rawThreads);
  const threadsBad = threadsProblem(threads, "COLONY_KERNEL_THREADS");
  if (threadsBad !== undefined) problems.push(threadsBad);
  if (problems.length > 0) throw new ColonyError(KernelErrors.KERNEL_OPTIONS_INVALID, problems.join("; "), { problems });
  return Object.freeze({
    backend: backend as KernelBackend | "auto",
    threads,
    cacheDir: env.COLONY_KERNELS_CACHE || undefined,
    userCacheDir: env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"),
    ownNapi: env.COLONY_KERNELS_OWN_NAPI === "1",
    cxx: env.CXX ?? "g++",
  });
}

let cached: KernelsConfig | undefined;

/** `readKernelsConfig(process.env)`, read once per process. */
export function kernelsEnv(): KernelsConfig {
  cached ??= readKernelsConfig();
  return cached;
}
