/**
 * The node's one cost model, used twice: to PRICE a task before it runs (the bid, from the model's
 * calibration, the probe snapshot and the device profile) and to MEASURE it after it ran (the done
 * message and the hot cache, from the elapsed time, or from a real energy reading when the device
 * has one: energy-meter.ts). Both use the same watts for the same thread count and the same battery
 * factor, so an estimate and its outcome are comparable. Pure functions: no I/O, no clock.
 */
import type { EnergySource } from "../common/protocol.ts";
import type { DeviceProfile } from "./profile.ts";
import type { ProbeSnapshot } from "./probe.ts";

export interface Calibration {
  /** Load model + create context, cold, in ms. */
  loadMs: number;
  promptTokensPerS: number;
  genTokensPerS: number;
  /** The thread count these figures were measured with, and the one the model runs with. */
  threads: number;
  /** Characters per token of this model's tokenizer on typical prompts (1 for char-level models). */
  charsPerToken: number;
  /** Resident memory the loaded model + context added, in MB. */
  residentMB?: number | undefined;
  at: number;
}

/** Used until a model is calibrated: deliberately slow so an uncalibrated agent rarely wins. */
export const UNCALIBRATED: Omit<Calibration, "threads"> = { loadMs: 2000, promptTokensPerS: 50, genTokensPerS: 5, charsPerToken: 3, at: 0 };

/** Prompt tokens of a prompt of `chars` characters, as priced before the model tokenizes it (+1 for BOS). */
export function estimatePromptTokens(chars: number, charsPerToken: number): number {
  return Math.ceil(chars / Math.max(0.5, charsPerToken)) + 1;
}

/**
 * Tokens a generation can really produce: what the task asks for, but no more than the context has
 * room for after the prompt (node-llama-cpp keeps one cell free). The bidder prices this and the
 * agent asks llama.cpp for this, so a bid never pays for tokens the context cannot hold.
 */
export function generationBudget(maxTokens: number, promptTokens: number, contextSize: number): number {
  return Math.max(1, Math.min(maxTokens, contextSize - promptTokens - 1));
}

export interface CostInput {
  /** Prompt as the model sees it (after the genome's template), in characters. */
  promptChars: number;
  maxTokens: number;
  /** The agent's context size in tokens. */
  contextSize: number;
  asleep: boolean;
  /** Expected wait for a slot, in ms. */
  queueMs: number;
  calibration: Omit<Calibration, "threads">;
  /** Threads the model runs with (its calibration's, else the node's maximum). */
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
  /** Tokens priced for generation (after the context's limit). */
  genTokens: number;
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

/**
 * Joules a computation of `computeMs` adds at the wall with `threads` threads: the idle draw is paid
 * anyway, so only the difference counts (at least 0.1 W, so work is never free).
 */
export function modelledJoules(profile: DeviceProfile, threads: number, computeMs: number): number {
  const watts = Math.max(0.1, activeWatts(profile, threads) - profile.power.idleW);
  return watts * (computeMs / 1000);
}

export function estimateCost(input: CostInput): CostEstimate {
  const c = input.calibration;
  const slowdown = loadSlowdown(input.snapshot.cpuLoad) * thermalSlowdown(input.snapshot.temperatureC, input.profile);
  const wakeMs = input.asleep ? c.loadMs : 0;
  const promptTokens = estimatePromptTokens(input.promptChars, c.charsPerToken);
  const genTokens = generationBudget(input.maxTokens, promptTokens, input.contextSize);
  const promptMs = (promptTokens / c.promptTokensPerS) * 1000;
  const genMs = (genTokens / c.genTokensPerS) * 1000;
  const computeMs = (wakeMs + promptMs + genMs) * slowdown;
  const bf = batteryFactor(input.snapshot, input.profile);
  const energyJ = modelledJoules(input.profile, input.threads, computeMs) * bf;
  return { latencyMs: input.queueMs + computeMs, wakeMs: wakeMs * slowdown, queueMs: input.queueMs, computeMs, genTokens, energyJ, slowdown, batteryFactor: bf };
}

export interface MeasuredInput {
  /** Wall time of wake + prompt + generation, in ms (the queue costs no energy). */
  computeMs: number;
  threads: number;
  snapshot: ProbeSnapshot;
  profile: DeviceProfile;
  /** Joules above the idle baseline read from a real meter over the same interval, if any. */
  metered?: { joules: number; source: Exclude<EnergySource, "model"> } | undefined;
}

/** The energy a finished task cost: a real reading when there is one, else the model on the measured time. */
export function measuredCost(input: MeasuredInput): { energyJ: number; energySource: EnergySource } {
  const bf = batteryFactor(input.snapshot, input.profile);
  if (input.metered) return { energyJ: input.metered.joules * bf, energySource: input.metered.source };
  return { energyJ: modelledJoules(input.profile, input.threads, input.computeMs) * bf, energySource: "model" };
}
