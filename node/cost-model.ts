/**
 * Prices one task for one agent from measurements: the model's calibration (load ms, prompt and
 * generation tokens/s at the configured thread count), the probe snapshot and the device profile.
 * Pure functions: no I/O, no clock; the bidder and tests call them directly.
 */
import type { DeviceProfile } from "./profile.ts";
import type { ProbeSnapshot } from "./probe.ts";

export interface Calibration {
  /** Load model + create context, cold, in ms. */
  loadMs: number;
  promptTokensPerS: number;
  genTokensPerS: number;
  threads: number;
  /** Characters per token of this model's tokenizer on typical prompts (1 for char-level models). */
  charsPerToken: number;
  /** Resident memory the loaded model + context added, in MB. */
  residentMB?: number | undefined;
  at: number;
}

/** Used until a model is calibrated: deliberately slow so an uncalibrated agent rarely wins. */
export const UNCALIBRATED: Calibration = { loadMs: 2000, promptTokensPerS: 50, genTokensPerS: 5, threads: 1, charsPerToken: 3, at: 0 };

export interface CostInput {
  promptChars: number;
  maxTokens: number;
  asleep: boolean;
  /** Expected wait for a slot, in ms. */
  queueMs: number;
  calibration: Calibration;
  threads: number;
  snapshot: ProbeSnapshot;
  profile: DeviceProfile;
}

export interface CostEstimate {
  latencyMs: number;
  wakeMs: number;
  queueMs: number;
  /** Compute time (wake + prompt + generation), without the queue. */
  computeMs: number;
  energyJ: number;
  /** Latency multiplier from other load on the CPU and thermal throttling. */
  slowdown: number;
  /** Energy multiplier from the battery policy. */
  batteryFactor: number;
}

/**
 * Other work on the CPU: the inference threads get roughly (1 - load) of the cores, so with the
 * whole machine busy they run about half as fast (they compete 1:1 with the other runnable threads).
 */
export function loadSlowdown(cpuLoadPercent: number): number {
  const load = Math.min(100, Math.max(0, cpuLoadPercent)) / 100;
  return 1 + load;
}

export function thermalSlowdown(temperatureC: number | undefined, profile: DeviceProfile): number {
  if (temperatureC === undefined) return 1;
  return temperatureC >= profile.thermal.throttleC ? profile.thermal.throttleSlowdown : 1;
}

/** On battery the same joules cost more as the charge drains (profile.battery). */
export function batteryFactor(snapshot: ProbeSnapshot, profile: DeviceProfile): number {
  if (snapshot.batteryPercent === undefined) return 1;
  if (snapshot.charging && profile.battery.onMains === "no-penalty") return 1;
  return 1 + profile.battery.penaltyPerPercentDrained * (100 - snapshot.batteryPercent);
}

/** Watts drawn while generating with `threads` threads. */
export function activeWatts(profile: DeviceProfile, threads: number): number {
  const p = profile.power;
  return p.perThreadW === undefined ? p.activeW : Math.min(p.activeW, p.idleW + threads * p.perThreadW);
}

export function estimateCost(input: CostInput): CostEstimate {
  const c = input.calibration;
  const slowdown = loadSlowdown(input.snapshot.cpuLoad) * thermalSlowdown(input.snapshot.temperatureC, input.profile);
  const wakeMs = input.asleep ? c.loadMs : 0;
  const promptTokens = Math.ceil(input.promptChars / Math.max(0.5, c.charsPerToken)) + 1;
  const promptMs = (promptTokens / c.promptTokensPerS) * 1000;
  const genMs = (input.maxTokens / c.genTokensPerS) * 1000;
  const computeMs = (wakeMs + promptMs + genMs) * slowdown;
  const bf = batteryFactor(input.snapshot, input.profile);
  // Energy at the wall for the compute time; the idle draw is paid anyway, so only the difference counts.
  const watts = Math.max(0.1, activeWatts(input.profile, input.threads) - input.profile.power.idleW);
  const energyJ = watts * (computeMs / 1000) * bf;
  return { latencyMs: input.queueMs + computeMs, wakeMs: wakeMs * slowdown, queueMs: input.queueMs, computeMs, energyJ, slowdown, batteryFactor: bf };
}
