/**
 * Device profiles (firmware-configs/*.json): what a class of device can do and what work costs it.
 * The bidder prices bids from the profile's power model and applies its battery and thermal policy;
 * the agent pool respects its memory reserve. docs/device-profiles.md explains each field.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ColonyError } from "../common/errors.ts";
import { readJsonFile, formatIssues, deepFreeze } from "../common/config.ts";
import { NodeErrors } from "./errors.ts";

export const PROFILES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "firmware-configs");

const regex = z.string().max(512).refine((s) => {
  try {
    new RegExp(s, "i");
    return true;
  } catch {
    return false;
  }
}, "must be a valid regular expression");

export const ProfileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "must be 1-64 characters of [a-z0-9-]"),
  description: z.string().max(1024).optional(),
  /** How detection recognises the device; every given field must match. Highest priority wins. */
  match: z.strictObject({
    systemModel: regex.optional(),
    cpuBrand: regex.optional(),
    arch: z.array(z.string().max(16)).max(8).optional(),
    hasBattery: z.boolean().optional(),
    priority: z.number().int().min(0).max(1000).default(0),
  }),
  power: z
    .strictObject({
      idleW: z.number().min(0).max(2000),
      activeW: z.number().min(0).max(5000),
      /** Extra watts per inference thread; when given, active power = idleW + threads x perThreadW (capped at activeW). */
      perThreadW: z.number().min(0).max(500).optional(),
    })
    .refine((p) => p.activeW >= p.idleW, "activeW must be >= idleW"),
  battery: z.strictObject({
    /** On battery (not charging) below this level the node declines work. */
    minPercent: z.number().min(0).max(100),
    /** On battery, the bid's energy is multiplied by 1 + this x (100 - level). */
    penaltyPerPercentDrained: z.number().min(0).max(1),
    /** On mains or charging: "no-penalty" ignores the battery; "same" applies the policy anyway. */
    onMains: z.enum(["no-penalty", "same"]),
  }),
  thermal: z
    .strictObject({
      /** At or above: latency estimates are multiplied by throttleSlowdown (the SoC clocks down). */
      throttleC: z.number().min(0).max(150),
      /** At or above: decline work. */
      declineC: z.number().min(0).max(150),
      throttleSlowdown: z.number().min(1).max(10),
    })
    .refine((t) => t.declineC >= t.throttleC, "declineC must be >= throttleC"),
  /** Inference threads, or "auto" = the measured physical core count. */
  threads: z.union([z.number().int().min(1).max(256), z.literal("auto")]),
  /** Layers to offload to a GPU (0 = CPU only). */
  gpuLayers: z.number().int().min(0).max(1000),
  /** Free memory that loading a model must leave untouched, in MB. */
  memoryReserveMB: z.number().int().min(0).max(1_000_000),
  /** Tasks run at the same time. */
  slots: z.number().int().min(1).max(64),
  /** Tasks waiting for a slot; more are declined with queue-full. */
  queueLimit: z.number().int().min(0).max(10_000),
  /** An idle agent sleeps (frees its context and, if unshared, its model) after this many ms. */
  sleepAfterMs: z.number().int().min(100).max(7 * 24 * 3600 * 1000),
  /**
   * The most agents the node hosts (agents file and spawned together); a spawn beyond it is refused
   * with POPULATION_LIMIT. Default: derived from the device's memory (see `maxAgentsFor`).
   */
  maxAgents: z.number().int().min(1).max(256).optional(),
  /**
   * Disk the node's pushed models (DATA_DIR/colony-models) may take, in MB; a model beyond it is
   * refused with MODEL_QUOTA after models no agent uses are removed. Default: no quota beyond the
   * disk's free space.
   */
  modelDiskMB: z.number().int().min(1).max(100_000_000).optional(),
});
export type DeviceProfile = z.infer<typeof ProfileSchema>;

/** Validates a parsed profile; every problem is listed in the error. */
export function parseProfile(json: unknown, source = "profile"): DeviceProfile {
  const parsed = ProfileSchema.safeParse(json);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error);
    throw new ColonyError(NodeErrors.PROFILE_INVALID, `${source} is not a valid device profile:\n  ${problems.join("\n  ")}`, { problems });
  }
  return deepFreeze(parsed.data);
}

export function loadProfileFile(file: string): DeviceProfile {
  return parseProfile(readJsonFile(file), file);
}

export function listProfiles(dir = PROFILES_DIR): DeviceProfile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => loadProfileFile(path.join(dir, f)));
}

/** A profile by name (from firmware-configs/) or by file path. */
export function resolveProfile(nameOrFile: string, dir = PROFILES_DIR): DeviceProfile {
  if (nameOrFile.endsWith(".json") || nameOrFile.includes("/")) {
    if (!existsSync(nameOrFile)) throw new ColonyError(NodeErrors.PROFILE_NOT_FOUND, `profile file ${nameOrFile} does not exist`);
    return loadProfileFile(nameOrFile);
  }
  const file = path.join(dir, `${nameOrFile}.json`);
  if (!/^[a-z0-9-]+$/.test(nameOrFile) || !existsSync(file)) {
    const names = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
    throw new ColonyError(NodeErrors.PROFILE_NOT_FOUND, `no device profile named ${JSON.stringify(nameOrFile)}; known: ${names.join(", ")}`);
  }
  return loadProfileFile(file);
}

/** What detection looks at (from systeminformation's system(), cpu(), battery() and os.arch()). */
export interface HardwareIdentity {
  systemModel?: string | undefined;
  systemManufacturer?: string | undefined;
  cpuBrand?: string | undefined;
  arch: string;
  hasBattery: boolean;
}

export function profileMatches(p: DeviceProfile, hw: HardwareIdentity): boolean {
  const m = p.match;
  const system = `${hw.systemManufacturer ?? ""} ${hw.systemModel ?? ""}`;
  if (m.systemModel !== undefined && !new RegExp(m.systemModel, "i").test(system)) return false;
  if (m.cpuBrand !== undefined && !new RegExp(m.cpuBrand, "i").test(hw.cpuBrand ?? "")) return false;
  if (m.arch !== undefined && !m.arch.includes(hw.arch)) return false;
  if (m.hasBattery !== undefined && m.hasBattery !== hw.hasBattery) return false;
  return true;
}

/** The matching profile with the highest priority (ties: by name); "generic" has no conditions. */
export function detectProfile(hw: HardwareIdentity, profiles: DeviceProfile[] = listProfiles()): DeviceProfile {
  const matching = profiles.filter((p) => profileMatches(p, hw)).sort((a, b) => b.match.priority - a.match.priority || a.name.localeCompare(b.name));
  const best = matching[0];
  if (!best) throw new ColonyError(NodeErrors.PROFILE_NOT_FOUND, `no device profile matches this hardware (${JSON.stringify(hw)}) and there is no fallback`);
  return best;
}

/**
 * The node's population limit: the profile's `maxAgents`, else one agent per 128 MB of total memory
 * (an asleep agent costs only its genome, but each may be woken and holds a context then; 128 MB is
 * a small model's context plus its share of the runtime), at least 1 and at most 64 (the status
 * message lists every agent: 64 genomes fit its payload budget).
 */
export function maxAgentsFor(p: Pick<DeviceProfile, "maxAgents">, totalMemMB: number): number {
  return p.maxAgents ?? Math.max(1, Math.min(64, Math.floor(totalMemMB / 128)));
}

/** Inference threads for a profile: its number, or the physical core count for "auto". */
export function profileThreads(p: DeviceProfile, physicalCores: number): number {
  return p.threads === "auto" ? Math.max(1, physicalCores) : p.threads;
}
