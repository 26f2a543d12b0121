/**
 * Real energy readings, where a device has them, for the measured cost of a task (cost-model.ts):
 *
 * - `rapl`: Linux powercap (Intel/AMD RAPL), /sys/class/powercap/<zone>/energy_uj, the CPU
 *   packages' cumulative energy in microjoules, updated about every millisecond; wraps at
 *   max_energy_range_uj.
 * - `battery`: /sys/class/power_supply/BAT*, energy_now (uWh) or charge_now (uAh) x voltage_now
 *   (uV), while discharging. Batteries update these every 15-60 s, so a battery reading is used only
 *   for intervals of at least BATTERY_MIN_INTERVAL_MS; shorter tasks are modelled.
 *
 * A reading counts the whole package or system, so a task is charged what it added above the idle
 * draw measured while the node ran nothing (the same "active minus idle" the power model prices),
 * and only when no other task overlapped it. Reads are synchronous sysfs reads of a few bytes, done
 * at a task's start and end, never on the bid path. Neither exists in containers: the model is used.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Clock } from "../common/clock.ts";

export interface EnergyMeter {
  readonly source: "rapl" | "battery";
  /** Shortest interval a reading is good for, in ms. */
  readonly minIntervalMs: number;
  /** Cumulative joules since the meter was made, or undefined when it cannot say now (e.g. charging). */
  read(): number | undefined;
}

export const BATTERY_MIN_INTERVAL_MS = 30_000;

function readNumber(file: string): number | undefined {
  try {
    const v = Number(readFileSync(file, "utf8").trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The top-level RAPL zones (packages, not their sub-zones) under `root`, or undefined if none can be read. */
export function powercapMeter(root = "/sys/class/powercap"): EnergyMeter | undefined {
  if (!existsSync(root)) return undefined;
  const zones = readdirSync(root).filter((z) => /^[a-z-]*rapl:\d+$/.test(z)).map((z) => path.join(root, z));
  const readable = zones.filter((z) => readNumber(path.join(z, "energy_uj")) !== undefined);
  if (readable.length === 0) return undefined;
  const last = new Map<string, number>();
  let total = 0;
  return {
    source: "rapl",
    minIntervalMs: 0,
    read() {
      for (const z of readable) {
        const raw = readNumber(path.join(z, "energy_uj"));
        if (raw === undefined) return undefined;
        const prev = last.get(z);
        last.set(z, raw);
        if (prev === undefined) continue;
        const range = readNumber(path.join(z, "max_energy_range_uj")) ?? 2 ** 32;
        total += (raw >= prev ? raw - prev : raw + range - prev) / 1e6;
      }
      return total;
    },
  };
}

/** The first battery under `root` with an energy or charge reading, or undefined. */
export function batteryMeter(root = "/sys/class/power_supply"): EnergyMeter | undefined {
  if (!existsSync(root)) return undefined;
  const bat = readdirSync(root).filter((d) => /^BAT/i.test(d)).map((d) => path.join(root, d))
    .find((d) => readNumber(path.join(d, "energy_now")) !== undefined || readNumber(path.join(d, "charge_now")) !== undefined);
  if (!bat) return undefined;
  const wattHoursUj = (): number | undefined => {
    const e = readNumber(path.join(bat, "energy_now"));
    if (e !== undefined) return e * 3600; // uWh -> uJ
    const q = readNumber(path.join(bat, "charge_now"));
    const v = readNumber(path.join(bat, "voltage_now"));
    return q !== undefined && v !== undefined ? (q * v * 3600) / 1e6 : undefined; // uAh x uV -> uJ
  };
  let last: number | undefined;
  let drained = 0;
  return {
    source: "battery",
    minIntervalMs: BATTERY_MIN_INTERVAL_MS,
    read() {
      let status = "";
      try {
        status = readFileSync(path.join(bat, "status"), "utf8").trim();
      } catch {}
      const now = wattHoursUj();
      if (now === undefined || status !== "Discharging") {
        last = undefined;
        return undefined;
      }
      if (last !== undefined && now < last) drained += (last - now) / 1e6;
      last = now;
      return drained;
    },
  };
}

/** RAPL where present, else a battery, else none (the model is used). */
export function detectMeter(roots: { powercap?: string | undefined; powerSupply?: string | undefined } = {}): EnergyMeter | undefined {
  return powercapMeter(roots.powercap) ?? batteryMeter(roots.powerSupply);
}

export interface MeterMark {
  at: number;
  joules: number;
  shared: boolean;
}

/**
 * Turns a meter into per-task joules: the idle baseline (watts while no task ran, an exponential
 * average over idle spans of at least a second) and marks around each task. A task that overlapped
 * another, ran shorter than the meter's resolution, or ran before any baseline was known gets no
 * reading, and is modelled instead.
 */
export class EnergyAccount {
  private idleSince: { at: number; joules: number } | undefined;
  private baselineW: number | undefined;
  private readonly open = new Set<MeterMark>();

  constructor(private readonly meter: EnergyMeter | undefined, private readonly clock: Clock) {}

  get source(): EnergyMeter["source"] | undefined {
    return this.meter?.source;
  }

  /** Idle draw in watts, once measured. */
  get idleWatts(): number | undefined {
    return this.baselineW;
  }

  private sample(): { at: number; joules: number } | undefined {
    const joules = this.meter?.read();
    return joules === undefined ? undefined : { at: this.clock.now(), joules };
  }

  /** The node has nothing running from now on: an idle span starts. */
  idle(): void {
    if (this.meter && this.open.size === 0) this.idleSince = this.sample();
  }

  begin(): MeterMark | undefined {
    const s = this.sample();
    this.closeIdleSpan(s);
    if (!s) return undefined;
    for (const m of this.open) m.shared = true;
    const mark = { ...s, shared: this.open.size > 0 };
    this.open.add(mark);
    return mark;
  }

  end(mark: MeterMark | undefined): { joules: number; source: EnergyMeter["source"] } | undefined {
    if (!mark || !this.meter) return undefined;
    this.open.delete(mark);
    const s = this.sample();
    if (this.open.size === 0) this.idleSince = s;
    const ms = s ? s.at - mark.at : 0;
    if (!s || mark.shared || this.baselineW === undefined || ms < Math.max(1, this.meter.minIntervalMs)) return undefined;
    return { joules: Math.max(0, s.joules - mark.joules - (this.baselineW * ms) / 1000), source: this.meter.source };
  }

  private closeIdleSpan(s: { at: number; joules: number } | undefined): void {
    const from = this.idleSince;
    this.idleSince = undefined;
    if (!from || !s || this.open.size > 0) return;
    const ms = s.at - from.at;
    if (ms < Math.max(1000, this.meter!.minIntervalMs)) return;
    const w = ((s.joules - from.joules) * 1000) / ms;
    this.baselineW = this.baselineW === undefined ? w : 0.7 * this.baselineW + 0.3 * w;
  }
}
